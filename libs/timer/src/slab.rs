//! The slab of timer nodes: a generation and a payload per timer.
//!
//! A node is `{generation: u32, next_free: u32, payload}`: 16 bytes for a
//! `u64` payload. Nodes are addressed by `u32` index. Where a timer sits in
//! the wheel (its deadline, its slot) is not here: that is its *entry* in a
//! slot list (`lists.rs`), which names the node by `(index, generation)`.
//!
//! **The generation says everything**: odd means the node holds a payload
//! (a live timer), even means vacant; and modulo 4, live one-shot nodes
//! are 1 and live interval nodes 3. Arming adds 3 (vacant to live),
//! cancelling or firing adds 1 (live to vacant), so a handle or an entry
//! whose generation no longer matches is stale, and a [`TimerHandle`]
//! (always 1 mod 4) can only ever match a live one-shot node: checking a
//! handle is one compare, with no test of the index range. Free one-shot
//! nodes form a LIFO free list through `next_free`, so arming after
//! warm-up pops a node instead of allocating, and recently freed
//! (cache-hot) nodes are reused first. The first `reserved` nodes belong
//! to the interval timers and never join it.
//!
//! [`TimerHandle`]: crate::TimerHandle

use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// The null node index.
pub(crate) const NIL: u32 = u32::MAX;

/// One timer's generation and payload.
#[repr(C)]
pub(crate) struct Node<T> {
    /// Odd while the node holds a live timer (see the module doc).
    pub(crate) generation: u32,
    /// Next node on the free list while vacant.
    next_free: u32,
    payload: MaybeUninit<T>,
}

impl<T> Node<T> {
    /// A vacant reserved (interval) node: generation 0 mod 4, and 4 rather
    /// than 0 so that only a wrap makes a fill return [`WRAPPED`].
    const fn vacant() -> Self {
        Self {
            generation: 4,
            next_free: NIL,
            payload: MaybeUninit::uninit(),
        }
    }

    /// Whether the payload is initialised.
    const fn is_live(&self) -> bool {
        self.generation & 1 == 1
    }
}

/// Generations below this are handed out only after a node's generation
/// wrapped (fresh nodes start above it): an old tombstone naming the node
/// could match again, so the caller must drop every tombstone (a full
/// compaction) before filing the new entry.
pub(crate) const WRAPPED: u32 = 4;

/// Whether `generation` (of a live handle or entry) is an interval timer's.
pub(crate) const fn is_interval(generation: u32) -> bool {
    generation & 2 != 0
}

pub(crate) struct Slab<T> {
    pub(crate) nodes: Vec<Node<T>>,
    /// Head of the one-shot free list, or [`NIL`].
    free: u32,
    /// Nodes `[0, reserved)` belong to interval timers.
    reserved: u32,
    /// Upper bound on `nodes.len()`.
    max_len: u32,
}

impl<T> Slab<T> {
    /// A slab with `reserved` interval nodes and room for `capacity`
    /// one-shot timers before it first allocates; it never grows beyond
    /// `reserved + max_timers` nodes.
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

    /// Takes a one-shot node and fills it; returns `(index, generation)`.
    /// Gives the payload back when `max_timers` nodes are live. A reused
    /// node whose generation wrapped comes back below [`WRAPPED`].
    #[inline]
    pub(crate) fn insert(&mut self, payload: T) -> Result<(u32, u32), T> {
        if self.free != NIL {
            let index = self.free;
            let node = &mut self.nodes[index as usize];
            self.free = node.next_free;
            return Ok((index, Self::fill_node(node, payload)));
        }
        let index = self.nodes.len() as u32;
        if index >= self.max_len {
            return Err(payload);
        }
        // A fresh node is written once, whole, already holding its payload;
        // generation 5 (a live one-shot, and not below WRAPPED).
        self.nodes.push(Node {
            generation: 5,
            next_free: NIL,
            payload: MaybeUninit::new(payload),
        });
        Ok((index, 5))
    }

    /// Fills a vacant reserved (interval) node; returns its new generation
    /// (below [`WRAPPED`] after a wrap).
    pub(crate) fn fill(&mut self, index: u32, payload: T) -> u32 {
        Self::fill_node(&mut self.nodes[index as usize], payload)
    }

    #[inline]
    fn fill_node(node: &mut Node<T>, payload: T) -> u32 {
        debug_assert!(!node.is_live());
        node.payload.write(payload);
        node.generation = node.generation.wrapping_add(3);
        node.generation
    }

    /// Whether `index` holds a live timer of `generation`: one compare
    /// (every handle and entry carries an odd generation, so a match means
    /// the node is live, and of the handle's kind).
    #[inline]
    pub(crate) fn is_live(&self, index: u32, generation: u32) -> bool {
        debug_assert!(generation & 1 == 1);
        self.nodes
            .get(index as usize)
            .is_some_and(|n| n.generation == generation)
    }

    /// If `index` holds a live one-shot timer of `generation`, takes its
    /// payload and puts the node back on the free list, in one look at it.
    #[inline]
    pub(crate) fn take_oneshot(&mut self, index: u32, generation: u32) -> Option<T> {
        debug_assert!(generation & 3 == 1);
        let free = self.free;
        let payload = Self::take_node(self.nodes.get_mut(index as usize)?, generation)?;
        // A match means a live one-shot node: it joins the free list.
        debug_assert!(index >= self.reserved);
        self.nodes[index as usize].next_free = free;
        self.free = index;
        Some(payload)
    }

    /// If `index` holds a live interval timer of `generation`, takes its
    /// payload (the node stays reserved).
    pub(crate) fn take_interval(&mut self, index: u32, generation: u32) -> Option<T> {
        debug_assert!(generation & 3 == 3);
        Self::take_node(self.nodes.get_mut(index as usize)?, generation)
    }

    #[inline(always)]
    fn take_node(node: &mut Node<T>, generation: u32) -> Option<T> {
        if node.generation != generation {
            return None;
        }
        node.generation = generation.wrapping_add(1);
        // SAFETY: the generation matched an (odd) handle or entry
        // generation, so the payload is initialised (see the module doc);
        // it is now even, so nothing reads the payload again until
        // `fill_node` rewrites it.
        Some(unsafe { node.payload.assume_init_read() })
    }

    /// The payload of a live node of `generation`.
    pub(crate) fn payload_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        debug_assert!(generation & 1 == 1);
        let node = self.nodes.get_mut(index as usize)?;
        if node.generation != generation {
            return None;
        }
        // SAFETY: the generation matched an odd one, so the payload is
        // initialised.
        Some(unsafe { node.payload.assume_init_mut() })
    }
}

impl<T> Drop for Slab<T> {
    fn drop(&mut self) {
        if !core::mem::needs_drop::<T>() {
            return;
        }
        for node in &mut self.nodes {
            if node.is_live() {
                // SAFETY: an odd generation means an initialised payload,
                // and the slab is being dropped, so it is dropped exactly
                // once.
                unsafe { node.payload.assume_init_drop() };
            }
        }
    }
}

/// Asks the CPU to start loading node `index` (if it exists) into the cache,
/// without waiting for it: a hint with no effect on the program's meaning.
#[inline(always)]
pub(crate) fn prefetch<T>(nodes: &[Node<T>], index: u32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(node) = nodes.get(index as usize) {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; a
        // prefetch never faults and does not access memory in the sense of
        // the memory model (it only warms the cache line of `node`).
        unsafe { _mm_prefetch::<_MM_HINT_T0>((node as *const Node<T>).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (nodes, index);
}
