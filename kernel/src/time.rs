//! Monotonic time since boot, from the TSC.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86_64::tsc;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// Records the boot instant. Called first thing on the bootstrap core.
pub fn mark_boot() {
    BOOT_TSC.store(tsc::rdtsc(), Ordering::Relaxed);
}

/// TSC cycles since boot.
pub fn cycles_since_boot() -> u64 {
    tsc::rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed))
}

/// Converts TSC cycles to nanoseconds (0 before the TSC is calibrated).
pub fn cycles_to_ns(cycles: u64) -> u64 {
    match tsc::hz() {
        0 => 0,
        // u128: cycles * 1e9 overflows u64 after a few seconds.
        hz => (u128::from(cycles) * 1_000_000_000 / u128::from(hz)) as u64,
    }
}

/// Nanoseconds since boot.
pub fn uptime_ns() -> u64 {
    cycles_to_ns(cycles_since_boot())
}

/// Microseconds since boot.
pub fn uptime_us() -> u64 {
    uptime_ns() / 1_000
}
