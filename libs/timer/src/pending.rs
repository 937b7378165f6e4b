//! Batched unlinking of cancelled timers.
//!
//! Unlinking a node from a doubly-linked list touches its two neighbours,
//! which sit at random places in a large slab: two cache misses per cancel
//! that depend on the node's own. So `cancel` only hollows the node (takes
//! the payload, bumps the generation: one touch), queues its index here and
//! *prefetches* the two neighbours, which does not stall the CPU; every
//! [`PENDING`] cancels, and before `advance` walks any list, the queue is
//! flushed: unlinked and freed with the lines already in cache.
//!
//! Cancel stays O(1) in the worst case (a flush is a fixed `PENDING`
//! entries), and at most `PENDING` hollow nodes are ever waiting.

use crate::level::{Lists, NIL};
use crate::slab::{Node, Slab};

/// Cancels batched per flush.
pub(crate) const PENDING: usize = 64;

pub(crate) struct Pending {
    indices: [u32; PENDING],
    len: usize,
}

impl Pending {
    pub(crate) const fn new() -> Self {
        Self {
            indices: [NIL; PENDING],
            len: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues hollow node `index`, flushing first if the queue is full, and
    /// starts loading its list neighbours (which the flush will write) in
    /// the background: the node itself is in cache, as `cancel` just read it.
    pub(crate) fn push<T>(&mut self, index: u32, lists: &mut Lists, slab: &mut Slab<T>) {
        if self.len == PENDING {
            self.flush(lists, slab);
        }
        let nodes = &slab.nodes;
        if let Some(node) = nodes.get(index as usize) {
            prefetch(nodes, node.prev);
            prefetch(nodes, node.next);
        }
        self.indices[self.len] = index;
        self.len += 1;
    }

    /// Unlinks and frees every queued node, in queue order. Links are read
    /// at each unlink, so queued nodes that are neighbours of each other
    /// are handled.
    pub(crate) fn flush<T>(&mut self, lists: &mut Lists, slab: &mut Slab<T>) {
        for &index in &self.indices[..self.len] {
            lists.unlink(&mut slab.nodes, index);
            slab.release(index);
        }
        self.len = 0;
    }
}

/// Asks the CPU to start loading node `index` (if it exists) into the cache,
/// without waiting for it: a hint with no effect on the program's meaning.
#[inline(always)]
fn prefetch<T>(nodes: &[Node<T>], index: u32) {
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
