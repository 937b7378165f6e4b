//! Error types. Every error that can carry the caller's value hands it back:
//! a full ring is backpressure, never a silent drop.

use core::fmt;

/// A push found the ring full; the value is returned to the caller.
///
/// ```
/// use percore_ring::{PushError, spsc};
/// let (mut tx, _rx) = spsc::channel::<u32>(1).unwrap();
/// tx.try_push(1).unwrap();
/// assert_eq!(tx.try_push(2), Err(PushError::Full(2)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// The ring has no free slot; here is your value back.
    Full(T),
}

impl<T> PushError<T> {
    /// Takes the value back out of the error.
    ///
    /// ```
    /// use percore_ring::PushError;
    /// assert_eq!(PushError::Full(7).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) => v,
        }
    }
}

/// A pop found the ring empty.
///
/// ```
/// use percore_ring::{PopError, spsc};
/// let (_tx, mut rx) = spsc::channel::<u32>(4).unwrap();
/// assert_eq!(rx.try_pop(), Err(PopError::Empty));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// Nothing to pop right now.
    Empty,
}

/// A chunk of `n` slots was asked for but fewer are available.
///
/// ```
/// use percore_ring::{ChunkError, spsc};
/// let (mut tx, _rx) = spsc::channel::<u32>(4).unwrap();
/// assert_eq!(tx.write_chunk_uninit(5).err(), Some(ChunkError::TooFewSlots(4)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Only this many slots (or messages) are available now.
    TooFewSlots(usize),
}

/// A ring could not be created with the requested shape.
///
/// ```
/// use percore_ring::{CapacityError, spsc};
/// assert_eq!(spsc::channel::<u8>(0).err(), Some(CapacityError::Zero));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityError {
    /// A capacity (or count of subscribers, inputs, levels) of zero.
    Zero,
    /// The capacity rounded up to a power of two would not fit the address
    /// space (or a count exceeds the documented maximum).
    TooLarge,
}

/// [`spmc::broadcast::Publisher::subscribe`](crate::spmc::broadcast::Publisher::subscribe)
/// found every subscriber cursor taken.
///
/// ```
/// use percore_ring::{SubscribeError, spmc::broadcast};
/// let mut publisher = broadcast::create::<u32>(4, 1).unwrap();
/// let _a = publisher.subscribe().unwrap();
/// assert_eq!(publisher.subscribe().err(), Some(SubscribeError::NoFreeCursor));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    /// All `max_subscribers` cursors are in use.
    NoFreeCursor,
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is full")
    }
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is empty")
    }
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::TooFewSlots(n) => write!(f, "only {n} slots available"),
        }
    }
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacityError::Zero => f.write_str("capacity must be at least 1"),
            CapacityError::TooLarge => f.write_str("capacity too large"),
        }
    }
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no free subscriber cursor")
    }
}
