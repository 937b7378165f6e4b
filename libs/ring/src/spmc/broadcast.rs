//! The broadcast ring (Disruptor-style multi-cursor): the publisher writes
//! each message once into a preallocated slot; every subscriber reads every
//! message in place through its own cursor; the publisher never overwrites a
//! slot that some subscriber has not read yet (backpressure).
//!
//! Slots always hold a valid `T` (filled by a factory at creation, like the
//! Disruptor's event factory), so the publisher can also write *in place*
//! and nothing is ever dropped or moved on the hot path.
//!
//! Cursors: `published` counts messages; each subscriber owns one entry of a
//! fixed cursor table (size `max_subscribers`, chosen at creation) holding
//! the next position it will read, or [`FREE`] when unused. The publisher
//! caches `gate`, a past minimum of the live cursors, and rescans the table
//! only when `published - gate == capacity`.
//!
//! Ordering: publisher writes a slot, then stores `published` (Release);
//! a subscriber loads `published` (Acquire) before reading slots, and stores
//! its cursor (Release) after it has finished reading them; the publisher
//! loads cursors (Acquire) before overwriting. A subscriber only ever
//! appears through [`Publisher::subscribe`], on the publisher's own thread,
//! starting at `published`: a cursor that the gate did not see is therefore
//! never behind the gate, which is why joining is race-free without any
//! handshake. Leaving (dropping a [`Subscriber`]) stores `FREE`, which only
//! relaxes the gate.
//!
//! ```
//! use percore_ring::spmc::broadcast;
//! let mut publisher = broadcast::create::<u64>(8, 4).unwrap();
//! let mut a = publisher.subscribe().unwrap();
//! let mut b = publisher.subscribe().unwrap();
//! publisher.try_publish(42).unwrap();
//! assert_eq!(a.try_recv(), Some(42));
//! assert_eq!(b.read_chunk(1).unwrap().as_slices().0, &[42]); // in place
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

use crate::buffer::{Buffer, capacity_for};
use crate::cache_pad::CachePadded;
use crate::error::{CapacityError, ChunkError, PushError, SubscribeError};
use crate::sync::{Arc, AtomicUsize, Ordering};

/// Cursor-table value of an unused entry.
const FREE: usize = usize::MAX;

/// The most subscribers a ring can be created for.
pub const MAX_SUBSCRIBERS: usize = 1024;

/// Identifies a subscriber's cursor-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriberId(pub usize);

struct Shared<T> {
    published: CachePadded<AtomicUsize>,
    cursors: Box<[CachePadded<AtomicUsize>]>,
    buf: Buffer<T>,
}

// SAFETY: subscribers on other threads read `&T` from slots (T: Sync) and the
// publisher on its thread writes them (T: Send); the cursor protocol (module
// doc) orders every write after all reads of the previous lap.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        for pos in 0..self.buf.capacity() {
            // SAFETY: every slot was initialised in `create_with` and stays
            // initialised; this is the last owner.
            unsafe { (*self.buf.raw(pos)).assume_init_drop() };
        }
    }
}

/// The single writer of a broadcast ring. `Send`, not `Clone`.
pub struct Publisher<T> {
    shared: Arc<Shared<T>>,
    /// Own cursor: number of messages published.
    next: usize,
    /// A past minimum of the live subscriber cursors (`<= next`).
    gate: usize,
}

/// One reader of a broadcast ring; it sees every message published after it
/// subscribed. Dropping it unsubscribes.
pub struct Subscriber<T> {
    shared: Arc<Shared<T>>,
    id: usize,
    /// Own cursor: next position to read.
    pos: usize,
    /// Last `published` seen.
    cached_published: usize,
}

/// Creates a broadcast ring of `capacity` slots (rounded up to a power of
/// two), each set to `T::default()`, with room for `max_subscribers`
/// (1..=[`MAX_SUBSCRIBERS`]) simultaneous subscribers.
///
/// ```
/// use percore_ring::spmc::broadcast;
/// let publisher = broadcast::create::<u64>(1000, 2).unwrap();
/// assert_eq!(publisher.capacity(), 1024);
/// ```
pub fn create<T: Default>(
    capacity: usize,
    max_subscribers: usize,
) -> Result<Publisher<T>, CapacityError> {
    create_with(capacity, max_subscribers, T::default)
}

/// Like [`create`], with every slot initialised by `factory`.
///
/// ```
/// use percore_ring::spmc::broadcast;
/// let publisher = broadcast::create_with(4, 1, || [0u8; 64]).unwrap();
/// assert_eq!(publisher.capacity(), 4);
/// ```
pub fn create_with<T>(
    capacity: usize,
    max_subscribers: usize,
    mut factory: impl FnMut() -> T,
) -> Result<Publisher<T>, CapacityError> {
    let capacity = capacity_for(capacity)?;
    match max_subscribers {
        0 => return Err(CapacityError::Zero),
        n if n > MAX_SUBSCRIBERS => return Err(CapacityError::TooLarge),
        _ => {}
    }
    let buf = Buffer::new(capacity)?;
    for pos in 0..capacity {
        // SAFETY: fresh allocation, not shared yet; every slot written once.
        unsafe { buf.raw(pos).write(MaybeUninit::new(factory())) };
    }
    let cursors: Vec<_> = (0..max_subscribers)
        .map(|_| CachePadded(AtomicUsize::new(FREE)))
        .collect();
    let shared = Arc::new(Shared {
        published: CachePadded(AtomicUsize::new(0)),
        cursors: cursors.into_boxed_slice(),
        buf,
    });
    Ok(Publisher {
        shared,
        next: 0,
        gate: 0,
    })
}

impl<T> Publisher<T> {
    /// Adds a subscriber that will see every message published from now on.
    ///
    /// ```
    /// use percore_ring::spmc::broadcast;
    /// let mut publisher = broadcast::create::<u8>(4, 2).unwrap();
    /// publisher.try_publish(1).unwrap();
    /// let mut late = publisher.subscribe().unwrap();
    /// assert_eq!(late.try_recv(), None); // joined after message 1
    /// ```
    pub fn subscribe(&mut self) -> Result<Subscriber<T>, SubscribeError> {
        for (id, cursor) in self.shared.cursors.iter().enumerate() {
            // Only the publisher turns FREE entries into cursors, so a plain
            // load-then-store cannot race with another claimer.
            if cursor.load(Ordering::Acquire) == FREE {
                cursor.store(self.next, Ordering::Release);
                return Ok(Subscriber {
                    shared: self.shared.clone(),
                    id,
                    pos: self.next,
                    cached_published: self.next,
                });
            }
        }
        Err(SubscribeError::NoFreeCursor)
    }

    /// Free slots, rescanning the cursors only if the cached gate shows
    /// fewer than `want`.
    #[inline(always)]
    fn free_slots_for(&mut self, want: usize) -> usize {
        let cap = self.shared.buf.capacity();
        let mut free = cap - self.next.wrapping_sub(self.gate);
        if free < want {
            self.gate = self.min_cursor();
            free = cap - self.next.wrapping_sub(self.gate);
        }
        free
    }

    /// The slowest live cursor, or `next` when there is no subscriber.
    fn min_cursor(&self) -> usize {
        // Distances behind `next` are compared instead of raw positions so
        // the minimum is right even when positions wrap.
        let mut lag = 0;
        for cursor in self.shared.cursors.iter() {
            let c = cursor.load(Ordering::Acquire);
            if c != FREE {
                lag = lag.max(self.next.wrapping_sub(c));
            }
        }
        self.next.wrapping_sub(lag)
    }

    /// Publishes `value` to every current subscriber, or returns it if the
    /// slowest subscriber is a full ring behind.
    ///
    /// ```
    /// use percore_ring::{PushError, spmc::broadcast};
    /// let mut publisher = broadcast::create::<u8>(1, 1).unwrap();
    /// let mut sub = publisher.subscribe().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(publisher.try_publish(2), Err(PushError::Full(2)));
    /// assert_eq!(sub.try_recv(), Some(1));
    /// assert_eq!(publisher.try_publish(2), Ok(()));
    /// ```
    #[inline]
    pub fn try_publish(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.free_slots_for(1) == 0 {
            return Err(PushError::Full(value));
        }
        // SAFETY: slot `next` is past every live cursor by less than a lap
        // (checked against Acquire loads of the cursors), so no subscriber
        // reads it; the slot holds an initialised `T`, dropped by assignment.
        unsafe { *(*self.shared.buf.write_ptr(self.next)).assume_init_mut() = value };
        self.next = self.next.wrapping_add(1);
        self.shared.published.store(self.next, Ordering::Release);
        Ok(())
    }

    /// Writes up to `n` messages in place: `fill` gets `&mut T` for each of
    /// `n` free slots (holding stale values) and all `n` are published at
    /// once. Returns [`ChunkError::TooFewSlots`] if fewer than `n` are free.
    ///
    /// ```
    /// use percore_ring::spmc::broadcast;
    /// let mut publisher = broadcast::create::<u32>(8, 1).unwrap();
    /// let mut sub = publisher.subscribe().unwrap();
    /// publisher.publish_with(3, |i, slot| *slot = i as u32 * 10).unwrap();
    /// assert_eq!(sub.read_chunk(3).unwrap().as_slices().0, &[0, 10, 20]);
    /// ```
    pub fn publish_with(
        &mut self,
        n: usize,
        mut fill: impl FnMut(usize, &mut T),
    ) -> Result<(), ChunkError> {
        let free = self.free_slots_for(n);
        if free < n {
            return Err(ChunkError::TooFewSlots(free));
        }
        let buf = &self.shared.buf;
        buf.track(self.next, n, true);
        for i in 0..n {
            // SAFETY: the `n` slots from `next` are free (as in `try_publish`)
            // and initialised; one `&mut` at a time.
            fill(i, unsafe {
                (*buf.raw(self.next.wrapping_add(i))).assume_init_mut()
            });
        }
        self.next = self.next.wrapping_add(n);
        self.shared.published.store(self.next, Ordering::Release);
        Ok(())
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.shared.buf.capacity()
    }

    /// Number of live subscribers (a snapshot).
    ///
    /// ```
    /// use percore_ring::spmc::broadcast;
    /// let mut publisher = broadcast::create::<u8>(4, 2).unwrap();
    /// let sub = publisher.subscribe().unwrap();
    /// assert_eq!(publisher.subscribers(), 1);
    /// drop(sub);
    /// assert_eq!(publisher.subscribers(), 0);
    /// ```
    pub fn subscribers(&self) -> usize {
        self.shared
            .cursors
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) != FREE)
            .count()
    }
}

/// Messages borrowed in place from a [`Subscriber`]; `release` moves the
/// subscriber's cursor past them, dropping the chunk without it does not.
pub struct ReadChunk<'a, T> {
    sub: &'a mut Subscriber<T>,
    len: usize,
}

impl<T> Subscriber<T> {
    /// Messages ready, refreshing `published` only if the cache shows fewer
    /// than `want`.
    #[inline(always)]
    fn ready_for(&mut self, want: usize) -> usize {
        let mut ready = self.cached_published.wrapping_sub(self.pos);
        if ready < want {
            self.cached_published = self.shared.published.load(Ordering::Acquire);
            ready = self.cached_published.wrapping_sub(self.pos);
        }
        ready
    }

    /// Borrows exactly `n` unread messages in place.
    ///
    /// ```
    /// use percore_ring::{ChunkError, spmc::broadcast};
    /// let mut publisher = broadcast::create::<u8>(4, 1).unwrap();
    /// let mut sub = publisher.subscribe().unwrap();
    /// publisher.try_publish(7).unwrap();
    /// assert_eq!(sub.read_chunk(2).err(), Some(ChunkError::TooFewSlots(1)));
    /// let chunk = sub.read_chunk(1).unwrap();
    /// assert_eq!(chunk.as_slices(), (&[7][..], &[][..]));
    /// chunk.release();
    /// ```
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, T>, ChunkError> {
        let ready = self.ready_for(n);
        if ready < n {
            return Err(ChunkError::TooFewSlots(ready));
        }
        self.shared.buf.track(self.pos, n, false);
        Ok(ReadChunk { sub: self, len: n })
    }

    /// Borrows every unread message (possibly none) in place.
    ///
    /// ```
    /// use percore_ring::spmc::broadcast;
    /// let mut publisher = broadcast::create::<u8>(4, 1).unwrap();
    /// let mut sub = publisher.subscribe().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// publisher.try_publish(2).unwrap();
    /// assert_eq!(sub.read_available().len(), 2);
    /// ```
    pub fn read_available(&mut self) -> ReadChunk<'_, T> {
        let n = self.ready_for(usize::MAX);
        self.shared.buf.track(self.pos, n, false);
        ReadChunk { sub: self, len: n }
    }

    /// Copies out the next message, if any, and moves past it.
    ///
    /// ```
    /// use percore_ring::spmc::broadcast;
    /// let mut publisher = broadcast::create::<u8>(4, 1).unwrap();
    /// let mut sub = publisher.subscribe().unwrap();
    /// publisher.try_publish(5).unwrap();
    /// assert_eq!(sub.try_recv(), Some(5));
    /// assert_eq!(sub.try_recv(), None);
    /// ```
    #[inline]
    pub fn try_recv(&mut self) -> Option<T>
    where
        T: Clone,
    {
        if self.ready_for(1) == 0 {
            return None;
        }
        // SAFETY: `pos < published` (Acquire), so the slot was written
        // before; the publisher cannot overwrite it before our cursor moves.
        let value = unsafe {
            (*self.shared.buf.read_ptr(self.pos))
                .assume_init_ref()
                .clone()
        };
        self.advance(1);
        Some(value)
    }

    /// Moves the cursor `n` messages on and tells the publisher.
    #[inline(always)]
    fn advance(&mut self, n: usize) {
        self.pos = self.pos.wrapping_add(n);
        self.shared.cursors[self.id].store(self.pos, Ordering::Release);
    }

    /// This subscriber's cursor-table entry.
    pub fn id(&self) -> SubscriberId {
        SubscriberId(self.id)
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        self.shared.cursors[self.id].store(FREE, Ordering::Release);
    }
}

impl<T> ReadChunk<'_, T> {
    /// The messages, oldest first, as at most two slices.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let buf = &self.sub.shared.buf;
        let (start, first, second) = buf.split(self.sub.pos, self.len);
        // SAFETY: the `len` slots from the cursor were published (Acquire)
        // and stay untouched by the publisher until the cursor moves, which
        // needs this chunk; slots are always initialised; `MaybeUninit<T>`
        // has the layout of `T`; the ranges are inside the buffer.
        unsafe {
            (
                core::slice::from_raw_parts(buf.raw(start).cast::<T>(), first),
                core::slice::from_raw_parts(buf.raw(0).cast::<T>(), second),
            )
        }
    }

    /// Marks every message of the chunk read.
    pub fn release(self) {
        let n = self.len;
        self.sub.advance(n);
    }

    /// Marks the first `n` messages (clamped) read.
    pub fn release_n(self, n: usize) {
        let n = n.min(self.len);
        self.sub.advance(n);
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a chunk of zero messages.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_sees_every_message_and_gates_the_publisher() {
        let mut publisher = create::<u32>(2, 2).unwrap();
        let mut a = publisher.subscribe().unwrap();
        let mut b = publisher.subscribe().unwrap();
        publisher.try_publish(1).unwrap();
        publisher.try_publish(2).unwrap();
        assert_eq!(publisher.try_publish(3), Err(PushError::Full(3)));
        assert_eq!(
            (a.try_recv(), a.try_recv(), a.try_recv()),
            (Some(1), Some(2), None)
        );
        // `b` is the slowest: still full.
        assert_eq!(publisher.try_publish(3), Err(PushError::Full(3)));
        assert_eq!(b.try_recv(), Some(1));
        publisher.try_publish(3).unwrap();
        assert_eq!(b.read_available().as_slices(), (&[2][..], &[3][..]));
        // Leaving relaxes the gate.
        drop(b);
        assert_eq!(a.try_recv(), Some(3));
        publisher.try_publish(4).unwrap();
        publisher.try_publish(5).unwrap();
        assert_eq!(publisher.subscribers(), 1);
        assert_eq!(a.id(), SubscriberId(0));
    }

    #[test]
    fn without_subscribers_publishing_never_blocks() {
        let mut publisher = create::<u32>(2, 1).unwrap();
        for i in 0..10 {
            publisher.try_publish(i).unwrap();
        }
        let mut late = publisher.subscribe().unwrap();
        publisher.try_publish(10).unwrap();
        assert_eq!((late.try_recv(), late.try_recv()), (Some(10), None));
    }

    #[test]
    fn slot_reuse_after_leave_and_bad_shapes() {
        let mut publisher = create::<u8>(4, 1).unwrap();
        let a = publisher.subscribe().unwrap();
        assert_eq!(
            publisher.subscribe().err(),
            Some(SubscribeError::NoFreeCursor)
        );
        drop(a);
        assert!(publisher.subscribe().is_ok());
        assert_eq!(create::<u8>(4, 0).err(), Some(CapacityError::Zero));
        assert_eq!(
            create::<u8>(4, MAX_SUBSCRIBERS + 1).err(),
            Some(CapacityError::TooLarge)
        );
        assert_eq!(create::<u8>(0, 1).err(), Some(CapacityError::Zero));
    }

    #[test]
    fn values_are_dropped_once_when_ring_goes() {
        let value = Arc::new(());
        let mut publisher = create_with(2, 1, || value.clone()).unwrap();
        let mut sub = publisher.subscribe().unwrap();
        for _ in 0..5 {
            publisher.try_publish(value.clone()).unwrap();
            sub.read_chunk(1).unwrap().release_n(1);
        }
        assert_eq!(Arc::strong_count(&value), 3);
        drop((publisher, sub));
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn two_subscriber_threads_see_all_in_order() {
        let n: u64 = if cfg!(miri) { 100 } else { 10_000 };
        let mut publisher = create::<u64>(4, 2).unwrap();
        let subs = [
            publisher.subscribe().unwrap(),
            publisher.subscribe().unwrap(),
        ];
        let hs = subs.map(|mut s| {
            std::thread::spawn(move || {
                let mut expect = 0;
                while expect < n {
                    let chunk = s.read_available();
                    let (x, y) = chunk.as_slices();
                    for v in x.iter().chain(y) {
                        assert_eq!(*v, expect);
                        expect += 1;
                    }
                    chunk.release();
                    std::thread::yield_now();
                }
            })
        });
        for i in 0..n {
            while publisher.try_publish(i).is_err() {
                std::thread::yield_now();
            }
        }
        hs.into_iter().for_each(|h| h.join().unwrap());
    }
}
