//! A priority queue between two cores: one SPSC ring per level and a bitmap
//! of levels that may be non-empty, so a high-priority message overtakes
//! every queued lower-priority one and the consumer finds the highest
//! non-empty level with one load and a `leading_zeros`.
//!
//! Bitmap protocol: the producer pushes into level `l`, then sets bit `l`
//! (`fetch_or`, Release). The consumer picks the highest set bit; if that
//! level turns out empty it clears the bit (`fetch_and`, Acquire) and then
//! checks the level again, setting the bit back if a message arrived. The
//! two read-modify-writes are totally ordered on the bitmap: if the clear
//! comes after the producer's set, the clear synchronises with it and the
//! re-check sees the message; if before, the set survives. So a message is
//! never hidden behind a cleared bit.
//!
//! ```
//! use percore_ring::priority::{self, Level};
//! let (mut tx, mut rx) = priority::channel::<&str>(3, 8).unwrap();
//! tx.try_push(Level(0), "low").unwrap();
//! tx.try_push(Level(2), "urgent").unwrap();
//! assert_eq!(rx.try_pop(), Ok((Level(2), "urgent")));
//! assert_eq!(rx.try_pop(), Ok((Level(0), "low")));
//! ```

use alloc::vec::Vec;

use crate::cache_pad::CachePadded;
use crate::error::{CapacityError, PopError};
use crate::spsc;
use crate::sync::{Arc, AtomicU32, Ordering};

/// The most levels a priority queue can have (one bit each in a `u32`).
pub const MAX_LEVELS: usize = 32;

/// A level of a priority queue: higher levels are served first. (Task
/// priorities are `percore_sched::Priority`; a kernel maps them to levels.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(pub u8);

/// Why a priority push failed; the value is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityPushError<T> {
    /// The ring of that level is full.
    Full(T),
    /// The queue has no such level.
    NoSuchLevel(T),
}

/// The sending half.
pub struct Producer<T> {
    levels: Vec<spsc::Producer<T>>,
    bitmap: Arc<CachePadded<AtomicU32>>,
}

/// The receiving half.
pub struct Consumer<T> {
    levels: Vec<spsc::Consumer<T>>,
    bitmap: Arc<CachePadded<AtomicU32>>,
}

/// Creates a queue with `levels` (1..=[`MAX_LEVELS`]) priority levels, each
/// a ring of `capacity` slots (rounded up to a power of two).
///
/// ```
/// use percore_ring::{CapacityError, priority};
/// assert!(priority::channel::<u8>(4, 16).is_ok());
/// assert_eq!(priority::channel::<u8>(33, 16).err(), Some(CapacityError::TooLarge));
/// ```
pub fn channel<T>(
    levels: usize,
    capacity: usize,
) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    match levels {
        0 => return Err(CapacityError::Zero),
        n if n > MAX_LEVELS => return Err(CapacityError::TooLarge),
        _ => {}
    }
    let mut txs = Vec::with_capacity(levels);
    let mut rxs = Vec::with_capacity(levels);
    for _ in 0..levels {
        let (tx, rx) = spsc::channel(capacity)?;
        txs.push(tx);
        rxs.push(rx);
    }
    let bitmap = Arc::new(CachePadded(AtomicU32::new(0)));
    Ok((
        Producer {
            levels: txs,
            bitmap: bitmap.clone(),
        },
        Consumer {
            levels: rxs,
            bitmap,
        },
    ))
}

impl<T> Producer<T> {
    /// Pushes `value` at `level`, or hands it back.
    ///
    /// ```
    /// use percore_ring::priority::{self, Level, PriorityPushError};
    /// let (mut tx, _rx) = priority::channel::<u8>(2, 1).unwrap();
    /// assert_eq!(tx.try_push(Level(5), 1), Err(PriorityPushError::NoSuchLevel(1)));
    /// tx.try_push(Level(1), 1).unwrap();
    /// assert_eq!(tx.try_push(Level(1), 2), Err(PriorityPushError::Full(2)));
    /// ```
    pub fn try_push(&mut self, level: Level, value: T) -> Result<(), PriorityPushError<T>> {
        let l = usize::from(level.0);
        let Some(ring) = self.levels.get_mut(l) else {
            return Err(PriorityPushError::NoSuchLevel(value));
        };
        ring.try_push(value)
            .map_err(|e| PriorityPushError::Full(e.into_inner()))?;
        // Release: a consumer whose `fetch_and` reads this (or a later)
        // value sees the message pushed above (module doc).
        self.bitmap.fetch_or(1 << l, Ordering::Release);
        Ok(())
    }

    /// Number of levels.
    pub fn levels(&self) -> usize {
        self.levels.len()
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest message of the highest non-empty level.
    ///
    /// ```
    /// use percore_ring::{PopError, priority::{self, Level}};
    /// let (mut tx, mut rx) = priority::channel::<u8>(2, 4).unwrap();
    /// assert_eq!(rx.try_pop(), Err(PopError::Empty));
    /// tx.try_push(Level(1), 9).unwrap();
    /// assert_eq!(rx.try_pop(), Ok((Level(1), 9)));
    /// ```
    pub fn try_pop(&mut self) -> Result<(Level, T), PopError> {
        loop {
            let bits = self.bitmap.load(Ordering::Acquire);
            if bits == 0 {
                return Err(PopError::Empty);
            }
            // Highest set bit = highest level that may hold a message.
            let l = (u32::BITS - 1 - bits.leading_zeros()) as usize;
            // Levels beyond `levels()` are never set by the producer.
            let ring = &mut self.levels[l];
            if let Ok(v) = ring.try_pop() {
                return Ok((Level(l as u8), v));
            }
            // The level is empty: clear its bit, then look again (a push
            // that raced with the clear is seen here, see module doc).
            self.bitmap.fetch_and(!(1 << l), Ordering::Acquire);
            if !ring.is_empty() {
                self.bitmap.fetch_or(1 << l, Ordering::Relaxed);
            }
        }
    }

    /// Number of levels.
    pub fn levels(&self) -> usize {
        self.levels.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn higher_levels_overtake_and_fifo_within_level() {
        let (mut tx, mut rx) = channel::<u32>(4, 4).unwrap();
        tx.try_push(Level(0), 1).unwrap();
        tx.try_push(Level(3), 2).unwrap();
        tx.try_push(Level(1), 3).unwrap();
        tx.try_push(Level(3), 4).unwrap();
        let got: alloc::vec::Vec<_> = core::iter::from_fn(|| rx.try_pop().ok()).collect();
        assert_eq!(
            got,
            [(Level(3), 2), (Level(3), 4), (Level(1), 3), (Level(0), 1)]
        );
        assert_eq!(
            rx.bitmap.load(Ordering::Relaxed),
            0,
            "bits of drained levels are cleared"
        );
        assert_eq!((tx.levels(), rx.levels()), (4, 4));
    }

    #[test]
    fn levels_are_validated() {
        assert_eq!(channel::<u8>(0, 4).err(), Some(CapacityError::Zero));
        let (mut tx, _rx) = channel::<u8>(32, 1).unwrap();
        assert!(tx.try_push(Level(31), 0).is_ok());
        assert_eq!(
            tx.try_push(Level(32), 0),
            Err(PriorityPushError::NoSuchLevel(0))
        );
    }
}
