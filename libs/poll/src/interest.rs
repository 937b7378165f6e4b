//! [`Interest`]: which readiness a registration wants to hear about (mio's
//! type: never empty, combined with `|`).

use core::num::NonZeroU8;
use core::{fmt, ops};

const READABLE: u8 = 0b001;
const WRITABLE: u8 = 0b010;
const PRIORITY: u8 = 0b100;

/// Readiness interest of a registration: readable, writable, priority, or a
/// combination. Like mio's, it cannot be empty.
///
/// ```
/// use percore_poll::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable() && !both.is_priority());
/// assert_eq!(both.remove(Interest::WRITABLE), Some(Interest::READABLE));
/// assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
/// ```
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interest(NonZeroU8);

impl Interest {
    /// Interest in readable events (also reports read-closed).
    pub const READABLE: Interest = Interest(NonZeroU8::new(READABLE).unwrap());
    /// Interest in writable events (also reports write-closed).
    pub const WRITABLE: Interest = Interest(NonZeroU8::new(WRITABLE).unwrap());
    /// Interest in priority (out-of-band, urgent) events.
    pub const PRIORITY: Interest = Interest(NonZeroU8::new(PRIORITY).unwrap());

    /// Union of two interests (usable in `const`).
    ///
    /// ```
    /// # use percore_poll::Interest;
    /// const BOTH: Interest = Interest::READABLE.add(Interest::WRITABLE);
    /// assert!(BOTH.is_writable());
    /// ```
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        self.or(other)
    }

    const fn or(self, other: Interest) -> Interest {
        // Both operands are non-zero, so their union is too.
        match NonZeroU8::new(self.0.get() | other.0.get()) {
            Some(bits) => Interest(bits),
            None => self,
        }
    }

    /// `self` without `other`; `None` if nothing would be left.
    ///
    /// ```
    /// # use percore_poll::Interest;
    /// assert_eq!(Interest::PRIORITY.remove(Interest::READABLE), Some(Interest::PRIORITY));
    /// ```
    #[must_use]
    pub fn remove(self, other: Interest) -> Option<Interest> {
        NonZeroU8::new(self.0.get() & !other.0.get()).map(Interest)
    }

    /// Whether readable is included.
    pub const fn is_readable(self) -> bool {
        self.0.get() & READABLE != 0
    }

    /// Whether writable is included.
    pub const fn is_writable(self) -> bool {
        self.0.get() & WRITABLE != 0
    }

    /// Whether priority is included.
    pub const fn is_priority(self) -> bool {
        self.0.get() & PRIORITY != 0
    }

    /// The bits (readable 1, writable 2, priority 4), for carrying an
    /// interest in a message; [`from_bits`](Self::from_bits) is the inverse.
    ///
    /// ```
    /// # use percore_poll::Interest;
    /// let i = Interest::READABLE | Interest::PRIORITY;
    /// assert_eq!(i.bits(), 5);
    /// assert_eq!(Interest::from_bits(i.bits()), Some(i));
    /// assert_eq!(Interest::from_bits(0), None); // an interest is never empty
    /// ```
    pub const fn bits(self) -> u8 {
        self.0.get()
    }

    /// The interest with these bits; `None` if none of the known bits is set.
    pub const fn from_bits(bits: u8) -> Option<Interest> {
        match NonZeroU8::new(bits & (READABLE | WRITABLE | PRIORITY)) {
            Some(bits) => Some(Interest(bits)),
            None => None,
        }
    }
}

impl ops::BitOr for Interest {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        self.or(other)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Self) {
        *self = self.or(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.is_readable(), "READABLE"),
            (self.is_writable(), "WRITABLE"),
            (self.is_priority(), "PRIORITY"),
        ];
        let mut sep = "";
        for (_, name) in names.iter().filter(|(on, _)| *on) {
            write!(f, "{sep}{name}")?;
            sep = " | ";
        }
        Ok(())
    }
}
