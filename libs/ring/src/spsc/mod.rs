//! Single-producer single-consumer ring: the intercore link of one core pair.
//!
//! Layout: the producer's `tail` and the consumer's `head` each sit alone on a
//! 128-byte line. Each handle keeps its own cursor in a plain field (it is
//! the only writer) and a *cached copy* of the other side's cursor, refreshed
//! only when the cache says "full" (producer) or "empty" (consumer). So a
//! push into a ring that is not full touches the slot and one store to
//! `tail`, and nothing the consumer writes.
//!
//! Batched release (MCRingBuffer): the producer publishes `tail` on every
//! push, so a message is visible at once, but the consumer publishes `head`
//! only every `release_batch` pops (a quarter of the capacity, at most 256;
//! every pop below 32 slots), and whenever it refreshes its copy of `tail`
//! (its cache says "empty"), commits a read chunk, or is dropped. Freed
//! slots are the only thing that waits: a ring being drained hands the
//! producer its space back in runs, so a producer that fills the ring
//! reloads `head` once per run instead of once per message, and it stays a
//! run behind the consumer, never writing into the cache line the consumer
//! is reading. A consumer that has drained the ring has always published
//! everything; one that stops part-way holds back fewer than
//! `release_batch` slots.
//!
//! Hot paths: each side compares its cursor with one precomputed *stop*
//! position and takes the slow path only there: the producer's `limit`
//! (cached `head` + capacity), the consumer's `stop` (the nearer of the
//! cached `tail` and the next release). So a push is one compare, the slot
//! write and the `tail` store; a pop is one compare and the slot read.
//!
//! Chasing (the consumer's *hold*): a consumer that is faster than its
//! producer catches up with it and then reloads `tail` after every few
//! messages. Each reload takes `tail`'s line (and the slot line being
//! written) away from the producer, whose next stores then wait for them
//! to come back: the ring runs at a few messages per cache-line round trip,
//! and the faster the consumer, the slower the pair (measured on a 2-vCPU
//! Zen 5 guest: a consumer slowed by four multiplies per message moved
//! 2.9x more messages). So when a reload of `tail` finds a short run (more
//! than one message, fewer than `hold_below`), `try_pop` waits a few
//! `spin_loop` pauses before its *next* reload, letting the producer get a
//! longer run ahead. The number of pauses adapts: it doubles (up to
//! [`MAX_HOLD_SPINS`]) while holds still end in short runs, and halves when
//! a hold ends with at most one message, which is what a request/response
//! exchange looks like, so a lone message never waits for a hold. Only
//! `try_pop` holds; `peek`, `slots`, `is_empty` and `read_chunk` always
//! look at `tail` at once, and no hold ever hides a message: it only delays
//! a reload that follows a run the caller has just been handed.
//!
//! Waiting for a message: a `try_pop` that finds the ring empty, when its
//! last reload of `tail` found a lone message (the pattern of a
//! request/response exchange, not of a stream), also *prefetches* the slot
//! the next message will be written to. The line stays in this core's
//! cache until the producer's write takes it away; the next `try_pop`
//! after that misses on `tail` and on the slot at once, so the two lines
//! travel together instead of one after the other (RTT p50 over two rings
//! on the Zen 5 guest: 91-100 ns against 120 without the prefetch; 541
//! against 611-621 when the host places the two vCPUs far apart). In a
//! stream the prefetch would pull the line the producer is filling away
//! from it, so a consumer that found runs longer than one does not
//! prefetch. It is a hint only: the slot is read after the Acquire load
//! of `tail` as always.
//!
//! Memory ordering: the producer writes the slot, then stores `tail` with
//! `Release`; the consumer loads `tail` with `Acquire` before reading the
//! slot, so the slot write happens-before the read. Symmetrically the
//! consumer moves the value out, then stores `head` with `Release`, and the
//! producer loads `head` with `Acquire` before overwriting that slot.
//!
//! ```
//! use percore_ring::spsc;
//! let (mut tx, mut rx) = spsc::channel::<u64>(1024).unwrap();
//! std::thread::spawn(move || for i in 0..100 { while tx.try_push(i).is_err() {} });
//! for i in 0..100 { loop { if let Ok(v) = rx.try_pop() { assert_eq!(v, i); break; } } }
//! ```

mod chunk;

pub use chunk::{ReadChunk, ReadChunkIntoIter, WriteChunk, WriteChunkUninit};

use core::mem::MaybeUninit;

use crate::buffer::{Buffer, capacity_for};
use crate::cache_pad::CachePadded;
use crate::error::{CapacityError, PopError, PushError};
use crate::queue::{Receiver, Sender};
use crate::sync::{Arc, AtomicUsize, Ordering, spin_loop};

/// How many pops the consumer makes between two stores of `head`: a
/// quarter of the capacity, at most 256, and 1 (every pop) for rings of
/// fewer than 32 slots. Long runs let a producer waiting on a full ring
/// reload `head` once per run (on the Zen 5 guest, with a consumer that
/// holds the producer back: 1024 slots, runs of 256 moved 5-9% more `u64`
/// messages than runs of 64, with no change in round-trip time or for
/// 64-byte messages). Loom models use rings of a few slots, so there the
/// runs are half the ring, to exercise the lag.
const fn release_batch(capacity: usize) -> usize {
    if cfg!(loom) {
        if capacity < 2 { 1 } else { capacity / 2 }
    } else if capacity < 32 {
        1
    } else if capacity / 4 < 256 {
        capacity / 4
    } else {
        256
    }
}

/// A reload of `tail` that finds a run shorter than `capacity / HOLD_DIVISOR`
/// (at most [`HOLD_MAX_RUN`]) and longer than one makes the next reload wait.
const HOLD_DIVISOR: usize = 8;
/// Upper bound of `hold_below`: runs of 128 messages cost one `tail` line
/// round trip per 128 messages, which is where the gain levels off.
const HOLD_MAX_RUN: usize = 128;
/// Most `spin_loop` pauses a hold waits (about 1.5 us at the 24 ns a pause
/// takes on the Zen 5 guest where this was measured).
pub const MAX_HOLD_SPINS: u32 = 64;

/// The state both handles share.
pub(crate) struct Shared<T> {
    /// Next position the consumer will read (written by the consumer only).
    head: CachePadded<AtomicUsize>,
    /// Next position the producer will write (written by the producer only).
    tail: CachePadded<AtomicUsize>,
    buf: Buffer<T>,
}

// SAFETY: the buffer is a unique allocation; values of `T` are moved from the
// producer's thread to the consumer's, so `T: Send` is all that is needed.
// The cursor protocol (module doc) keeps slot accesses exclusive.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; `&Shared` only gives access to atomics and to slots
// through the handles, which enforce the single-producer/consumer protocol.
unsafe impl<T: Send> Sync for Shared<T> {}

// SAFETY: `slots` points into the `Shared` the handle co-owns through its
// `Arc`; it is only a cached copy of `shared.buf`'s pointer, so sending the
// handle is sending the `Arc` (which needs `Shared<T>: Send + Sync`, i.e.
// `T: Send`).
unsafe impl<T: Send> Send for Producer<T> {}
// SAFETY: as for `Producer`.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut pos = head;
        while pos != tail {
            // SAFETY: both handles are gone (we are in the last Arc's drop),
            // and positions in head..tail hold initialised, unconsumed values.
            unsafe { (*self.buf.read_ptr(pos)).assume_init_drop() };
            pos = pos.wrapping_add(1);
        }
    }
}

/// The sending half of an SPSC ring. `Send`, not `Clone`.
///
/// The handle is written on every push (its own cursor), so it is aligned to
/// its own 128-byte line: it cannot false-share with the consumer's handle
/// wherever the two are placed.
#[repr(align(128))]
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// Copy of the slot array's base pointer and index mask, so the hot path
    /// does not chase the `Arc` to find them.
    slots: *mut MaybeUninit<T>,
    mask: usize,
    /// Own cursor: authoritative copy of `shared.tail`.
    tail: usize,
    /// Last `head` seen plus the capacity: the slots `tail..limit` are free.
    limit: usize,
}

/// The receiving half of an SPSC ring. `Send`, not `Clone`.
///
/// Aligned to its own 128-byte line for the same reason as [`Producer`].
#[repr(align(128))]
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// See [`Producer`]'s field of the same name.
    slots: *mut MaybeUninit<T>,
    mask: usize,
    /// Own cursor: `shared.head` lags it by less than `release_batch`.
    head: usize,
    /// Last `tail` seen; at least `cached_tail - head` messages are ready.
    cached_tail: usize,
    /// The value last stored to `shared.head`.
    released: usize,
    /// Pops between two stores of `shared.head` (see the module doc).
    release_batch: usize,
    /// Runs shorter than this (and longer than one) found by a reload make
    /// the next reload wait (see "Chasing" in the module doc); 0 or 1 turns
    /// holding off (rings of fewer than 16 slots).
    hold_below: usize,
    /// The last reload found a short run: the next one waits `hold_spins`.
    hold: bool,
    /// Pauses a hold waits, adapted between 1 and [`MAX_HOLD_SPINS`].
    hold_spins: u32,
    /// The last reload found exactly one message: an empty ring then
    /// prefetches the next slot (see "Waiting for a message").
    lone: bool,
    /// Where `try_pop` must leave its fast path: the nearer (from `head`) of
    /// `cached_tail` (nothing more is known to be ready) and
    /// `released + release_batch - 1` (the next pop completes a run).
    stop: usize,
}

/// Creates an SPSC ring of `capacity` slots, rounded up to a power of two
/// (see [`capacity_for`](crate::capacity_for)). The only allocation the ring
/// ever makes happens here.
///
/// ```
/// use percore_ring::spsc;
/// let (tx, rx) = spsc::channel::<u32>(3).unwrap();
/// assert_eq!((tx.capacity(), rx.capacity()), (4, 4));
/// ```
pub fn channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    let capacity = capacity_for(capacity)?;
    let shared = Arc::new(Shared {
        head: CachePadded(AtomicUsize::new(0)),
        tail: CachePadded(AtomicUsize::new(0)),
        buf: Buffer::new(capacity)?,
    });
    let (slots, mask) = (shared.buf.raw(0), capacity - 1);
    let producer = Producer {
        shared: shared.clone(),
        slots,
        mask,
        tail: 0,
        limit: capacity,
    };
    let consumer = Consumer {
        shared,
        slots,
        mask,
        head: 0,
        cached_tail: 0,
        released: 0,
        release_batch: release_batch(capacity),
        hold_below: (capacity / HOLD_DIVISOR).min(HOLD_MAX_RUN),
        hold: false,
        hold_spins: 1,
        lone: true,
        stop: 0,
    };
    Ok((producer, consumer))
}

impl<T> Producer<T> {
    /// Pushes `value`, or returns it in [`PushError::Full`].
    ///
    /// ```
    /// use percore_ring::{PushError, spsc};
    /// let (mut tx, mut rx) = spsc::channel(1).unwrap();
    /// assert_eq!(tx.try_push('a'), Ok(()));
    /// assert_eq!(tx.try_push('b'), Err(PushError::Full('b')));
    /// assert_eq!(rx.try_pop(), Ok('a'));
    /// ```
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.tail == self.limit && self.free_slots_for(1) == 0 {
            return Err(PushError::Full(value));
        }
        let tail = self.tail;
        self.shared.buf.track(tail, 1, true);
        // SAFETY: position `tail` is free (`tail - head < capacity`, with
        // `head` loaded with Acquire, so the consumer finished moving the old
        // value out), and only this producer writes slots at `tail`;
        // `tail & mask < capacity` keeps the pointer in the array.
        unsafe {
            self.slots
                .add(tail & self.mask)
                .write(MaybeUninit::new(value))
        };
        self.tail = tail.wrapping_add(1);
        self.shared.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Free slots, refreshing the cached consumer cursor only if the cache
    /// shows fewer than `want`.
    #[inline(always)]
    fn free_slots_for(&mut self, want: usize) -> usize {
        let mut free = self.limit.wrapping_sub(self.tail);
        if free < want {
            let head = self.shared.head.load(Ordering::Acquire);
            self.limit = head.wrapping_add(self.mask + 1);
            free = self.limit.wrapping_sub(self.tail);
        }
        free
    }

    /// Free slots right now (reads the consumer's cursor).
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, _rx) = spsc::channel::<u8>(4).unwrap();
    /// tx.try_push(0).unwrap();
    /// assert_eq!(tx.slots(), 3);
    /// ```
    pub fn slots(&mut self) -> usize {
        self.free_slots_for(usize::MAX)
    }

    /// `true` if no slot is free right now.
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, _rx) = spsc::channel::<u8>(1).unwrap();
    /// tx.try_push(0).unwrap();
    /// assert!(tx.is_full());
    /// ```
    pub fn is_full(&mut self) -> bool {
        self.free_slots_for(1) == 0
    }

    /// Number of slots (a power of two).
    ///
    /// ```
    /// use percore_ring::spsc;
    /// assert_eq!(spsc::channel::<u8>(1000).unwrap().0.capacity(), 1024);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.buf.capacity()
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest message, or [`PopError::Empty`].
    ///
    /// ```
    /// use percore_ring::{PopError, spsc};
    /// let (mut tx, mut rx) = spsc::channel(4).unwrap();
    /// tx.try_push(1).unwrap();
    /// assert_eq!(rx.try_pop(), Ok(1));
    /// assert_eq!(rx.try_pop(), Err(PopError::Empty));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        if self.head == self.stop {
            return self.pop_slow();
        }
        // `head < stop <= cached_tail`: a message is ready, and `head + 1`
        // stays at or before `stop`.
        Ok(self.take())
    }

    /// `try_pop` at `head == stop`: reloads `tail` if nothing is known to
    /// be ready (waiting out a hold first, and adapting it), pops, and
    /// releases the run if it is complete. Kept out of line so the fast
    /// path stays a compare and a read.
    #[inline(never)]
    fn pop_slow(&mut self) -> Result<T, PopError> {
        if self.head == self.cached_tail {
            // Hand back what was popped before looking for more, so a
            // consumer that drains the ring holds nothing back.
            if self.released != self.head {
                self.released = self.head;
                self.shared.head.store(self.head, Ordering::Release);
            }
            let held = core::mem::take(&mut self.hold);
            if held {
                for _ in 0..self.hold_spins {
                    spin_loop();
                }
            }
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            let run = self.cached_tail.wrapping_sub(self.head);
            if held {
                self.hold_spins = if run <= 1 {
                    // The producer was not streaming: a hold only adds latency.
                    (self.hold_spins / 2).max(1)
                } else if run < self.hold_below {
                    // Still chasing: wait longer next time.
                    (self.hold_spins * 2).min(MAX_HOLD_SPINS)
                } else {
                    self.hold_spins
                };
            }
            if run == 0 {
                if self.lone {
                    prefetch(self.slots.wrapping_add(self.head & self.mask));
                }
                // `stop == head` already (the fast path stays closed).
                return Err(PopError::Empty);
            }
            self.hold = run > 1 && run < self.hold_below;
            self.lone = run == 1;
        }
        let value = self.take();
        if self.head.wrapping_sub(self.released) >= self.release_batch {
            self.released = self.head;
            self.shared.head.store(self.head, Ordering::Release);
        }
        self.update_stop();
        Ok(value)
    }

    /// Moves the message at `head` out and advances `head` (not `stop`).
    /// The caller has made sure one is ready (`head != cached_tail`).
    #[inline(always)]
    fn take(&mut self) -> T {
        let head = self.head;
        self.shared.buf.track(head, 1, true);
        // SAFETY: `head < cached_tail`, a `tail` loaded with Acquire, so the
        // producer's write of this slot happens-before this read, and the
        // slot holds an initialised value that only this consumer moves out
        // (the producer reuses it only after `head` is published past it).
        let value = unsafe { self.slots.add(head & self.mask).read().assume_init() };
        self.head = head.wrapping_add(1);
        value
    }

    /// Publishes `head`: every slot popped so far is free for the producer.
    /// Every change of `head` other than a single pop ends here.
    #[inline]
    fn release(&mut self) {
        self.released = self.head;
        self.shared.head.store(self.head, Ordering::Release);
        self.update_stop();
    }

    /// Recomputes `stop` after `head`, `cached_tail` or `released` moved.
    /// The pop *from* `released + release_batch - 1` is the one that
    /// completes a run, so it is taken on the slow path, which releases.
    #[inline(always)]
    fn update_stop(&mut self) {
        let release_at = self.released.wrapping_add(self.release_batch - 1);
        let ready = self.cached_tail.wrapping_sub(self.head);
        self.stop = if ready < release_at.wrapping_sub(self.head) {
            self.cached_tail
        } else {
            release_at
        };
    }

    /// A reference to the oldest message without removing it.
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, mut rx) = spsc::channel(4).unwrap();
    /// tx.try_push(9).unwrap();
    /// assert_eq!(rx.peek(), Some(&9));
    /// assert_eq!(rx.try_pop(), Ok(9));
    /// ```
    pub fn peek(&mut self) -> Option<&T> {
        if self.ready_for(1) == 0 {
            return None;
        }
        // SAFETY: as in `try_pop`, the slot at `head` is initialised and the
        // producer will not touch it until `head` moves, which needs `&mut self`.
        Some(unsafe { (*self.shared.buf.read_ptr(self.head)).assume_init_ref() })
    }

    /// Ready messages, refreshing the cached producer cursor only if the
    /// cache shows fewer than `want`.
    #[inline(always)]
    fn ready_for(&mut self, want: usize) -> usize {
        let mut ready = self.cached_tail.wrapping_sub(self.head);
        if ready < want {
            // The cache ran dry: hand back what was popped before looking
            // for more, so a consumer that drains the ring holds nothing back.
            if self.released != self.head {
                self.release();
            }
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            ready = self.cached_tail.wrapping_sub(self.head);
            self.update_stop();
        }
        ready
    }

    /// Messages ready right now (reads the producer's cursor).
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, mut rx) = spsc::channel(4).unwrap();
    /// tx.try_push(1).unwrap();
    /// assert_eq!(rx.slots(), 1);
    /// ```
    pub fn slots(&mut self) -> usize {
        self.ready_for(usize::MAX)
    }

    /// `true` if no message is ready right now.
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (_tx, mut rx) = spsc::channel::<u8>(4).unwrap();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&mut self) -> bool {
        self.ready_for(1) == 0
    }

    /// Number of slots (a power of two).
    ///
    /// ```
    /// use percore_ring::spsc;
    /// assert_eq!(spsc::channel::<u8>(2).unwrap().1.capacity(), 2);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.buf.capacity()
    }
}

impl<T> Drop for Consumer<T> {
    /// Publishes the last pops, so the ring drops exactly the messages
    /// still in it (and a producer still running sees every free slot).
    fn drop(&mut self) {
        self.release();
    }
}

impl<T> Sender<T> for Producer<T> {
    #[inline]
    fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        Producer::try_push(self, value)
    }
}

impl<T> Receiver<T> for Consumer<T> {
    #[inline]
    fn try_pop(&mut self) -> Result<T, PopError> {
        Consumer::try_pop(self)
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

/// Starts loading the line at `p` into this core's cache (a hint: never
/// faults, no effect on the program's meaning).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; a
    // prefetch does not access memory in the sense of the memory model.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    let _ = p;
}
