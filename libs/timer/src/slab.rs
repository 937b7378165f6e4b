//! The slab every timer entry lives in.
//!
//! Entries are addressed by `u32` index. Free one-shot entries form a LIFO
//! free list threaded through `next`, so arming a timer after warm-up pops an
//! entry instead of allocating, and recently freed (cache-hot) entries are
//! reused first. The first `reserved` entries belong to the interval timers:
//! they are created up front and never join the one-shot free list.
//!
//! Each node has two halves: a [`Link`] (deadline and list links, what
//! `advance` walks) and an [`Entry`] (generation, list, payload: everything
//! `cancel` reads and writes). They share one array of 32-byte nodes (for a
//! `u64` payload): two parallel arrays, tried first, put `links[i]` and
//! `entries[i]` at the same offset within a 4 KiB page, and every operation
//! that touches both (insert, firing) ran about twice as slow.
//!
//! States, from the entry alone: the generation is *odd* exactly when the
//! entry holds a payload (live). An even generation with `list` not FREE is
//! a *hollow* entry: cancelled (payload taken, generation bumped), still
//! linked on its list, freed later (see `pending.rs`). `list == FREE` is a
//! free entry. Filling and taking each bump the generation by one, so a
//! handle (which records the odd generation) goes stale at once, and one
//! compare checks both "same timer" and "holds a payload".

use alloc::vec::Vec;
use core::mem::MaybeUninit;

use crate::level::{ListId, NIL};

/// Where a timer is due and its links in a slot list: what `advance` and
/// the list operations read. 16 bytes, so four to a cache line.
#[derive(Clone, Copy)]
pub(crate) struct Link {
    /// Exact deadline in nanoseconds (not rounded to a tick).
    pub(crate) deadline: u64,
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

impl Link {
    const VACANT: Self = Self {
        deadline: 0,
        prev: NIL,
        next: NIL,
    };
}

/// Who a timer is: its generation, its list, and its payload; everything
/// `cancel` reads or writes, so a cancel touches one entry (16 bytes for a
/// `u64` payload) and nothing else in the slab.
pub(crate) struct Entry<T> {
    /// Odd exactly while the payload is initialised (see the module doc).
    pub(crate) generation: u32,
    /// The list the node is on; [`ListId::FREE`] when it is free.
    pub(crate) list: ListId,
    payload: MaybeUninit<T>,
}

impl<T> Entry<T> {
    const fn vacant() -> Self {
        Self {
            generation: 0,
            list: ListId::FREE,
            payload: MaybeUninit::uninit(),
        }
    }

    /// Whether the payload is initialised (odd generation).
    pub(crate) fn holds_payload(&self) -> bool {
        self.generation & 1 == 1
    }

    /// Cancelled and still linked: no payload, but on a list.
    pub(crate) fn is_hollow(&self) -> bool {
        !self.holds_payload() && self.list != ListId::FREE
    }
}

/// One timer's slab node: its link half and its entry half.
pub(crate) struct Node<T> {
    pub(crate) link: Link,
    pub(crate) entry: Entry<T>,
}

/// The nodes, indexed by slab index.
pub(crate) struct Slab<T> {
    pub(crate) nodes: Vec<Node<T>>,
    /// Head of the one-shot free list, or [`NIL`].
    free: u32,
    /// Entries `[0, reserved)` belong to interval timers.
    reserved: u32,
    /// Upper bound on `nodes.len()`.
    max_len: u32,
    /// One-shot entries that are not free: live plus hollow.
    in_use: usize,
}

impl<T> Slab<T> {
    /// A slab with `reserved` interval entries and room for `capacity`
    /// one-shot timers before it first allocates; it never grows beyond
    /// `reserved + max_timers` entries.
    pub(crate) fn new(reserved: u32, capacity: u32, max_timers: u32) -> Self {
        let mut nodes = Vec::with_capacity((reserved + capacity) as usize);
        nodes.extend((0..reserved).map(|_| Node {
            link: Link::VACANT,
            entry: Entry::vacant(),
        }));
        Self {
            nodes,
            free: NIL,
            reserved,
            max_len: reserved + max_timers,
            in_use: 0,
        }
    }

    pub(crate) fn reserved(&self) -> u32 {
        self.reserved
    }

    /// One-shot entries live or hollow (not free).
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Whether entry `index` is hollow.
    pub(crate) fn is_hollow(&self, index: u32) -> bool {
        self.nodes
            .get(index as usize)
            .is_some_and(|n| n.entry.is_hollow())
    }

    /// Entries in the slab (live, hollow, free or reserved).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether a one-shot insert would find an entry without growing past
    /// `max_timers` (a free entry, or room to push a new one).
    pub(crate) fn has_room(&self) -> bool {
        self.free != NIL || self.nodes.len() < self.max_len as usize
    }

    /// Takes a one-shot entry and fills it; the caller links it into a list.
    /// Returns its index and generation, or gives the payload back when
    /// `max_timers` entries are in use.
    #[inline]
    pub(crate) fn insert(&mut self, deadline: u64, payload: T) -> Result<(u32, u32), T> {
        if self.free != NIL {
            let index = self.free;
            self.free = self.nodes[index as usize].link.next;
            self.in_use += 1;
            let generation = self.fill(index, deadline, payload);
            return Ok((index, generation));
        }
        let index = self.nodes.len() as u32;
        if index >= self.max_len {
            return Err(payload);
        }
        self.in_use += 1;
        // A fresh entry is written once, whole, already holding its payload
        // (generation 1: odd, live; any non-FREE list, the caller links it
        // next).
        self.nodes.push(Node {
            link: Link {
                deadline,
                ..Link::VACANT
            },
            entry: Entry {
                generation: 1,
                list: ListId::DUE,
                payload: MaybeUninit::new(payload),
            },
        });
        Ok((index, 1))
    }

    /// Fills a vacant entry (one-shot or reserved) with a payload and
    /// returns its new (odd) generation.
    #[inline]
    pub(crate) fn fill(&mut self, index: u32, deadline: u64, payload: T) -> u32 {
        let node = &mut self.nodes[index as usize];
        node.link.deadline = deadline;
        let node = &mut node.entry;
        debug_assert!(node.list == ListId::FREE && !node.holds_payload());
        node.payload.write(payload);
        node.generation = node.generation.wrapping_add(1);
        // The caller links the node next, which overwrites this.
        node.list = ListId::DUE;
        node.generation
    }

    /// Whether `index` holds a live timer whose generation is `generation`.
    pub(crate) fn is_live(&self, index: u32, generation: u32) -> bool {
        self.nodes
            .get(index as usize)
            .is_some_and(|n| n.entry.generation == generation && n.entry.holds_payload())
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
    #[inline(always)]
    pub(crate) fn take_live(&mut self, index: u32, generation: u32) -> Option<T> {
        let node = &mut self.nodes.get_mut(index as usize)?.entry;
        // `| 1`: a live entry's generation is odd, so an even `generation`
        // (never issued) can only match a live entry of generation + 1,
        // never a free or hollow one: one compare checks both.
        if node.generation != generation | 1 {
            return None;
        }
        node.generation = node.generation.wrapping_add(1);
        // SAFETY: the generation was odd, so the payload is initialised;
        // it is even now, so nothing reads the payload again until `fill`.
        Some(unsafe { node.payload.assume_init_read() })
    }

    /// Takes the payload of a live entry and bumps its generation, leaving
    /// it hollow: still linked, to be released by [`Slab::release`].
    pub(crate) fn take(&mut self, index: u32) -> Option<T> {
        let node = &mut self.nodes.get_mut(index as usize)?.entry;
        if !node.holds_payload() {
            return None;
        }
        node.generation = node.generation.wrapping_add(1);
        // SAFETY: the generation was odd, so the payload is initialised
        // (see the module doc); it is even now, so nothing reads the
        // payload again until `fill` rewrites it.
        Some(unsafe { node.payload.assume_init_read() })
    }

    /// Frees a hollow entry (already unlinked); one-shot entries go back on
    /// the free list. Does nothing to an entry that is not hollow.
    pub(crate) fn release(&mut self, index: u32) {
        let reserved = self.reserved;
        let Some(node) = self.nodes.get_mut(index as usize) else {
            return;
        };
        if !node.entry.is_hollow() {
            return;
        }
        node.entry.list = ListId::FREE;
        if index >= reserved {
            self.in_use -= 1;
            node.link.next = self.free;
            self.free = index;
        }
    }

    /// The payload of a live entry.
    pub(crate) fn payload_mut(&mut self, index: u32) -> Option<&mut T> {
        let node = &mut self.nodes.get_mut(index as usize)?.entry;
        if !node.holds_payload() {
            return None;
        }
        // SAFETY: an odd generation means the payload is initialised.
        Some(unsafe { node.payload.assume_init_mut() })
    }
}

impl<T> Drop for Slab<T> {
    fn drop(&mut self) {
        if !core::mem::needs_drop::<T>() {
            return;
        }
        for node in self.nodes.iter_mut().map(|n| &mut n.entry) {
            if node.holds_payload() {
                // SAFETY: an odd generation means an initialised payload, and
                // the slab is being dropped, so it is dropped exactly once.
                unsafe { node.payload.assume_init_drop() };
            }
        }
    }
}
