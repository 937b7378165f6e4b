//! In-place batch access to an SPSC ring: the producer fills slots where they
//! lie and commits them with one cursor store; the consumer reads (or edits)
//! messages where they lie and releases them with one cursor store. A chunk
//! is at most two slices because the ring wraps once at most.

use core::mem::MaybeUninit;
use core::slice;

use super::{Consumer, Producer};
use crate::error::ChunkError;
use crate::sync::Ordering;

/// `n` free slots of the ring, uninitialised, borrowed from the [`Producer`].
/// Dropping the chunk without committing publishes nothing.
pub struct WriteChunkUninit<'a, T> {
    producer: &'a mut Producer<T>,
    len: usize,
}

/// `n` free slots of the ring, initialised with `T::default()`, borrowed from
/// the [`Producer`]. Uncommitted slots are dropped with the chunk.
pub struct WriteChunk<'a, T> {
    inner: WriteChunkUninit<'a, T>,
}

/// `n` ready messages, borrowed in place from the [`Consumer`]. Dropping the
/// chunk without committing leaves the messages in the ring.
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T>,
    len: usize,
}

impl<T> Producer<T> {
    /// Reserves exactly `n` free slots for in-place writing.
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, mut rx) = spsc::channel::<u32>(4).unwrap();
    /// let written = tx.write_chunk_uninit(3).unwrap().fill_from_iter(10..);
    /// assert_eq!(written, 3);
    /// assert_eq!(rx.try_pop(), Ok(10));
    /// ```
    pub fn write_chunk_uninit(&mut self, n: usize) -> Result<WriteChunkUninit<'_, T>, ChunkError> {
        let free = self.free_slots_for(n);
        if free < n {
            return Err(ChunkError::TooFewSlots(free));
        }
        self.shared.buf.track(self.tail, n, true);
        Ok(WriteChunkUninit {
            producer: self,
            len: n,
        })
    }

    /// Reserves exactly `n` free slots, each set to `T::default()`, for
    /// in-place editing; `commit(k)` publishes the first `k`.
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, mut rx) = spsc::channel::<u32>(4).unwrap();
    /// let mut chunk = tx.write_chunk(2).unwrap();
    /// let (a, _b) = chunk.as_mut_slices();
    /// a[0] = 7;
    /// a[1] = 8;
    /// chunk.commit_all();
    /// assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(7), Ok(8)));
    /// ```
    pub fn write_chunk(&mut self, n: usize) -> Result<WriteChunk<'_, T>, ChunkError>
    where
        T: Default,
    {
        let mut inner = self.write_chunk_uninit(n)?;
        let (a, b) = inner.as_mut_slices();
        for slot in a.iter_mut().chain(b) {
            slot.write(T::default());
        }
        Ok(WriteChunk { inner })
    }
}

impl<'a, T> WriteChunkUninit<'a, T> {
    /// The reserved slots, in order, as at most two slices.
    pub fn as_mut_slices(&mut self) -> (&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) {
        let buf = &self.producer.shared.buf;
        let (start, first, second) = buf.split(self.producer.tail, self.len);
        // SAFETY: the `len` slots from `tail` are free (checked at creation
        // against an Acquire load of `head`), belong to this producer until
        // committed, and `&mut self` makes these the only references. The two
        // ranges `start..start+first` and `0..second` are disjoint and inside
        // the buffer because `first + second = len <= capacity`.
        unsafe {
            (
                slice::from_raw_parts_mut(buf.raw(start), first),
                slice::from_raw_parts_mut(buf.raw(0), second),
            )
        }
    }

    /// Publishes the first `n` slots (clamped to the chunk length).
    ///
    /// # Safety
    /// The first `n` slots must have been initialised.
    pub unsafe fn commit(self, n: usize) {
        let n = n.min(self.len);
        let p = self.producer;
        p.tail = p.tail.wrapping_add(n);
        p.shared.tail.store(p.tail, Ordering::Release);
    }

    /// Publishes all slots.
    ///
    /// # Safety
    /// Every slot must have been initialised.
    pub unsafe fn commit_all(self) {
        let n = self.len;
        // SAFETY: forwarded from the caller.
        unsafe { self.commit(n) }
    }

    /// Moves items from `iter` into the slots until either runs out, and
    /// publishes what was written. Returns the number published.
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, _rx) = spsc::channel::<u8>(8).unwrap();
    /// assert_eq!(tx.write_chunk_uninit(4).unwrap().fill_from_iter([1, 2]), 2);
    /// ```
    pub fn fill_from_iter<I: IntoIterator<Item = T>>(mut self, iter: I) -> usize {
        let mut iter = iter.into_iter();
        let mut written = 0;
        let (a, b) = self.as_mut_slices();
        // Two plain `zip` loops (not a `chain`): for slice-like iterators the
        // compiler turns each into a straight copy loop.
        for (slot, v) in a.iter_mut().zip(&mut iter) {
            slot.write(v);
            written += 1;
        }
        if written == a.len() {
            for (slot, v) in b.iter_mut().zip(&mut iter) {
                slot.write(v);
                written += 1;
            }
        }
        // SAFETY: exactly the first `written` slots were initialised above.
        unsafe { self.commit(written) };
        written
    }

    /// Number of reserved slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a chunk of zero slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a, T> WriteChunk<'a, T> {
    /// The reserved, default-initialised slots as at most two slices.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        let (a, b) = self.inner.as_mut_slices();
        // SAFETY: every slot of a `WriteChunk` was initialised in
        // `write_chunk`, and `MaybeUninit<T>` has the layout of `T`.
        unsafe {
            (
                &mut *(a as *mut [MaybeUninit<T>] as *mut [T]),
                &mut *(b as *mut [MaybeUninit<T>] as *mut [T]),
            )
        }
    }

    /// Publishes the first `n` slots (clamped); the rest are dropped.
    pub fn commit(mut self, n: usize) {
        let n = n.min(self.inner.len);
        self.drop_from(n);
        // With `len` 0 the drop of `self` drops nothing more.
        self.inner.len = 0;
        let p = &mut *self.inner.producer;
        p.tail = p.tail.wrapping_add(n);
        p.shared.tail.store(p.tail, Ordering::Release);
    }

    /// Publishes every slot.
    pub fn commit_all(self) {
        let n = self.inner.len;
        self.commit(n);
    }

    /// Number of reserved slots.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// `true` for a chunk of zero slots.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Drops the initialised values in slots `from..len`.
    fn drop_from(&mut self, from: usize) {
        let (a, b) = self.as_mut_slices();
        for v in a.iter_mut().chain(b.iter_mut()).skip(from) {
            // SAFETY: every slot of the chunk holds an initialised value that
            // is not published; it is dropped exactly once (callers set
            // `len` to 0 or drop `self` right after).
            unsafe { core::ptr::drop_in_place(v) };
        }
    }
}

impl<T> Drop for WriteChunk<'_, T> {
    fn drop(&mut self) {
        self.drop_from(0);
    }
}

impl<T> Consumer<T> {
    /// Borrows exactly `n` ready messages in place.
    ///
    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, mut rx) = spsc::channel::<u32>(4).unwrap();
    /// tx.write_chunk_uninit(3).unwrap().fill_from_iter([1, 2, 3]);
    /// let mut chunk = rx.read_chunk(2).unwrap();
    /// let (a, _) = chunk.as_mut_slices();
    /// a[0] += 100; // edit in place, no copy out
    /// assert_eq!(chunk.as_slices().0, &[101, 2]);
    /// chunk.commit_all(); // drops the two messages, frees their slots
    /// assert_eq!(rx.try_pop(), Ok(3));
    /// ```
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, T>, ChunkError> {
        let ready = self.ready_for(n);
        if ready < n {
            return Err(ChunkError::TooFewSlots(ready));
        }
        self.shared.buf.track(self.head, n, true);
        Ok(ReadChunk {
            consumer: self,
            len: n,
        })
    }
}

impl<'a, T> ReadChunk<'a, T> {
    fn raw_slices(&self) -> (*mut [T], *mut [T]) {
        let buf = &self.consumer.shared.buf;
        let (start, first, second) = buf.split(self.consumer.head, self.len);
        (
            core::ptr::slice_from_raw_parts_mut(buf.raw(start).cast::<T>(), first),
            core::ptr::slice_from_raw_parts_mut(buf.raw(0).cast::<T>(), second),
        )
    }

    /// The messages, oldest first, as at most two slices.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let (a, b) = self.raw_slices();
        // SAFETY: the `len` slots from `head` hold initialised values
        // (checked against an Acquire load of `tail`); the producer does not
        // touch them until `head` moves past them, which needs this chunk.
        unsafe { (&*a, &*b) }
    }

    /// The messages as mutable slices, for editing in place.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        let (a, b) = self.raw_slices();
        // SAFETY: as in `as_slices`; `&mut self` makes these unique.
        unsafe { (&mut *a, &mut *b) }
    }

    /// Drops the first `n` messages (clamped) and frees their slots.
    pub fn commit(self, n: usize) {
        let n = n.min(self.len);
        let (a, b) = self.raw_slices();
        // SAFETY: the first `n` messages are initialised and owned by this
        // consumer; they are dropped once, then `head` moves past them.
        unsafe {
            let first = n.min(a.len());
            core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(a.cast::<T>(), first));
            core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(
                b.cast::<T>(),
                n - first,
            ));
        }
        let c = self.consumer;
        c.head = c.head.wrapping_add(n);
        c.release();
    }

    /// Drops every message of the chunk and frees their slots.
    pub fn commit_all(self) {
        let n = self.len;
        self.commit(n);
    }

    /// Number of messages in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a chunk of zero messages.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> Iterator for ReadChunkIntoIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.taken == self.len {
            return None;
        }
        let c = &mut *self.consumer;
        let pos = c.head.wrapping_add(self.taken);
        // SAFETY: position `pos` is inside the chunk, initialised, and moved
        // out exactly once (`taken` advances); `head` is moved on drop.
        let v = unsafe { c.shared.buf.raw(pos).read().assume_init() };
        self.taken += 1;
        Some(v)
    }
}

/// Moves the messages of a [`ReadChunk`] out one by one; the slots of the
/// messages taken are freed when the iterator is dropped.
pub struct ReadChunkIntoIter<'a, T> {
    consumer: &'a mut Consumer<T>,
    len: usize,
    taken: usize,
}

impl<'a, T> IntoIterator for ReadChunk<'a, T> {
    type Item = T;
    type IntoIter = ReadChunkIntoIter<'a, T>;

    /// ```
    /// use percore_ring::spsc;
    /// let (mut tx, mut rx) = spsc::channel::<u32>(4).unwrap();
    /// tx.write_chunk_uninit(3).unwrap().fill_from_iter([1, 2, 3]);
    /// let sum: u32 = rx.read_chunk(3).unwrap().into_iter().sum();
    /// assert_eq!(sum, 6);
    /// assert!(rx.is_empty());
    /// ```
    fn into_iter(self) -> ReadChunkIntoIter<'a, T> {
        ReadChunkIntoIter {
            consumer: self.consumer,
            len: self.len,
            taken: 0,
        }
    }
}

impl<T> Drop for ReadChunkIntoIter<'_, T> {
    fn drop(&mut self) {
        let c = &mut *self.consumer;
        c.head = c.head.wrapping_add(self.taken);
        c.release();
    }
}
