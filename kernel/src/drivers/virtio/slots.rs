//! `SlotSet`: which of a queue's preallocated slots (up to 64: bounce
//! buffers, transmit buffers) are free, as the bits of one atomic word, so
//! submitters on any core take and give back slots without a lock.

use core::sync::atomic::{AtomicU64, Ordering};

/// The most slots a set holds.
pub const MAX_SLOTS: usize = 64;

/// Bit `i` set: slot `i` is free.
pub struct SlotSet {
    free: AtomicU64,
}

impl SlotSet {
    /// Slots `0..count` (at most [`MAX_SLOTS`]), all free.
    pub fn new(count: usize) -> SlotSet {
        assert!(
            count <= MAX_SLOTS,
            "a slot set holds at most {MAX_SLOTS} slots"
        );
        let free = if count == MAX_SLOTS {
            u64::MAX
        } else {
            (1 << count) - 1
        };
        SlotSet {
            free: AtomicU64::new(free),
        }
    }

    /// Takes the lowest free slot, if any.
    pub fn take(&self) -> Option<usize> {
        let mut free = self.free.load(Ordering::Acquire);
        while free != 0 {
            let slot = free.trailing_zeros() as usize;
            match self.free.compare_exchange_weak(
                free,
                free & !(1 << slot),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(slot),
                Err(now) => free = now,
            }
        }
        None
    }

    /// Gives back every slot whose bit is set in `slots`.
    pub fn give(&self, slots: u64) {
        self.free.fetch_or(slots, Ordering::AcqRel);
    }

    /// Gives back slot `slot`.
    pub fn give_one(&self, slot: usize) {
        self.give(1 << slot);
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_SLOTS, SlotSet};

    #[test]
    fn slots_are_taken_lowest_first_and_come_back() {
        let set = SlotSet::new(3);
        assert_eq!(
            [set.take(), set.take(), set.take()],
            [Some(0), Some(1), Some(2)]
        );
        assert_eq!(set.take(), None);
        set.give_one(1);
        assert_eq!(set.take(), Some(1));
        set.give(0b101);
        assert_eq!(
            [set.take(), set.take(), set.take()],
            [Some(0), Some(2), None]
        );
        let full = SlotSet::new(MAX_SLOTS);
        assert_eq!(
            (0..MAX_SLOTS).filter_map(|_| full.take()).count(),
            MAX_SLOTS
        );
        assert_eq!(full.take(), None);
    }
}
