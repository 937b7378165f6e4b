//! Error values. Every error that refuses a payload hands it back.

/// Why [`Wheel::new`](crate::Wheel::new) refused a [`Config`](crate::Config).
///
/// ```
/// use percore_timer::{Config, ConfigError, TickShift, Wheel};
/// let config = Config::new(TickShift::new(10).unwrap()).with_capacity(10).with_max_timers(5);
/// assert_eq!(Wheel::<()>::new(config).err(), Some(ConfigError::CapacityAboveMax));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `capacity` is larger than `max_timers`.
    CapacityAboveMax,
    /// Timers plus intervals exceed what 32-bit slab indices can name.
    TooManyTimers,
}

/// Why [`Wheel::insert`](crate::Wheel::insert) refused a timer.
///
/// ```
/// use percore_timer::{Config, InsertError, TickShift, Wheel};
/// let config = Config::new(TickShift::new(10).unwrap()).with_max_timers(1);
/// let mut wheel = Wheel::new(config).unwrap();
/// wheel.insert(100, 1).unwrap();
/// assert_eq!(wheel.insert(100, 2), Err(InsertError::Full(2)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError<T> {
    /// `max_timers` one-shot timers are already armed; here is the payload back.
    Full(T),
}

/// Why [`Wheel::add_interval`](crate::Wheel::add_interval) refused a timer.
///
/// ```
/// use percore_timer::{Config, IntervalError, TickShift, Wheel};
/// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
/// // The default configuration has no interval slots.
/// assert_eq!(wheel.add_interval(0, 10, 'x'), Err(IntervalError::Full('x')));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalError<T> {
    /// Every interval slot fixed at creation is in use.
    Full(T),
    /// A period of zero would fire forever; here is the payload back.
    ZeroPeriod(T),
}

/// Why cancelling a timer through its handle did nothing.
///
/// ```
/// use percore_timer::{CancelError, Config, TickShift, Wheel};
/// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
/// let h = wheel.insert(10, ()).unwrap();
/// assert_eq!(wheel.cancel(h), Ok(()));
/// assert_eq!(wheel.cancel(h), Err(CancelError::Inactive));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelError {
    /// The timer already fired or was cancelled, and its slab entry may have
    /// been reused: the handle is stale. Nothing was changed.
    Inactive,
}
