//! [`Park`]: the pluggable wait of [`Poll::poll`](crate::Poll::poll).
//!
//! `no_std` code cannot block by itself. When `poll` finds nothing ready and
//! may wait, it raises a "sleeping" flag, re-checks the queue, and calls
//! [`Park::park`]; any core that then queues readiness sees the flag and calls
//! [`Park::unpark`]. The kernel plugs "arm the LAPIC deadline timer + `hlt`"
//! and "send this core an IPI"; host code plugs `std::thread::park_timeout`
//! and `Thread::unpark`.

use core::time::Duration;

use crate::sync::{AtomicBool, spin_hint};
use core::sync::atomic::Ordering;

/// How a [`Poll`](crate::Poll) waits for readiness, and how it is woken.
///
/// Contract: `unpark` may be called from any core or interrupt context, before
/// or during `park`; an `unpark` that happens before `park` must make that
/// `park` return promptly (a permit, like `std::thread::park`). `park` may
/// return early or spuriously; it should return by `timeout` when one is given.
///
/// A host implementation:
///
/// ```
/// use std::time::Duration;
/// use percore_poll::{Park, Poll};
///
/// struct ThreadPark(std::thread::Thread);
///
/// impl Park for ThreadPark {
///     fn park(&self, timeout: Option<Duration>) {
///         match timeout {
///             Some(t) => std::thread::park_timeout(t),
///             None => std::thread::park(),
///         }
///     }
///     fn unpark(&self) {
///         self.0.unpark();
///     }
/// }
///
/// let poll = Poll::with_park(64, ThreadPark(std::thread::current())).unwrap();
/// # drop(poll);
/// ```
pub trait Park: Send + Sync {
    /// Waits until [`unpark`](Park::unpark) or `timeout`, whichever is first.
    fn park(&self, timeout: Option<Duration>);

    /// Ends the current or next [`park`](Park::park).
    fn unpark(&self);
}

/// The default [`Park`]: busy-waits on an atomic flag.
///
/// Without a clock it cannot honour a timeout: with `Some(timeout)` it spins a
/// bounded number of times and returns (an allowed early return); with `None`
/// it spins until unparked. Fine for tests and early boot, wasteful otherwise.
///
/// ```
/// use percore_poll::{Park, Spin};
///
/// let spin = Spin::new();
/// spin.unpark();
/// spin.park(None); // returns at once: the permit was set
/// ```
#[derive(Debug)]
pub struct Spin {
    permit: AtomicBool,
}

impl Spin {
    /// Spins before a timed `park` gives up.
    const TIMED_SPINS: u32 = 1 << 16;

    /// A spinner without a permit.
    pub fn new() -> Self {
        Self {
            permit: AtomicBool::new(false),
        }
    }
}

impl Default for Spin {
    fn default() -> Self {
        Self::new()
    }
}

impl Park for Spin {
    fn park(&self, timeout: Option<Duration>) {
        let mut spins = 0u32;
        while !self.permit.swap(false, Ordering::Acquire) {
            if timeout.is_some() {
                spins += 1;
                if spins >= Self::TIMED_SPINS {
                    return;
                }
            }
            spin_hint();
        }
    }

    fn unpark(&self) {
        self.permit.store(true, Ordering::Release);
    }
}
