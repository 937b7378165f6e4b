//! Batched unlinking of cancelled timers.
//!
//! Unlinking a node from a doubly-linked list touches its two neighbours,
//! which sit at random places in a large slab: two dependent cache misses
//! per cancel. So `cancel` only hollows the node (takes the payload, bumps
//! the generation: one touch) and queues its index here; every
//! [`PENDING`] cancels, and before `advance` walks any list, the queue is
//! flushed in three passes. The first two only *load* the nodes and their
//! neighbours; those loads are independent of each other, so the CPU
//! overlaps their misses instead of taking them one after another. The
//! third pass unlinks and frees with the lines already in cache.
//!
//! Cancel stays O(1) in the worst case (a flush is a fixed `PENDING`
//! entries), and at most `PENDING` hollow nodes are ever waiting.

use core::hint::black_box;

use crate::level::{Lists, NIL};
use crate::slab::Slab;

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

    /// Queues hollow node `index`, flushing first if the queue is full.
    pub(crate) fn push<T>(&mut self, index: u32, lists: &mut Lists, slab: &mut Slab<T>) {
        if self.len == PENDING {
            self.flush(lists, slab);
        }
        self.indices[self.len] = index;
        self.len += 1;
    }

    /// Unlinks and frees every queued node.
    pub(crate) fn flush<T>(&mut self, lists: &mut Lists, slab: &mut Slab<T>) {
        let queued = &self.indices[..self.len];
        let nodes = &slab.nodes;
        // Passes 1 and 2: warm the nodes, then their neighbours. The XOR
        // only gives the loads a use; `black_box` keeps them from being
        // optimised away.
        let mut warm = 0u32;
        for &index in queued {
            let node = &nodes[index as usize];
            warm ^= node.prev ^ node.next;
        }
        for &index in queued {
            let node = &nodes[index as usize];
            if let Some(prev) = nodes.get(node.prev as usize) {
                warm ^= prev.next;
            }
            if let Some(next) = nodes.get(node.next as usize) {
                warm ^= next.prev;
            }
        }
        black_box(warm);
        // Pass 3: unlink in queue order. Links are re-read at each unlink,
        // so queued nodes that are neighbours of each other are handled.
        for &index in queued {
            lists.unlink(&mut slab.nodes, index);
            slab.release(index);
        }
        self.len = 0;
    }
}
