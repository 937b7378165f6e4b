//! The CAS multi-producer ring: producers claim positions with a
//! compare-and-swap on the shared tail, the single consumer needs no
//! read-modify-write (see the sequence-number protocol in `seq_ring`).
//!
//! ```
//! use percore_ring::mpsc::cas;
//! let (tx, mut rx) = cas::channel::<u32>(64).unwrap();
//! let handles: Vec<_> = (0..2).map(|p| {
//!     let mut tx = tx.clone();
//!     std::thread::spawn(move || for i in 0..10 { while tx.try_push(p * 100 + i).is_err() {} })
//! }).collect();
//! handles.into_iter().for_each(|h| h.join().unwrap());
//! let mut n = 0;
//! while rx.try_pop().is_ok() { n += 1; }
//! assert_eq!(n, 20);
//! ```

use crate::error::{CapacityError, PopError, PushError};
use crate::queue::{Receiver, Sender};
use crate::seq_ring::SeqRing;
use crate::sync::Arc;

/// A sending handle; clone it for each producer.
pub struct Producer<T> {
    ring: Arc<SeqRing<T>>,
}

/// The single receiving handle.
pub struct Consumer<T> {
    ring: Arc<SeqRing<T>>,
    head: usize,
}

/// Creates a CAS MPSC ring of `capacity` slots (rounded up to a power of
/// two, and to at least 2, which the per-slot sequence numbers need).
///
/// ```
/// use percore_ring::mpsc::cas;
/// let (tx, rx) = cas::channel::<u8>(5).unwrap();
/// assert_eq!(tx.capacity(), 8);
/// # drop(rx);
/// ```
pub fn channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    let ring = Arc::new(SeqRing::new(capacity)?);
    Ok((Producer { ring: ring.clone() }, Consumer { ring, head: 0 }))
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer {
            ring: self.ring.clone(),
        }
    }
}

impl<T> Producer<T> {
    /// Pushes `value`, or returns it if the ring is full.
    ///
    /// ```
    /// use percore_ring::{PushError, mpsc::cas};
    /// let (mut tx, _rx) = cas::channel(2).unwrap();
    /// tx.try_push(1).unwrap();
    /// tx.try_push(2).unwrap();
    /// assert_eq!(tx.try_push(3), Err(PushError::Full(3)));
    /// ```
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.ring.push_shared(value)
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest message (in the order producers claimed slots).
    ///
    /// ```
    /// use percore_ring::{PopError, mpsc::cas};
    /// let (mut tx, mut rx) = cas::channel(2).unwrap();
    /// tx.try_push(3).unwrap();
    /// assert_eq!(rx.try_pop(), Ok(3));
    /// assert_eq!(rx.try_pop(), Err(PopError::Empty));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        // SAFETY: `Consumer` is not `Clone` and `try_pop` takes `&mut self`:
        // this is the only thread popping.
        unsafe { self.ring.pop_single(&mut self.head) }.ok_or(PopError::Empty)
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.ring.set_head(self.head);
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
    fn full_then_fifo_then_empty() {
        let (mut tx, mut rx) = channel::<u32>(2).unwrap();
        tx.try_push(1).unwrap();
        tx.clone().try_push(2).unwrap();
        assert_eq!(tx.try_push(3), Err(PushError::Full(3)));
        assert_eq!(rx.try_pop(), Ok(1));
        tx.try_push(3).unwrap();
        assert_eq!(
            (rx.try_pop(), rx.try_pop(), rx.try_pop()),
            (Ok(2), Ok(3), Err(PopError::Empty))
        );
    }

    #[test]
    fn drop_releases_unconsumed() {
        let value = Arc::new(());
        let (mut tx, mut rx) = channel::<Arc<()>>(4).unwrap();
        for _ in 0..3 {
            tx.try_push(value.clone()).unwrap();
        }
        drop(rx.try_pop());
        drop((tx, rx));
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn two_producers_in_order_per_producer() {
        let n: u32 = if cfg!(miri) { 100 } else { 10_000 };
        let (tx, mut rx) = channel::<(u32, u32)>(4).unwrap();
        let hs: Vec<_> = (0..2)
            .map(|p| {
                let mut tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..n {
                        while tx.try_push((p, i)).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u32; 2];
        while next != [n, n] {
            match rx.try_pop() {
                Ok((p, i)) => {
                    assert_eq!(next[p as usize], i);
                    next[p as usize] += 1;
                }
                Err(_) => std::thread::yield_now(),
            }
        }
        hs.into_iter().for_each(|h| h.join().unwrap());
    }
}
