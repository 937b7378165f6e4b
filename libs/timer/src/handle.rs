//! Generation-checked handles to timers.
//!
//! A handle is a node index plus the generation the node had when the
//! timer was armed. Firing or cancelling a timer bumps the node's
//! generation, so an old handle no longer matches and using it is a harmless
//! error instead of touching whatever timer reuses the node later. The
//! generation also tells one-shot from interval nodes (see `slab.rs`), so a
//! [`TimerHandle`] can never name an interval timer, nor an
//! [`IntervalHandle`] a one-shot.
//!
//! Handles are only meaningful to the wheel that issued them. Passing one to
//! another wheel can never corrupt it (every index is bounds- and
//! generation-checked), but it may name an unrelated live timer there.
//! Generations are 32 bits and a node's advances by 4 per timer: a handle
//! kept across 2^30 reuses of the same node could match again. (The
//! wheel's own entries are safe from this: when a node's generation wraps,
//! every tombstone is dropped first.)

/// Names a one-shot timer armed with [`Wheel::insert`](crate::Wheel::insert).
///
/// ```
/// use percore_timer::{Config, TickShift, Wheel};
/// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
/// let a = wheel.insert(5_000, 'a').unwrap();
/// let b = wheel.insert(5_000, 'b').unwrap();
/// assert_ne!(a, b);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// Names an interval (periodic) timer added with
/// [`Wheel::add_interval`](crate::Wheel::add_interval).
///
/// ```
/// use percore_timer::{Config, TickShift, Wheel};
/// let config = Config::new(TickShift::new(10).unwrap()).with_intervals(1);
/// let mut wheel = Wheel::new(config).unwrap();
/// let tick = wheel.add_interval(1_000_000, 1_000_000, "tick").unwrap();
/// assert_eq!(wheel.remove_interval(tick), Ok("tick"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntervalHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}
