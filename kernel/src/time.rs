//! Monotonic time since boot, from the TSC.
//!
//! The TSC is invariant and, on the machines percore targets, synchronised
//! across cores by firmware, so one boot-time origin serves every core:
//! `Clock::now()` on two cores is comparable (the skew is measured by the
//! `tsc_skew_across_cores` test).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::clock;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// Records the boot instant. Called first thing on the bootstrap core.
pub fn mark_boot() {
    BOOT_TSC.store(clock::cycles(), Ordering::Relaxed);
}

/// TSC cycles since boot.
pub fn cycles_since_boot() -> u64 {
    clock::cycles().saturating_sub(BOOT_TSC.load(Ordering::Relaxed))
}

/// Converts clock cycles to nanoseconds (0 before the clock is calibrated).
pub use crate::arch::clock::cycles_to_ns;

/// Nanoseconds since boot.
pub fn uptime_ns() -> u64 {
    cycles_to_ns(cycles_since_boot())
}

/// Microseconds since boot.
pub fn uptime_us() -> u64 {
    uptime_ns() / 1_000
}

/// A point in time, in nanoseconds since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

/// The kernel's monotonic clock.
pub struct Clock;

impl Clock {
    /// Now, on any core.
    pub fn now() -> Instant {
        Instant(uptime_ns())
    }

    /// The cycle count at which `instant` is reached (for the timer).
    pub fn cycles_at(instant: Instant) -> u64 {
        let hz = u128::from(clock::hz());
        BOOT_TSC.load(Ordering::Relaxed) + (u128::from(instant.0) * hz / 1_000_000_000) as u64
    }
}
