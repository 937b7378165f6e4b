//! Reference clocks of known frequency, used to calibrate the TSC: the HPET
//! when ACPI describes one, else the ACPI PM timer, else the PIT.

use x86_64::instructions::port::Port;

use super::acpi::Platform;
use super::paging;

/// HPET register offsets (IA-PC HPET spec 1.0a, 2.3).
const HPET_CAPABILITIES: u64 = 0x00;
const HPET_CONFIG: u64 = 0x10;
const HPET_COUNTER: u64 = 0xF0;
/// The ACPI PM timer runs at 3.579545 MHz.
const PM_TIMER_HZ: u64 = 3_579_545;

/// A free-running counter of known frequency.
#[derive(Clone, Copy, Debug)]
pub enum RefClock {
    /// HPET main counter at `base` (uncached mapping), `period_fs` femtoseconds a tick.
    Hpet { base: u64, period_fs: u64 },
    /// ACPI PM timer at I/O `port`; 24 bits wide unless `is_32bit`.
    PmTimer { port: u16, is_32bit: bool },
    /// No ACPI timer: the PIT (see [`super::pit`]) must be used instead.
    Pit,
}

impl RefClock {
    /// Picks the best reference the platform offers, enabling the HPET if needed.
    pub fn select(platform: Option<&Platform>) -> RefClock {
        let Some(platform) = platform else {
            return RefClock::Pit;
        };
        if let Some(hpet) = platform.hpet_address.and_then(enable_hpet) {
            return hpet;
        }
        match platform.pm_timer {
            Some(pm) => RefClock::PmTimer {
                port: pm.port,
                is_32bit: pm.is_32bit,
            },
            None => RefClock::Pit,
        }
    }

    /// Frequency in Hz (0 for the PIT, which is not read as a counter).
    pub fn hz(&self) -> u64 {
        match *self {
            RefClock::Hpet { period_fs, .. } => 1_000_000_000_000_000 / period_fs,
            RefClock::PmTimer { .. } => PM_TIMER_HZ,
            RefClock::Pit => 0,
        }
    }

    /// Reads the counter (`None` for the PIT).
    pub fn read(&self) -> Option<u64> {
        match *self {
            RefClock::Hpet { base, .. } => {
                let counter = (base + HPET_COUNTER) as *const u64;
                // SAFETY: `base` maps the HPET registers uncached; the main
                // counter is a side-effect-free 64-bit read.
                Some(unsafe { counter.read_volatile() })
            }
            RefClock::PmTimer { port, .. } => {
                let mut port = Port::<u32>::new(port);
                // SAFETY: reading the PM timer port has no side effects.
                Some(u64::from(unsafe { port.read() }))
            }
            RefClock::Pit => None,
        }
    }

    /// Ticks from `earlier` to `later`, allowing for one wrap of a narrow counter.
    pub fn ticks_between(&self, earlier: u64, later: u64) -> u64 {
        let mask = match *self {
            RefClock::PmTimer {
                is_32bit: false, ..
            } => 0x00FF_FFFF,
            RefClock::PmTimer { is_32bit: true, .. } => 0xFFFF_FFFF,
            _ => u64::MAX,
        };
        later.wrapping_sub(earlier) & mask
    }

    pub fn name(&self) -> &'static str {
        match self {
            RefClock::Hpet { .. } => "HPET",
            RefClock::PmTimer { .. } => "ACPI PM timer",
            RefClock::Pit => "PIT",
        }
    }
}

fn enable_hpet(phys: u64) -> Option<RefClock> {
    let base = paging::map_mmio(phys, 0x400).ok()?.base;
    // SAFETY: the HPET register block is mapped uncached at `base`.
    unsafe {
        let capabilities = ((base + HPET_CAPABILITIES) as *const u64).read_volatile();
        let period_fs = capabilities >> 32;
        // The spec caps the period at 100 ns (1e8 fs); 0 or more is a broken HPET.
        if period_fs == 0 || period_fs > 100_000_000 {
            return None;
        }
        let config = (base + HPET_CONFIG) as *mut u64;
        config.write_volatile(config.read_volatile() | 1); // ENABLE_CNF: counter runs
        Some(RefClock::Hpet { base, period_fs })
    }
}
