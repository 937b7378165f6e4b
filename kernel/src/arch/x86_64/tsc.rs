//! The time-stamp counter: read it, and know its frequency.
//!
//! The frequency is measured at boot against a reference clock (HPET, ACPI
//! PM timer or PIT, see [`super::refclock`]). CPUID leaf 0x15 is not trusted:
//! emulators and some firmware report a nominal value far from the truth.

use core::sync::atomic::{AtomicU64, Ordering};

use super::refclock::RefClock;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Reads the TSC.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects and is allowed at CPL 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The calibrated TSC frequency in Hz (0 before [`calibrate`] ran).
#[inline]
pub fn hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Measures the TSC frequency against `reference` over `window_ns`
/// nanoseconds and makes it the kernel's TSC frequency. Returns the frequency.
pub fn calibrate(reference: &RefClock, window_ns: u64) -> u64 {
    let hz = match reference.hz() {
        0 => pit_hz(),
        ref_hz => measure(reference, ref_hz, window_ns).0,
    };
    TSC_HZ.store(hz, Ordering::Relaxed);
    hz
}

/// TSC frequency measured against `reference` over about `window_ns`, and
/// the window actually measured, in reference ticks.
pub fn measure(reference: &RefClock, ref_hz: u64, window_ns: u64) -> (u64, u64) {
    let window_ticks = (u128::from(ref_hz) * u128::from(window_ns) / 1_000_000_000) as u64;
    // Bracket each reference read with two TSC reads and take the midpoint:
    // this cancels most of the (slow, uncached) reference read's latency.
    // Of a few tries keep the narrowest bracket: a vCPU preempted inside one
    // (common under emulation on a loaded host) would skew the midpoint.
    let sample = || {
        let mut best = (0, 0, u64::MAX);
        for _ in 0..8 {
            let before = rdtsc();
            let counter = reference.read().unwrap_or(0);
            let after = rdtsc();
            if after - before < best.2 {
                best = (counter, before + (after - before) / 2, after - before);
            }
        }
        (best.0, best.1)
    };
    let (r0, t0) = sample();
    let (r1, t1) = loop {
        let (r, t) = sample();
        if reference.ticks_between(r0, r) >= window_ticks {
            break (r, t);
        }
        core::hint::spin_loop();
    };
    let ticks = reference.ticks_between(r0, r1);
    let hz = (u128::from(t1 - t0) * u128::from(ref_hz) / u128::from(ticks.max(1))) as u64;
    (hz, ticks)
}

fn pit_hz() -> u64 {
    // 5966 PIT ticks = 5.0 ms. Take the best (shortest) of two runs: an
    // emulator may be preempted during one, which only ever makes it longer.
    const TICKS: u16 = 5_966;
    let best = (0..2)
        .map(|_| {
            let (t0, t1) = super::pit::measure(TICKS, rdtsc, rdtsc);
            t1.wrapping_sub(t0)
        })
        .min()
        .unwrap_or(0);
    best * super::pit::PIT_HZ / u64::from(TICKS)
}
