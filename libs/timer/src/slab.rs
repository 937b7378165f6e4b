//! The slab every timer entry lives in.
//!
//! Entries are addressed by `u32` index. Free one-shot entries form a LIFO
//! free list threaded through `next`, so arming a timer after warm-up pops an
//! entry instead of allocating, and recently freed (cache-hot) entries are
//! reused first. The first `reserved` entries belong to the interval timers:
//! they are created up front and never join the one-shot free list.
//!
//! An entry's `list` field doubles as its liveness tag: [`ListId::FREE`]
//! means the payload is uninitialised. A cancelled timer is first made
//! *hollow* (payload taken, generation bumped, still linked on its list) and
//! freed later in a batch (see `pending.rs`); so an entry holds a `T` exactly
//! when its list is not FREE and it is not hollow.

use alloc::vec::Vec;
use core::mem::MaybeUninit;

use crate::level::{ListId, NIL};

/// One timer: its exact deadline, its links in a slot list, and its payload.
pub(crate) struct Node<T> {
    /// Exact deadline in nanoseconds (not rounded to a tick).
    pub(crate) deadline: u64,
    pub(crate) prev: u32,
    pub(crate) next: u32,
    pub(crate) generation: u32,
    /// The list the node is on; [`ListId::FREE`] when it holds no payload.
    pub(crate) list: ListId,
    /// Cancelled, payload taken, waiting to be unlinked and freed.
    hollow: bool,
    payload: MaybeUninit<T>,
}

impl<T> Node<T> {
    const fn vacant() -> Self {
        Self {
            deadline: 0,
            prev: NIL,
            next: NIL,
            generation: 0,
            list: ListId::FREE,
            hollow: false,
            payload: MaybeUninit::uninit(),
        }
    }

    /// Whether the payload is initialised: on a list and not hollow.
    fn holds_payload(&self) -> bool {
        self.list != ListId::FREE && !self.hollow
    }

    #[cfg(test)]
    pub(crate) const fn vacant_for_tests() -> Self {
        Self::vacant()
    }
}

pub(crate) struct Slab<T> {
    pub(crate) nodes: Vec<Node<T>>,
    /// Head of the one-shot free list, or [`NIL`].
    free: u32,
    /// Entries `[0, reserved)` belong to interval timers.
    reserved: u32,
    /// Upper bound on `nodes.len()`.
    max_len: u32,
}

impl<T> Slab<T> {
    /// A slab with `reserved` interval entries and room for `capacity`
    /// one-shot timers before it first allocates; it never grows beyond
    /// `reserved + max_timers` entries.
    pub(crate) fn new(reserved: u32, capacity: u32, max_timers: u32) -> Self {
        let mut nodes = Vec::with_capacity((reserved + capacity) as usize);
        nodes.extend((0..reserved).map(|_| Node::vacant()));
        Self {
            nodes,
            free: NIL,
            reserved,
            max_len: reserved + max_timers,
        }
    }

    pub(crate) fn reserved(&self) -> u32 {
        self.reserved
    }

    /// Takes a one-shot entry and fills it; the caller links it into a list.
    /// Gives the payload back when `max_timers` entries are live.
    pub(crate) fn insert(&mut self, deadline: u64, payload: T) -> Result<u32, T> {
        if self.free != NIL {
            let index = self.free;
            self.free = self.nodes[index as usize].next;
            self.fill(index, deadline, payload);
            return Ok(index);
        }
        let index = self.nodes.len() as u32;
        if index >= self.max_len {
            return Err(payload);
        }
        // A fresh entry is written once, whole, already holding its payload
        // (any non-FREE list marks it so; the caller links it next).
        self.nodes.push(Node {
            deadline,
            list: ListId::DUE,
            payload: MaybeUninit::new(payload),
            ..Node::vacant()
        });
        Ok(index)
    }

    /// Fills a vacant entry (one-shot or reserved) with a payload.
    pub(crate) fn fill(&mut self, index: u32, deadline: u64, payload: T) {
        let node = &mut self.nodes[index as usize];
        debug_assert!(node.list == ListId::FREE);
        node.deadline = deadline;
        node.payload.write(payload);
        // Any non-FREE value marks the payload initialised; the caller links
        // the node next, which overwrites this with the real list.
        node.list = ListId::DUE;
    }

    /// Whether `index` holds a live timer whose generation is `generation`.
    pub(crate) fn is_live(&self, index: u32, generation: u32) -> bool {
        self.nodes
            .get(index as usize)
            .is_some_and(|n| n.generation == generation && n.holds_payload())
    }

    /// Empties a live entry (already unlinked from its list), bumps its
    /// generation so old handles go stale, and returns the payload.
    /// One-shot entries go back on the free list. `None` if it was vacant.
    pub(crate) fn remove(&mut self, index: u32) -> Option<T> {
        let payload = self.take(index)?;
        self.release(index);
        Some(payload)
    }

    /// [`Slab::take`] if `index` holds a live timer of `generation`, in one
    /// look at the entry (cancel's whole cost is this one cache line).
    pub(crate) fn take_live(&mut self, index: u32, generation: u32) -> Option<T> {
        let node = self.nodes.get_mut(index as usize)?;
        if node.generation != generation || !node.holds_payload() {
            return None;
        }
        node.hollow = true;
        node.generation = generation.wrapping_add(1);
        // SAFETY: `holds_payload` was true, so the payload is initialised;
        // `hollow` is now set, so nothing reads it again until `fill`.
        Some(unsafe { node.payload.assume_init_read() })
    }

    /// Takes the payload of a live entry and bumps its generation, leaving
    /// it hollow: still linked, to be released by [`Slab::release`].
    pub(crate) fn take(&mut self, index: u32) -> Option<T> {
        let node = self.nodes.get_mut(index as usize)?;
        if !node.holds_payload() {
            return None;
        }
        node.hollow = true;
        node.generation = node.generation.wrapping_add(1);
        // SAFETY: `holds_payload` was true, so the payload is initialised
        // (see the module doc); `hollow` is now set, so nothing reads it
        // again until `fill` rewrites it.
        Some(unsafe { node.payload.assume_init_read() })
    }

    /// Frees a hollow entry (already unlinked); one-shot entries go back on
    /// the free list. Does nothing to an entry that is not hollow.
    pub(crate) fn release(&mut self, index: u32) {
        let reserved = self.reserved;
        let Some(node) = self.nodes.get_mut(index as usize) else {
            return;
        };
        if !node.hollow {
            return;
        }
        node.hollow = false;
        node.list = ListId::FREE;
        if index >= reserved {
            node.next = self.free;
            self.free = index;
        }
    }

    /// The payload of a live entry.
    pub(crate) fn payload_mut(&mut self, index: u32) -> Option<&mut T> {
        let node = self.nodes.get_mut(index as usize)?;
        if !node.holds_payload() {
            return None;
        }
        // SAFETY: `holds_payload` means the payload is initialised.
        Some(unsafe { node.payload.assume_init_mut() })
    }
}

impl<T> Drop for Slab<T> {
    fn drop(&mut self) {
        if !core::mem::needs_drop::<T>() {
            return;
        }
        for node in &mut self.nodes {
            if node.holds_payload() {
                // SAFETY: `holds_payload` means an initialised payload, and
                // the slab is being dropped, so it is dropped exactly once.
                unsafe { node.payload.assume_init_drop() };
            }
        }
    }
}
