//! Wheel configuration: tick length and the fixed sizes chosen at creation.

use crate::error::ConfigError;
use crate::level::NIL;
use crate::time::TickShift;

/// How a [`Wheel`](crate::Wheel) is sized. Built with [`Config::new`] and the
/// `with_*` methods; checked by [`Wheel::new`](crate::Wheel::new).
///
/// ```
/// use percore_timer::{Config, TickShift, Wheel};
/// // 1024 ns ticks, room for 10 000 one-shot timers before the first
/// // allocation, never more than 100 000, and 4 interval timers.
/// let config = Config::new(TickShift::new(10).unwrap())
///     .with_capacity(10_000)
///     .with_max_timers(100_000)
///     .with_intervals(4);
/// let wheel: Wheel<u32> = Wheel::new(config).unwrap();
/// assert_eq!(wheel.tick(), TickShift::new(10).unwrap());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) tick: TickShift,
    pub(crate) capacity: usize,
    pub(crate) max_timers: Option<usize>,
    pub(crate) intervals: usize,
}

/// Sizes that passed validation, as slab index counts.
pub(crate) struct Sizes {
    pub(crate) intervals: u32,
    pub(crate) capacity: u32,
    pub(crate) max_timers: u32,
}

impl Config {
    /// Ticks of `tick`, no preallocation, no limit on one-shot timers beyond
    /// 32-bit indices, and no interval timers.
    pub const fn new(tick: TickShift) -> Self {
        Self {
            tick,
            capacity: 0,
            max_timers: None,
            intervals: 0,
        }
    }

    /// Preallocate room for `capacity` one-shot timers.
    pub const fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Refuse ([`InsertError::Full`](crate::InsertError::Full)) one-shot
    /// timers beyond `max` armed at once. With `max == capacity` the nodes
    /// and the chunk pool are preallocated for that many timers (at the
    /// pool's limit a full compaction runs rather than growing it); only
    /// the buffer a fired slot is sorted in can still grow.
    pub const fn with_max_timers(mut self, max: usize) -> Self {
        self.max_timers = Some(max);
        self
    }

    /// Reserve `intervals` interval-timer slots; that list is fixed.
    pub const fn with_intervals(mut self, intervals: usize) -> Self {
        self.intervals = intervals;
        self
    }

    pub(crate) fn sizes(&self) -> Result<Sizes, ConfigError> {
        // Every index, interval or one-shot, must stay below NIL.
        let limit = NIL as usize;
        if self.intervals >= limit {
            return Err(ConfigError::TooManyTimers);
        }
        let room = limit - self.intervals;
        let max_timers = self.max_timers.unwrap_or(room);
        if max_timers > room {
            return Err(ConfigError::TooManyTimers);
        }
        if self.capacity > max_timers {
            return Err(ConfigError::CapacityAboveMax);
        }
        // All three are below NIL = u32::MAX, checked above.
        Ok(Sizes {
            intervals: self.intervals as u32,
            capacity: self.capacity as u32,
            max_timers: max_timers as u32,
        })
    }
}
