//! Conversions between nanosecond instants and wheel ticks.
//!
//! The wheel counts time in ticks of `2^shift` nanoseconds. A deadline is
//! rounded *up* to the next tick boundary (its "fire instant"), so a timer is
//! never reported before its deadline; "now" is rounded *down*, so the wheel
//! never believes it is later than it is. Together these give the rule the
//! whole crate is built on: a timer with deadline `d` fires at the first
//! `advance(now)` with `now >= ceil(d / tick) * tick`.

/// Length of one wheel tick, as a power of two of nanoseconds.
///
/// `TickShift::new(10)` is a tick of 1024 ns (about 1 µs); `20` is about 1 ms.
///
/// ```
/// use percore_timer::TickShift;
/// let tick = TickShift::new(10).unwrap();
/// assert_eq!(tick.nanos(), 1024);
/// assert!(TickShift::new(64).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TickShift(u32);

impl TickShift {
    /// A tick of `2^shift` nanoseconds; `None` unless `shift < 64`.
    pub const fn new(shift: u32) -> Option<Self> {
        if shift < 64 { Some(Self(shift)) } else { None }
    }

    /// The exponent: one tick is `2^shift()` nanoseconds.
    pub const fn shift(self) -> u32 {
        self.0
    }

    /// The tick length in nanoseconds.
    pub const fn nanos(self) -> u64 {
        1 << self.0
    }

    /// The tick containing `now` (rounded down).
    pub(crate) const fn floor(self, nanos: u64) -> u64 {
        nanos >> self.0
    }

    /// The first tick boundary at or after `nanos` (rounded up): the tick at
    /// which a deadline of `nanos` fires. `(n >> s) + (low bits != 0)` cannot
    /// overflow: for `s > 0` the shifted value is below `2^(64-s)`, and for
    /// `s == 0` the low-bit mask is empty.
    pub(crate) const fn ceil(self, nanos: u64) -> u64 {
        let mask = self.nanos() - 1;
        (nanos >> self.0) + ((nanos & mask != 0) as u64)
    }

    /// The instant (ns) at which `tick` begins, saturating at `u64::MAX` for
    /// ticks whose start is not representable.
    pub(crate) const fn to_nanos(self, tick: u64) -> u64 {
        if tick > (u64::MAX >> self.0) {
            u64::MAX
        } else {
            tick << self.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TickShift;

    #[test]
    fn rounding() {
        let t = TickShift::new(10).unwrap();
        assert_eq!(t.ceil(0), 0);
        assert_eq!(t.ceil(1), 1);
        assert_eq!(t.ceil(1024), 1);
        assert_eq!(t.ceil(1025), 2);
        assert_eq!(t.floor(2047), 1);
        assert_eq!(t.to_nanos(3), 3072);
        assert_eq!(t.ceil(u64::MAX), 1 << 54);
        assert_eq!(t.to_nanos(1 << 54), u64::MAX);
        let one = TickShift::new(0).unwrap();
        assert_eq!(one.ceil(u64::MAX), u64::MAX);
        assert_eq!(one.to_nanos(u64::MAX), u64::MAX);
    }
}
