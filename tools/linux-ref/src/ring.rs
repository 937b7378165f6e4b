//! A single-producer single-consumer ring in shared memory between two
//! threads, the Linux analogue of percore's intercore rings. Each side either
//! busy-polls ([`Wait::Spin`], percore's poll mode) or sleeps on a futex when
//! it cannot go on ([`Wait::Sleep`], percore's halt + doorbell IPI): the
//! other side wakes it only when it is known to be asleep.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::sys;

/// How a side waits for its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Spin,
    Sleep,
}

/// An event count: sleepers register before their last check, so a notifier
/// that sees no sleeper needs no system call, and one that does cannot miss
/// it (every access is SeqCst: the register-then-check on one side and the
/// publish-then-look on the other cannot both miss each other).
#[derive(Default)]
struct EventCount {
    sequence: AtomicU32,
    sleepers: AtomicU32,
}

impl EventCount {
    fn notify(&self) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.sequence.fetch_add(1, Ordering::SeqCst);
            sys::futex_wake(&self.sequence);
        }
    }

    fn wait_until(&self, ready: impl Fn() -> bool) {
        while !ready() {
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let key = self.sequence.load(Ordering::SeqCst);
            if !ready() {
                sys::futex_wait(&self.sequence, key);
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Keeps the two cursors on separate cache lines.
#[repr(align(64))]
#[derive(Default)]
struct Padded<T>(T);

struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// Next slot to read (written by the consumer only).
    head: Padded<AtomicUsize>,
    /// Next slot to write (written by the producer only).
    tail: Padded<AtomicUsize>,
    not_empty: EventCount,
    not_full: EventCount,
}

// SAFETY: a slot is written only by the one producer before `tail` publishes
// it, and read only by the one consumer before `head` releases it.
unsafe impl<T: Send> Sync for Ring<T> {}

/// The sending end; there is exactly one.
pub struct Sender<T>(Arc<Ring<T>>);
/// The receiving end; there is exactly one.
pub struct Receiver<T>(Arc<Ring<T>>);

/// A ring of `capacity` (a power of two) slots.
pub fn channel<T: Copy + Send>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity.is_power_of_two(),
        "ring capacity is a power of two"
    );
    let ring = Arc::new(Ring {
        slots: (0..capacity)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
        head: Padded::default(),
        tail: Padded::default(),
        not_empty: EventCount::default(),
        not_full: EventCount::default(),
    });
    (Sender(ring.clone()), Receiver(ring))
}

impl<T: Copy + Send> Sender<T> {
    pub fn send(&mut self, value: T, wait: Wait) {
        let ring = &*self.0;
        let tail = ring.tail.0.load(Ordering::Relaxed);
        let has_room = || tail - ring.head.0.load(Ordering::SeqCst) < ring.slots.len();
        match wait {
            Wait::Spin => {
                while !has_room() {
                    std::hint::spin_loop();
                }
            }
            Wait::Sleep => ring.not_full.wait_until(has_room),
        }
        let slot = &ring.slots[tail & (ring.slots.len() - 1)];
        // SAFETY: the slot is free (has_room) and only this producer writes it.
        unsafe { (*slot.get()).write(value) };
        ring.tail.0.store(tail + 1, Ordering::SeqCst);
        ring.not_empty.notify();
    }
}

impl<T: Copy + Send> Receiver<T> {
    pub fn recv(&mut self, wait: Wait) -> T {
        let ring = &*self.0;
        let head = ring.head.0.load(Ordering::Relaxed);
        let ready = || ring.tail.0.load(Ordering::SeqCst) != head;
        match wait {
            Wait::Spin => {
                while !ready() {
                    std::hint::spin_loop();
                }
            }
            Wait::Sleep => ring.not_empty.wait_until(ready),
        }
        let slot = &ring.slots[head & (ring.slots.len() - 1)];
        // SAFETY: the producer published this slot (tail moved past it) and
        // only this consumer reads it before moving head on.
        let value = unsafe { (*slot.get()).assume_init() };
        ring.head.0.store(head + 1, Ordering::SeqCst);
        ring.not_full.notify();
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_arrives_in_order_both_ways_of_waiting() {
        for wait in [Wait::Spin, Wait::Sleep] {
            let (mut tx, mut rx) = channel::<u64>(4);
            let consumer =
                std::thread::spawn(move || (0..2_000).map(|_| rx.recv(wait)).collect::<Vec<_>>());
            for i in 0..2_000 {
                tx.send(i, wait);
            }
            assert_eq!(consumer.join().unwrap(), (0..2_000).collect::<Vec<_>>());
        }
    }
}
