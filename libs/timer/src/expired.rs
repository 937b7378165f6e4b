//! What [`Wheel::advance`](crate::Wheel::advance) hands to its callback.

use crate::handle::IntervalHandle;

/// A timer that fired.
///
/// ```
/// use percore_timer::{Config, Expired, TickShift, Wheel};
/// let config = Config::new(TickShift::new(0).unwrap()).with_intervals(1);
/// let mut wheel = Wheel::new(config).unwrap();
/// wheel.insert(15, 7u32).unwrap();
/// wheel.add_interval(10, 10, 9u32).unwrap();
/// let mut seen = Vec::new();
/// wheel.advance(25, |e| match e {
///     Expired::Oneshot { deadline, payload } => seen.push((deadline, payload, 0)),
///     Expired::Interval { deadline, payload, missed, .. } => seen.push((deadline, *payload, missed)),
/// });
/// // In deadline order; the interval was due at 10 and again at 20, which
/// // is coalesced into one firing that reports one missed period.
/// assert_eq!(seen, [(10, 9, 1), (15, 7, 0)]);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum Expired<'a, T> {
    /// A one-shot timer; it is gone from the wheel and its payload is yours.
    Oneshot {
        /// The deadline it was armed with (ns).
        deadline: u64,
        /// Its payload.
        payload: T,
    },
    /// An interval timer; it has already been re-armed for
    /// `deadline + (missed + 1) * period`, keeping its phase.
    Interval {
        /// Which interval fired.
        handle: IntervalHandle,
        /// The deadline that fired (ns): the earliest period that was due.
        deadline: u64,
        /// Further periods that were also due by this `advance` and are
        /// folded into this one firing instead of firing in a burst.
        missed: u64,
        /// Its payload, which stays in the wheel.
        payload: &'a mut T,
    },
}

impl<T> Expired<'_, T> {
    /// The deadline (ns) that fired.
    ///
    /// ```
    /// use percore_timer::Expired;
    /// let e = Expired::Oneshot { deadline: 5, payload: () };
    /// assert_eq!(e.deadline(), 5);
    /// ```
    pub fn deadline(&self) -> u64 {
        match self {
            Self::Oneshot { deadline, .. } | Self::Interval { deadline, .. } => *deadline,
        }
    }
}
