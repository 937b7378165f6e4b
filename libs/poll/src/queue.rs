//! The readiness queue: a bounded multi-producer, single-consumer ring of
//! registration slot numbers (Dmitry Vyukov's bounded queue, consumer side
//! simplified for one consumer).
//!
//! Each cell carries a sequence number that says whose turn it is:
//! `seq == pos` means free for the producer that claims position `pos`;
//! `seq == pos + 1` means filled, ready for the consumer at `pos`; the
//! consumer hands the cell to the next lap by storing `pos + capacity`.
//! Producers claim positions with a CAS on `tail`, so any number of cores and
//! interrupt handlers can push without a lock.
//!
//! Why it never overflows: a slot is pushed only by whoever sets its QUEUED
//! bit (see `shared.rs`), and the bit is cleared only after the consumer has
//! released the slot's cell. So at most one cell per registration slot is ever
//! claimed, and the ring has at least as many cells as there are slots. A
//! readiness storm therefore costs no memory: it only sets bits.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::sync::{AtomicU32, AtomicUsize};

struct Cell {
    seq: AtomicUsize,
    value: AtomicU32,
}

pub(crate) struct Queue {
    cells: Box<[Cell]>,
    /// `capacity - 1`; the capacity is a power of two so `pos & mask` is `pos % capacity`.
    mask: usize,
    /// Next position a producer will claim.
    tail: AtomicUsize,
}

impl Queue {
    /// A queue of at least `min_capacity` cells (rounded up to a power of two).
    pub(crate) fn new(min_capacity: usize) -> Self {
        let capacity = min_capacity.max(1).next_power_of_two();
        let cells: Vec<Cell> = (0..capacity)
            .map(|i| Cell {
                seq: AtomicUsize::new(i),
                value: AtomicU32::new(0),
            })
            .collect();
        Self {
            cells: cells.into_boxed_slice(),
            mask: capacity - 1,
            tail: AtomicUsize::new(0),
        }
    }

    /// Appends `value`; `false` if the ring is full (which the QUEUED-bit
    /// discipline rules out, see the module doc).
    pub(crate) fn push(&self, value: u32) -> bool {
        let mut pos = self.tail.load(Relaxed);
        loop {
            let cell = &self.cells[pos & self.mask];
            let seq = cell.seq.load(Acquire);
            // Signed distance between the cell's turn and ours, wrap-safe.
            let lag = seq.wrapping_sub(pos) as isize;
            if lag == 0 {
                match self
                    .tail
                    .compare_exchange_weak(pos, pos.wrapping_add(1), Relaxed, Relaxed)
                {
                    Ok(_) => {
                        cell.value.store(value, Relaxed);
                        // Publishes `value` to the consumer's Acquire load.
                        cell.seq.store(pos.wrapping_add(1), Release);
                        return true;
                    }
                    Err(now) => pos = now,
                }
            } else if lag < 0 {
                // The consumer has not released this cell from the last lap.
                return false;
            } else {
                // Another producer took `pos`; catch up.
                pos = self.tail.load(Relaxed);
            }
        }
    }

    /// The next position a producer will claim: entries queued so far sit
    /// before it. The poller drains only up to a snapshot of it, so a source
    /// re-signalled during a drain waits for the next `poll` (as epoll reports
    /// each file at most once per call) and cannot monopolise `Events`.
    pub(crate) fn tail(&self) -> usize {
        self.tail.load(Relaxed)
    }

    /// Whether the cell at the consumer's position `head` is filled.
    pub(crate) fn is_ready(&self, head: usize) -> bool {
        let cell = &self.cells[head & self.mask];
        cell.seq.load(Acquire) == head.wrapping_add(1)
    }

    /// Takes the value at the consumer's position `head` and advances it.
    /// Only the single consumer calls this. `None` when the cell is not
    /// filled yet, even if later cells are (a producer is between its claim
    /// and its store; it will unpark the consumer when done).
    pub(crate) fn pop(&self, head: &mut usize) -> Option<u32> {
        let cell = &self.cells[*head & self.mask];
        if cell.seq.load(Acquire) != head.wrapping_add(1) {
            return None;
        }
        let value = cell.value.load(Relaxed);
        // Hands the cell to the producer of the next lap.
        cell.seq.store(head.wrapping_add(self.mask + 1), Release);
        *head = head.wrapping_add(1);
        Some(value)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_wraps_and_reports_full() {
        let q = Queue::new(3);
        let mut head = 0;
        for lap in 0..5u32 {
            for i in 0..4 {
                assert!(q.push(lap * 10 + i));
            }
            assert!(!q.push(99), "capacity rounds 3 up to 4");
            for i in 0..4 {
                assert_eq!(q.pop(&mut head), Some(lap * 10 + i));
            }
            assert_eq!(q.pop(&mut head), None);
            assert!(!q.is_ready(head));
        }
    }
}
