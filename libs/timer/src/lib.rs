//! A hierarchical timer wheel (Varghese & Lauck) for one core's reactor.
//!
//! Each core owns one [`Wheel`]. The reactor calls
//! [`advance(now, |expired| ..)`](Wheel::advance) every loop turn to fire
//! what is due, and before halting programs the LAPIC TSC-deadline timer
//! with [`next_deadline()`](Wheel::next_deadline). Every timer carries a
//! payload `T` (a task id, a waker key).
//!
//! * **Time** is nanosecond instants (`u64`); internally the wheel counts
//!   ticks of a power-of-two number of nanoseconds ([`TickShift`]).
//! * **Levels**: six levels of 64 slots (2^36 ticks), with a 64-bit
//!   occupied-slot bitmap per level, so advancing skips empty slots in
//!   O(levels) and never walks tick by tick. Timers further out wait on an
//!   overflow list that is re-examined once per 2^36 ticks.
//! * **O(1) insert and cancel**: a timer is a small node in a slab
//!   (generation and payload; no allocation per timer after warm-up) plus
//!   a 16-byte entry (deadline, node index, generation) on its slot's list
//!   of pooled chunks. A [`TimerHandle`] is a generation-checked node
//!   index, so cancelling a fired or reused handle is a harmless
//!   [`CancelError::Inactive`]. `cancel` frees the node in one look and
//!   leaves the entry as a tombstone, dropped when its slot is walked or by
//!   incremental compaction, so memory stays bounded by the live timers.
//! * **Interval timers**: a fixed table sized at creation; they re-arm from
//!   their previous deadline (no drift) and coalesce missed periods.
//! * **Guarantees**: a timer with deadline `d` fires exactly once, at the
//!   first `advance(now)` with `now >= d` rounded up to a tick (never early,
//!   at most one tick plus the caller's latency late), unless cancelled.
//!   The timers fired by one `advance` call come out in non-decreasing
//!   order of exact deadline (ties in unspecified order).
//!
//! ```
//! use percore_timer::{Config, Expired, TickShift, Wheel};
//!
//! // 1024 ns ticks, room for 1024 timers up front, two periodic timers.
//! let config = Config::new(TickShift::new(10).unwrap())
//!     .with_capacity(1024)
//!     .with_intervals(2);
//! let mut wheel = Wheel::new(config).unwrap();
//! let sleeper = wheel.insert(5_000_000, 7u32).unwrap(); // task 7 sleeps 5 ms
//! wheel.add_interval(1_000_000, 1_000_000, 0).unwrap(); // a 1 ms tick for task 0
//! wheel.insert(2_500_000, 9).unwrap();
//! wheel.cancel(sleeper).unwrap();
//!
//! let mut woken = Vec::new();
//! wheel.advance(3_000_000, |e| match e {
//!     Expired::Oneshot { payload, .. } => woken.push(payload),
//!     Expired::Interval { payload, .. } => woken.push(*payload),
//! });
//! // The interval fired at 1 ms (and 2 ms, coalesced: `missed == 1`),
//! // then task 9 at 2.5 ms.
//! assert_eq!(woken, [0, 9]);
//! ```
#![no_std]

extern crate alloc;

mod config;
mod error;
mod expired;
mod handle;
mod interval;
mod level;
mod lists;
mod slab;
mod time;
mod wheel;

pub use config::Config;
pub use error::{CancelError, ConfigError, InsertError, IntervalError};
pub use expired::Expired;
pub use handle::{IntervalHandle, TimerHandle};
pub use time::TickShift;
pub use wheel::Wheel;
