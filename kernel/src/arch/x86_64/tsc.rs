//! The time-stamp counter: read it, and know its frequency.
//!
//! The frequency comes from CPUID leaf 0x15 when the CPU reports it, and
//! otherwise from a 10 ms calibration against the PIT at boot.

use core::sync::atomic::{AtomicU64, Ordering};

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

/// Where the TSC frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// CPUID leaf 0x15 (crystal ratio).
    Cpuid,
    /// Counted over a PIT interval.
    Pit,
}

/// Determines the TSC frequency once, at boot, on the bootstrap core.
pub fn calibrate() -> (u64, Source) {
    let (hz, source) = match cpuid_hz() {
        Some(hz) => (hz, Source::Cpuid),
        None => (pit_hz(), Source::Pit),
    };
    TSC_HZ.store(hz, Ordering::Relaxed);
    (hz, source)
}

fn cpuid_hz() -> Option<u64> {
    let max = core::arch::x86_64::__cpuid(0).eax;
    if max < 0x15 {
        return None;
    }
    let leaf = core::arch::x86_64::__cpuid(0x15);
    // EAX/EBX is the TSC/crystal ratio, ECX the crystal frequency; any of them
    // may be 0 ("not enumerated"), in which case we must measure.
    if leaf.eax == 0 || leaf.ebx == 0 || leaf.ecx == 0 {
        return None;
    }
    Some(u64::from(leaf.ecx) * u64::from(leaf.ebx) / u64::from(leaf.eax))
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
