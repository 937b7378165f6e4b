//! Cancelled timers: reclaimed lazily, within a bound.
//!
//! `cancel` only *hollows* its node: it checks the generation, takes the
//! payload and bumps the generation, in one look at the node's cache line.
//! The node stays linked on its slot list. Unlinking it then would touch
//! its two list neighbours, which sit at random places of the slab: two
//! more cache lines and some twenty more instructions per cancel, which is
//! what kept cancel behind a lazy binary heap.
//!
//! A hollow node's entry comes back to the free list at the first of:
//!
//! * its slot list is walked by `advance` (cascaded or fired): the walk
//!   frees it instead of refiling or firing it, which costs less than an
//!   unlink would have;
//! * an `insert` needs an entry and the slab is at `max_timers`: it unlinks
//!   (O(1)) and reuses one of the last [`RECENT`] cancelled nodes that is
//!   still hollow, or, if none is, sweeps;
//! * hollow nodes outnumber live timers by more than [`SLACK`]: the next
//!   cancel *sweeps* the slab: one sequential pass that relinks every live
//!   node onto its list and frees every hollow one. The pass is
//!   `O(slab)`, and it runs only after at least half the slab has been
//!   cancelled since the last one, so it costs at most two entry visits
//!   (sequential, prefetched by the hardware) per cancel.
//!
//! So memory stays bounded: at most `live + SLACK` hollow nodes exist at any
//! time (a lazy heap keeps every cancelled entry until its deadline), and
//! the slab never grows while a hollow node could be reused instead.

use crate::level::NIL;

/// Cancelled nodes remembered for reuse by an `insert` at `max_timers`.
pub(crate) const RECENT: usize = 64;

/// Hollow nodes allowed beyond the number of live timers before a sweep.
pub(crate) const SLACK: usize = 64;

/// The last [`RECENT`] cancelled indices, newest last (a ring that
/// overwrites the oldest). Entries may since have been freed or reused:
/// the caller checks that a node is still hollow before reusing it.
pub(crate) struct Recent {
    indices: [u32; RECENT],
    /// Cancels recorded, wrapping; the newest is at `(len - 1) % RECENT`.
    len: usize,
}

impl Recent {
    pub(crate) const fn new() -> Self {
        Self {
            indices: [NIL; RECENT],
            len: 0,
        }
    }

    /// Records a cancelled index.
    #[inline(always)]
    pub(crate) fn push(&mut self, index: u32) {
        self.indices[self.len % RECENT] = index;
        self.len = self.len.wrapping_add(1);
    }

    /// Takes the newest recorded index, if any is left.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let index = core::mem::replace(&mut self.indices[self.len % RECENT], NIL);
        (index != NIL).then_some(index)
    }

    /// Forgets every recorded index (after a sweep freed them all).
    pub(crate) fn clear(&mut self) {
        self.indices = [NIL; RECENT];
        self.len = 0;
    }
}
