//! [`Ready`]: the readiness a [`Source`](crate::Source) signals, and which
//! part of it each [`Interest`] lets through to an [`Event`](crate::event::Event).

use core::ops;

use crate::Interest;

/// A set of readiness bits, as signalled by a source through a
/// [`Signal`](crate::Signal) and reported by an [`Event`](crate::event::Event).
///
/// ```
/// use percore_poll::Ready;
///
/// let r = Ready::READABLE | Ready::READ_CLOSED;
/// assert!(r.contains(Ready::READABLE));
/// assert!(!r.contains(Ready::WRITABLE));
/// assert!(Ready::EMPTY.is_empty());
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Ready(u8);

impl Ready {
    /// Nothing.
    pub const EMPTY: Ready = Ready(0);
    /// Data can be read.
    pub const READABLE: Ready = Ready(1 << 0);
    /// Data can be written.
    pub const WRITABLE: Ready = Ready(1 << 1);
    /// Priority (urgent) data can be read.
    pub const PRIORITY: Ready = Ready(1 << 2);
    /// The read half is closed (the peer hung up).
    pub const READ_CLOSED: Ready = Ready(1 << 3);
    /// The write half is closed.
    pub const WRITE_CLOSED: Ready = Ready(1 << 4);
    /// The source failed; reported whatever the interest, as epoll does.
    pub const ERROR: Ready = Ready(1 << 5);
    /// Every bit.
    pub const ALL: Ready = Ready(0b11_1111);

    /// Whether all bits of `other` are set in `self`.
    ///
    /// ```
    /// # use percore_poll::Ready;
    /// assert!(Ready::ALL.contains(Ready::ERROR | Ready::PRIORITY));
    /// ```
    pub const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits, for carrying readiness in a message (the kernel's
    /// intercore protocol); [`from_bits`](Self::from_bits) is the inverse.
    ///
    /// ```
    /// # use percore_poll::Ready;
    /// let r = Ready::READABLE | Ready::ERROR;
    /// assert_eq!(Ready::from_bits(r.bits()), r);
    /// assert_eq!(Ready::from_bits(0xff), Ready::ALL); // unknown bits dropped
    /// ```
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Readiness from [`bits`](Self::bits); unknown bits are ignored.
    pub const fn from_bits(bits: u8) -> Ready {
        Ready(bits & Self::ALL.0)
    }

    /// The readiness bits that `interest` reports: readable interest covers
    /// readable and read-closed, writable covers writable and write-closed,
    /// priority covers priority, and errors always pass.
    ///
    /// ```
    /// # use percore_poll::{Interest, Ready};
    /// let mask = Ready::reported_by(Interest::WRITABLE);
    /// assert!(mask.contains(Ready::WRITABLE | Ready::WRITE_CLOSED | Ready::ERROR));
    /// assert!(!mask.contains(Ready::READABLE));
    /// ```
    pub const fn reported_by(interest: Interest) -> Ready {
        let mut bits = Self::ERROR.0;
        if interest.is_readable() {
            bits |= Self::READABLE.0 | Self::READ_CLOSED.0;
        }
        if interest.is_writable() {
            bits |= Self::WRITABLE.0 | Self::WRITE_CLOSED.0;
        }
        if interest.is_priority() {
            bits |= Self::PRIORITY.0;
        }
        Ready(bits)
    }
}

impl ops::BitOr for Ready {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Ready(self.0 | other.0)
    }
}

impl ops::BitOrAssign for Ready {
    fn bitor_assign(&mut self, other: Self) {
        self.0 |= other.0;
    }
}
