//! Error types. A send that fails hands the message back: a full ring is
//! backpressure, never a silent drop, and a bad destination is an error
//! value, never a panic.

use core::fmt;

use percore_ring::CapacityError;

use crate::id::CoreId;
use crate::message::Message;

/// Why a message was not sent; the message is handed back in every case.
///
/// ```
/// use percore_proto::{Bus, CoreId, Message, SendError};
/// let mut eps = Bus::new(2, 4).unwrap();
/// let err = eps[0].send(CoreId(9), Message::Stop).unwrap_err();
/// assert_eq!(err, SendError::NoSuchCore(Message::Stop));
/// assert_eq!(err.into_inner(), Message::Stop);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The ring towards the destination is full (or, for a broadcast, the
    /// slowest subscriber is a full ring behind). Drain, flush, retry.
    Full(Message),
    /// The destination is not a core of this bus.
    NoSuchCore(Message),
    /// The destination is the sending core itself; local work does not go
    /// through the bus.
    ToSelf(Message),
}

impl SendError {
    /// Takes the message back out of the error.
    ///
    /// ```
    /// use percore_proto::{Message, SendError};
    /// assert_eq!(SendError::Full(Message::Stop).into_inner(), Message::Stop);
    /// ```
    pub fn into_inner(self) -> Message {
        match self {
            SendError::Full(m) | SendError::NoSuchCore(m) | SendError::ToSelf(m) => m,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Full(_) => "ring to the destination is full",
            SendError::NoSuchCore(_) => "no such core on this bus",
            SendError::ToSelf(_) => "cannot send to the sending core itself",
        })
    }
}

/// A destination that no message can be routed to (for calls that take
/// several messages and so hand none back).
///
/// ```
/// use percore_proto::{Bus, CoreId, Message, RouteError};
/// let mut eps = Bus::new(2, 4).unwrap();
/// let err = eps[1].send_batch(CoreId(1), &[Message::Stop]).unwrap_err();
/// assert_eq!(err, RouteError::ToSelf);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// The destination is not a core of this bus.
    NoSuchCore(CoreId),
    /// The destination is the sending core itself.
    ToSelf,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NoSuchCore(c) => write!(f, "no {c} on this bus"),
            RouteError::ToSelf => f.write_str("cannot send to the sending core itself"),
        }
    }
}

/// The bus could not be built with the requested shape.
///
/// ```
/// use percore_proto::{Bus, BusError};
/// assert_eq!(Bus::new(0, 8).err(), Some(BusError::NoCores));
/// assert!(matches!(Bus::new(2, 0), Err(BusError::Capacity(_))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusError {
    /// Zero cores were asked for.
    NoCores,
    /// More than [`MAX_CORES`](crate::MAX_CORES) cores were asked for.
    TooManyCores(usize),
    /// The ring capacity was rejected by `percore-ring` (zero or too large).
    Capacity(CapacityError),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::NoCores => f.write_str("a bus needs at least one core"),
            BusError::TooManyCores(n) => write!(f, "{n} cores exceed the bus maximum"),
            BusError::Capacity(e) => write!(f, "ring capacity: {e}"),
        }
    }
}
