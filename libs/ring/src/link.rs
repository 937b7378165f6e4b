//! **Unbounded** SPSC queue over a linked list of fixed-size segments, for
//! the rare place that must never backpressure (e.g. a log sink that may not
//! stall the kernel). Unlike every other ring in this crate it **allocates**
//! a segment every [`SEGMENT`] pushes and frees it once consumed, so it is
//! not for hot paths or for code that runs before the heap exists, and a
//! stuck consumer lets it grow without bound.
//!
//! Ordering: the producer writes a slot (and, at a segment boundary, links
//! the new segment into `next`) before storing `tail` with Release; the
//! consumer loads `tail` with Acquire before reading the slot or following
//! `next`. The consumer frees a segment only after it moved to the next one,
//! at which point the producer has moved on too (it wrote into the next
//! segment first).
//!
//! ```
//! use percore_ring::link;
//! let (mut tx, mut rx) = link::channel::<u32>();
//! for i in 0..1000 { tx.push(i); } // never full
//! assert_eq!(rx.try_pop(), Ok(0));
//! ```

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;

use crate::cache_pad::CachePadded;
use crate::error::{PopError, PushError};
use crate::queue::{Receiver, Sender};
use crate::sync::{Arc, AtomicPtr, AtomicUsize, Ordering, SlotTracker};

/// Slots per segment.
/// (Two under loom, so model tests cross segment boundaries cheaply.)
pub const SEGMENT: usize = if cfg!(loom) { 2 } else { 32 };

struct Segment<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; SEGMENT],
    trackers: [SlotTracker; SEGMENT],
    next: AtomicPtr<Segment<T>>,
}

impl<T> Segment<T> {
    fn alloc() -> *mut Segment<T> {
        Box::into_raw(Box::new(Segment {
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; SEGMENT],
            trackers: core::array::from_fn(|_| SlotTracker::new()),
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }
}

struct Shared<T> {
    /// Messages pushed so far (producer writes).
    tail: CachePadded<AtomicUsize>,
    /// Messages popped so far (consumer writes; read when dropping).
    head: CachePadded<AtomicUsize>,
    /// Segment holding position `head` (consumer's; read when dropping).
    head_seg: AtomicPtr<Segment<T>>,
}

// SAFETY: values move from the producer's thread to the consumer's (T: Send);
// segments are owned by whichever side the protocol in the module doc says.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        let mut seg = self.head_seg.load(Ordering::Acquire);
        // First position stored in `seg`. The consumer switches segments
        // lazily (when it pops the first position of the next one), so at
        // a boundary `head` may still point into the fully consumed segment.
        let mut base = if head.is_multiple_of(SEGMENT) && head != 0 {
            head - SEGMENT
        } else {
            head - head % SEGMENT
        };
        let mut pos = head;
        while !seg.is_null() {
            while pos != tail && pos < base + SEGMENT {
                // SAFETY: both handles are gone and `seg` (from
                // `Segment::alloc`) holds the unconsumed message of `pos`.
                unsafe { (*(*seg).slots[pos - base].get()).assume_init_drop() };
                pos += 1;
            }
            // SAFETY: `seg` is live and reachable only through this chain;
            // each segment is freed exactly once as we walk it.
            let boxed = unsafe { Box::from_raw(seg) };
            seg = boxed.next.load(Ordering::Acquire);
            base += SEGMENT;
        }
    }
}

/// The sending half: [`Producer::push`] never fails (it allocates instead).
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: usize,
    seg: *mut Segment<T>,
}

/// The receiving half.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: usize,
    cached_tail: usize,
    seg: *mut Segment<T>,
}

// SAFETY: the raw segment pointer is only dereferenced by the handle's
// owner under the protocol above; moving the handle to another thread is
// fine when values may move (T: Send).
unsafe impl<T: Send> Send for Producer<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Consumer<T> {}

/// Creates an unbounded linked SPSC queue (allocates its first segment).
///
/// ```
/// use percore_ring::link;
/// let (mut tx, mut rx) = link::channel::<String>();
/// tx.push("hello".into());
/// assert_eq!(rx.try_pop().as_deref(), Ok("hello"));
/// ```
pub fn channel<T>() -> (Producer<T>, Consumer<T>) {
    let first = Segment::alloc();
    let shared = Arc::new(Shared {
        tail: CachePadded(AtomicUsize::new(0)),
        head: CachePadded(AtomicUsize::new(0)),
        head_seg: AtomicPtr::new(first),
    });
    (
        Producer {
            shared: shared.clone(),
            tail: 0,
            seg: first,
        },
        Consumer {
            shared,
            head: 0,
            cached_tail: 0,
            seg: first,
        },
    )
}

impl<T> Producer<T> {
    /// Appends `value`; allocates a new segment every [`SEGMENT`] pushes.
    pub fn push(&mut self, value: T) {
        let pos = self.tail;
        if pos.is_multiple_of(SEGMENT) && pos != 0 {
            let new = Segment::alloc();
            // SAFETY: `seg` is the producer's current segment; the consumer
            // cannot free it before `tail` passes into the next segment,
            // which happens only after this link is stored.
            unsafe { (*self.seg).next.store(new, Ordering::Release) };
            self.seg = new;
        }
        // SAFETY: slot `pos % SEGMENT` of the current segment has never been
        // written, and the consumer reads it only after `tail > pos`.
        unsafe {
            let seg = &*self.seg;
            seg.trackers[pos % SEGMENT].write();
            (*seg.slots[pos % SEGMENT].get()).write(value);
        }
        self.tail = pos.wrapping_add(1);
        self.shared.tail.store(self.tail, Ordering::Release);
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest message, or [`PopError::Empty`].
    ///
    /// ```
    /// use percore_ring::{PopError, link};
    /// let (_tx, mut rx) = link::channel::<u8>();
    /// assert_eq!(rx.try_pop(), Err(PopError::Empty));
    /// ```
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        if self.head == self.cached_tail {
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return Err(PopError::Empty);
            }
        }
        let pos = self.head;
        if pos.is_multiple_of(SEGMENT) && pos != 0 {
            let old = self.seg;
            // SAFETY: `tail > pos` (Acquire) and the producer linked the next
            // segment before publishing `pos`, so `next` is set; the old
            // segment's slots were all consumed and the producer left it.
            unsafe {
                self.seg = (*old).next.load(Ordering::Acquire);
                self.shared.head_seg.store(self.seg, Ordering::Release);
                drop(Box::from_raw(old));
            }
        }
        // SAFETY: position `pos` was published (Acquire on tail) and is read
        // exactly once, by this consumer.
        let value = unsafe {
            let seg = &*self.seg;
            seg.trackers[pos % SEGMENT].write();
            (*seg.slots[pos % SEGMENT].get()).assume_init_read()
        };
        self.head = pos.wrapping_add(1);
        self.shared.head.store(self.head, Ordering::Release);
        Ok(value)
    }
}

impl<T> Sender<T> for Producer<T> {
    fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.push(value);
        Ok(())
    }
}

impl<T> Receiver<T> for Consumer<T> {
    fn try_pop(&mut self) -> Result<T, PopError> {
        Consumer::try_pop(self)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn crosses_segments_in_order() {
        let (mut tx, mut rx) = channel::<usize>();
        for round in 0..3 {
            for i in 0..(SEGMENT * 2 + 5) {
                tx.push(round * 1000 + i);
            }
            for i in 0..(SEGMENT * 2 + 5) {
                assert_eq!(rx.try_pop(), Ok(round * 1000 + i));
            }
            assert_eq!(rx.try_pop(), Err(PopError::Empty));
        }
    }

    #[test]
    fn drop_frees_unconsumed_at_every_boundary() {
        for consumed in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT] {
            let value = Arc::new(());
            let (mut tx, mut rx) = channel::<Arc<()>>();
            for _ in 0..(3 * SEGMENT) {
                tx.push(value.clone());
            }
            for _ in 0..consumed {
                drop(rx.try_pop().unwrap());
            }
            drop((tx, rx));
            assert_eq!(Arc::strong_count(&value), 1, "consumed {consumed}");
        }
    }

    #[test]
    fn threads_deliver_in_order() {
        let n: usize = if cfg!(miri) { 100 } else { 10_000 };
        let (mut tx, mut rx) = channel::<usize>();
        let h = std::thread::spawn(move || (0..n).for_each(|i| tx.push(i)));
        let mut expect = 0;
        while expect < n {
            if let Ok(v) = rx.try_pop() {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        h.join().unwrap();
    }
}
