//! The work-distributing SPMC ring: each message is taken by exactly one of
//! the (cloneable) consumers, which claim positions with a CAS on the head;
//! the single producer needs no read-modify-write.
//!
//! ```
//! use percore_ring::spmc::work;
//! let (mut tx, rx) = work::channel::<u32>(16).unwrap();
//! for i in 0..10 { tx.try_push(i).unwrap(); }
//! let workers: Vec<_> = (0..2).map(|_| {
//!     let mut rx = rx.clone();
//!     std::thread::spawn(move || { let mut s = 0; while let Ok(v) = rx.try_pop() { s += v; } s })
//! }).collect();
//! let total: u32 = workers.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(total, 45);
//! ```

use crate::error::{CapacityError, PopError, PushError};
use crate::queue::{Receiver, Sender};
use crate::seq_ring::SeqRing;
use crate::sync::Arc;

/// The single sending handle.
pub struct Producer<T> {
    ring: Arc<SeqRing<T>>,
    tail: usize,
}

/// A receiving handle; clone it for each worker.
pub struct Consumer<T> {
    ring: Arc<SeqRing<T>>,
}

/// Creates a work-distributing ring of `capacity` slots (rounded up to a
/// power of two, and to at least 2, which the per-slot sequence numbers need).
///
/// ```
/// use percore_ring::spmc::work;
/// let (tx, rx) = work::channel::<u8>(3).unwrap();
/// assert_eq!(rx.capacity(), 4);
/// # drop(tx);
/// ```
pub fn channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    let ring = Arc::new(SeqRing::new(capacity)?);
    Ok((
        Producer {
            ring: ring.clone(),
            tail: 0,
        },
        Consumer { ring },
    ))
}

impl<T> Producer<T> {
    /// Pushes `value`, or returns it if the ring is full.
    ///
    /// ```
    /// use percore_ring::{PushError, spmc::work};
    /// let (mut tx, _rx) = work::channel(1).unwrap(); // rounded up to 2
    /// tx.try_push(1).unwrap();
    /// tx.try_push(2).unwrap();
    /// assert_eq!(tx.try_push(3), Err(PushError::Full(3)));
    /// ```
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        // SAFETY: `Producer` is not `Clone` and this takes `&mut self`: it is
        // the only thread pushing.
        unsafe { self.ring.push_single(&mut self.tail, value) }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.ring.set_tail(self.tail);
    }
}

impl<T> Clone for Consumer<T> {
    fn clone(&self) -> Self {
        Consumer {
            ring: self.ring.clone(),
        }
    }
}

impl<T> Consumer<T> {
    /// Takes the oldest unclaimed message.
    ///
    /// ```
    /// use percore_ring::spmc::work;
    /// let (mut tx, mut rx) = work::channel(2).unwrap();
    /// tx.try_push('x').unwrap();
    /// let mut other = rx.clone();
    /// assert_eq!(rx.try_pop(), Ok('x'));
    /// assert!(other.try_pop().is_err()); // exactly one consumer gets it
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        self.ring.pop_shared().ok_or(PopError::Empty)
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
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
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn each_message_exactly_once() {
        let n: usize = if cfg!(miri) { 100 } else { 10_000 };
        let (mut tx, rx) = channel::<usize>(4).unwrap();
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let mut rx = rx.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match rx.try_pop() {
                            Ok(usize::MAX) => return got,
                            Ok(v) => got.push(v),
                            Err(_) => std::thread::yield_now(),
                        }
                    }
                })
            })
            .collect();
        for i in (0..n).chain([usize::MAX, usize::MAX]) {
            while tx.try_push(i).is_err() {
                std::thread::yield_now();
            }
        }
        let mut all: Vec<usize> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_unstable();
        assert!(all.into_iter().eq(0..n));
    }

    #[test]
    fn drop_releases_unconsumed() {
        let value = Arc::new(());
        let (mut tx, mut rx) = channel::<Arc<()>>(2).unwrap();
        tx.try_push(value.clone()).unwrap();
        tx.try_push(value.clone()).unwrap();
        assert!(tx.try_push(value.clone()).is_err());
        drop(rx.try_pop());
        drop((tx, rx));
        assert_eq!(Arc::strong_count(&value), 1);
    }
}
