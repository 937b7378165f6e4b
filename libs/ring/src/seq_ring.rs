//! [`SeqRing`]: the bounded ring with a sequence number per slot (Dmitry
//! Vyukov's MPMC design) behind the CAS multi-producer ring and the
//! work-distributing SPMC ring.
//!
//! Each slot carries `seq`. For the position `p` that maps to it
//! (`p & mask == index`):
//! - `seq == p`: the slot is free for the producer of position `p`;
//! - `seq == p + 1`: it holds the message of position `p`;
//! - after the consumer takes it, `seq = p + capacity`: free for the next lap.
//!
//! The side with several threads claims a position with a CAS on its shared
//! cursor; the side with one thread keeps its cursor in its handle and needs
//! no read-modify-write at all. Ownership of a slot passes through `seq`
//! alone: writer stores the value, then `seq` with `Release`; the other side
//! loads `seq` with `Acquire` before touching the value.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

use crate::buffer::capacity_for;
use crate::cache_pad::CachePadded;
use crate::error::{CapacityError, PushError};
use crate::sync::{AtomicUsize, Ordering, SlotTracker, spin_loop};

struct Slot<T> {
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
    tracker: SlotTracker,
}

/// A bounded ring whose slots carry sequence numbers.
pub(crate) struct SeqRing<T> {
    /// Next position to pop (shared cursor when consumers are many; the
    /// single consumer writes its final position here when it is dropped).
    head: CachePadded<AtomicUsize>,
    /// Next position to push (same rule for producers).
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    mask: usize,
}

// SAFETY: values move between threads (T: Send); slot access is made
// exclusive by the `seq` protocol described in the module doc.
unsafe impl<T: Send> Send for SeqRing<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SeqRing<T> {}

/// Signed distance `a - b` of two free-running positions (wrap-proof as long
/// as they are less than 2^63 apart, which capacities <= 2^62 guarantee).
#[inline(always)]
fn diff(a: usize, b: usize) -> isize {
    a.wrapping_sub(b) as isize
}

impl<T> SeqRing<T> {
    /// A ring of `capacity` slots rounded up to a power of two, and to at
    /// least 2: with one slot, "free for position `p`" (`seq == p`) and
    /// "holds position `p - 1`" (`seq == p - 1 + 1`) would be the same value.
    pub(crate) fn new(capacity: usize) -> Result<Self, CapacityError> {
        let capacity = capacity_for(capacity)?.max(2);
        let slots = (0..capacity)
            .map(|i| Slot {
                seq: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
                tracker: SlotTracker::new(),
            })
            .collect();
        Ok(SeqRing {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            slots,
            mask: capacity - 1,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        // `pos & mask` < capacity == slots.len(): the index is always in
        // bounds; `get_unchecked` is not needed for the compiler to see it.
        &self.slots[pos & self.mask]
    }

    /// Writes `value` into the slot of `pos` and hands it to the consumers.
    ///
    /// # Safety
    /// The caller owns position `pos` and saw `slot.seq == pos` (Acquire).
    #[inline(always)]
    unsafe fn put(&self, pos: usize, value: T) {
        let slot = self.slot(pos);
        slot.tracker.write();
        // SAFETY: per the contract the slot is free and ours alone.
        unsafe { (*slot.value.get()).write(value) };
        slot.seq.store(pos.wrapping_add(1), Ordering::Release);
    }

    /// Moves the message of `pos` out and frees the slot for the next lap.
    ///
    /// # Safety
    /// The caller owns position `pos` and saw `slot.seq == pos + 1` (Acquire).
    #[inline(always)]
    unsafe fn take(&self, pos: usize) -> T {
        let slot = self.slot(pos);
        slot.tracker.write();
        // SAFETY: per the contract the slot holds the message of `pos` and
        // nobody else reads it.
        let value = unsafe { (*slot.value.get()).assume_init_read() };
        slot.seq
            .store(pos.wrapping_add(self.capacity()), Ordering::Release);
        value
    }

    /// Push by the only producer, whose next position is `*tail`.
    ///
    /// # Safety
    /// No other thread pushes into this ring.
    #[inline]
    pub(crate) unsafe fn push_single(
        &self,
        tail: &mut usize,
        value: T,
    ) -> Result<(), PushError<T>> {
        let pos = *tail;
        if self.slot(pos).seq.load(Ordering::Acquire) != pos {
            return Err(PushError::Full(value));
        }
        // SAFETY: single producer, and `seq == pos` was seen with Acquire.
        unsafe { self.put(pos, value) };
        *tail = pos.wrapping_add(1);
        Ok(())
    }

    /// Push by one of several producers: claim a position by CAS on `tail`.
    #[inline]
    pub(crate) fn push_shared(&self, value: T) -> Result<(), PushError<T>> {
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let seq = self.slot(pos).seq.load(Ordering::Acquire);
            match diff(seq, pos) {
                0 => match self.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS made `pos` ours; `seq == pos` was
                        // seen with Acquire before it.
                        unsafe { self.put(pos, value) };
                        return Ok(());
                    }
                    Err(now) => pos = now,
                },
                // The slot still holds the message of `pos - capacity`.
                d if d < 0 => return Err(PushError::Full(value)),
                // Another producer took `pos` already: catch up (the hint
                // also lets loom's scheduler run the thread that is ahead).
                _ => {
                    spin_loop();
                    pos = self.tail.load(Ordering::Relaxed);
                }
            }
        }
    }

    /// Pop by the only consumer, whose next position is `*head`.
    ///
    /// # Safety
    /// No other thread pops from this ring.
    #[inline]
    pub(crate) unsafe fn pop_single(&self, head: &mut usize) -> Option<T> {
        let pos = *head;
        if self.slot(pos).seq.load(Ordering::Acquire) != pos.wrapping_add(1) {
            return None;
        }
        *head = pos.wrapping_add(1);
        // SAFETY: single consumer, and `seq == pos + 1` was seen with Acquire.
        Some(unsafe { self.take(pos) })
    }

    /// Pop by one of several consumers: claim a position by CAS on `head`.
    #[inline]
    pub(crate) fn pop_shared(&self) -> Option<T> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let seq = self.slot(pos).seq.load(Ordering::Acquire);
            match diff(seq, pos.wrapping_add(1)) {
                0 => match self.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    // SAFETY: the CAS made `pos` ours; `seq == pos + 1` was
                    // seen with Acquire before it.
                    Ok(_) => return Some(unsafe { self.take(pos) }),
                    Err(now) => pos = now,
                },
                // Not yet written (empty).
                d if d < 0 => return None,
                // Another consumer took `pos` already: catch up.
                _ => {
                    spin_loop();
                    pos = self.head.load(Ordering::Relaxed);
                }
            }
        }
    }

    /// Records the final position of a single-threaded side when its handle
    /// is dropped, so `Drop` knows which slots still hold messages.
    pub(crate) fn set_head(&self, head: usize) {
        self.head.store(head, Ordering::Release);
    }

    /// See [`SeqRing::set_head`].
    pub(crate) fn set_tail(&self, tail: usize) {
        self.tail.store(tail, Ordering::Release);
    }
}

impl<T> Drop for SeqRing<T> {
    fn drop(&mut self) {
        let mut pos = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        while pos != tail {
            let slot = self.slot(pos);
            // A claimed-but-unwritten slot cannot exist here: every handle
            // is gone, and a push finishes before its handle can be dropped.
            if slot.seq.load(Ordering::Acquire) == pos.wrapping_add(1) {
                // SAFETY: `&mut self`, and `seq == pos + 1` means the slot
                // holds the unconsumed message of `pos`.
                unsafe { (*slot.value.get()).assume_init_drop() };
            }
            pos = pos.wrapping_add(1);
        }
    }
}
