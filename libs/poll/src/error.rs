//! [`Error`]: why a registration call failed. mio returns `io::Error`; in
//! `no_std` there is none, so the reasons are an enum (the matching
//! `io::ErrorKind` is noted on each variant for code ported from mio).

use core::fmt;

/// Why a [`Registry`](crate::Registry), [`Signal`](crate::Signal) or
/// [`Waker`](crate::Waker) call failed.
///
/// ```
/// use percore_poll::{Error, Interest, Poll, Registration, Token};
///
/// let poll = Poll::with_capacity(1).unwrap();
/// let mut a = Registration::new();
/// let mut b = Registration::new();
/// poll.registry().register(&mut a, Token(0), Interest::READABLE).unwrap();
/// assert_eq!(
///     poll.registry().register(&mut b, Token(1), Interest::READABLE),
///     Err(Error::Full)
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Error {
    /// Every registration slot of this `Poll` is taken (mio: `OutOfMemory`).
    Full,
    /// The source is already registered (mio on epoll: `AlreadyExists`).
    AlreadyRegistered,
    /// The source is not registered, or was deregistered (mio: `NotFound`).
    NotRegistered,
    /// The source is registered with a different `Poll` (mio: `InvalidInput`).
    ForeignRegistry,
    /// A `Poll` needs at least one slot and at most 2^31 (mio: `InvalidInput`).
    InvalidCapacity,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "no free registration slot",
            Self::AlreadyRegistered => "source already registered",
            Self::NotRegistered => "source not registered",
            Self::ForeignRegistry => "source registered with another poll",
            Self::InvalidCapacity => "invalid poll capacity",
        })
    }
}

impl core::error::Error for Error {}

/// Result of this crate's fallible calls.
pub type Result<T> = core::result::Result<T, Error>;
