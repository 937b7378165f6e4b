//! The hardware interface: everything above this module reaches the CPU,
//! its interrupt controllers and its timers only through the functions
//! named here (the model is Hubris' `arch.rs` and Tock's `Chip`: the reactor
//! asks arch to sleep, mask and ring; it never issues the instructions).
//!
//! Two implementations sit behind it: `x86_64` (the machine, built for
//! `target_os = "none"`) and `fake` (a simulation for host unit tests of the
//! layers above, in the spirit of Hubris' `arch/fake.rs`). The portable part
//! of the interface — [`cpu`], [`doorbell`], [`timer`], [`clock`],
//! [`call`], [`serial`], [`io`], [`irq`], [`power`] and [`trap`] — exists
//! in both; what only the machine has (boot, APIC details, page tables) is
//! compiled for the machine alone.

use core::sync::atomic::AtomicU64;

pub mod aml;

#[cfg(not(target_os = "none"))]
pub mod fake;
#[cfg(not(target_os = "none"))]
use fake as imp;
#[cfg(target_os = "none")]
mod x86_64;
#[cfg(target_os = "none")]
use self::x86_64 as imp;

/// A dense logical core number, `0..cores`; the bootstrap core is core 0.
/// The same type names a core on the intercore bus.
pub use percore_proto::CoreId;

/// Counters a core keeps about itself; other cores only read them.
#[derive(Default)]
pub struct CoreStats {
    /// Doorbell IPIs this core sent ([`doorbell::ring`]).
    pub doorbells: AtomicU64,
    pub ipis_received: AtomicU64,
    pub timer_interrupts: AtomicU64,
    /// One-shot timer interrupts that came before the deadline and were re-armed.
    pub timer_early_rearms: AtomicU64,
    pub spurious_interrupts: AtomicU64,
    pub apic_errors: AtomicU64,
}

impl CoreStats {
    /// All counters at zero (usable in a `static`).
    pub const fn new() -> CoreStats {
        CoreStats {
            doorbells: AtomicU64::new(0),
            ipis_received: AtomicU64::new(0),
            timer_interrupts: AtomicU64::new(0),
            timer_early_rearms: AtomicU64::new(0),
            spurious_interrupts: AtomicU64::new(0),
            apic_errors: AtomicU64::new(0),
        }
    }
}

/// The running core: its id, the table of cores, interrupt masking, waiting.
pub mod cpu {
    pub use super::imp::cpu::{
        apic_id, core_count, core_id, disable_interrupts, enable_interrupts, halt_forever,
        is_online, is_stopped, mark_stopped, online_cores, stats, stop_other_cores,
        wait_for_interrupt, without_interrupts,
    };
}

/// The wake-up doorbell: an IPI that ends another core's halt. Every
/// doorbell the kernel rings goes through [`ring`](doorbell::ring), which
/// counts it in the sender's [`CoreStats::doorbells`].
pub mod doorbell {
    pub use super::imp::doorbell::ring;
}

/// This core's one-shot timer interrupt, on the [`clock`]'s time base.
pub mod timer {
    pub use super::imp::timer::{arm, cancel};
}

/// The cycle counter every core reads (synchronised across cores).
pub mod clock {
    pub use super::imp::clock::{cycles, hz};

    use core::sync::atomic::{AtomicU64, Ordering};

    /// The clock rate [`SCALE`] was computed for, and nanoseconds per cycle
    /// as a fixed-point number with [`FRACTION`] bits after the point (for
    /// any clock above 16 kHz it fits 64 bits): a conversion is one multiplication
    /// (the reactor converts around every poll; a 128-bit division costs
    /// about a hundred instructions).
    static SCALE_HZ: AtomicU64 = AtomicU64::new(0);
    static SCALE: AtomicU64 = AtomicU64::new(0);
    const FRACTION: u32 = 48;

    /// Converts clock cycles to nanoseconds (0 before the clock is
    /// calibrated); below the exact quotient by at most 1 + ns / 2^40 (under
    /// a microsecond a year at 3 GHz).
    pub fn cycles_to_ns(cycles: u64) -> u64 {
        let hz = hz();
        if hz == 0 {
            return 0;
        }
        let scale = if SCALE_HZ.load(Ordering::Acquire) == hz {
            SCALE.load(Ordering::Relaxed)
        } else {
            // First use, or the clock was calibrated again. Two cores racing
            // here store the same values.
            let scale = ((1_000_000_000u128 << FRACTION) / u128::from(hz)) as u64;
            SCALE.store(scale, Ordering::Relaxed);
            SCALE_HZ.store(hz, Ordering::Release);
            scale
        };
        // u128: cycles * scale needs up to 112 bits.
        ((u128::from(cycles) * u128::from(scale)) >> FRACTION) as u64
    }

    #[cfg(test)]
    mod tests {
        /// Against the exact quotient, across the range (the simulated
        /// clock runs at 1 GHz, where the scale is exact).
        #[test]
        fn conversion_is_exact_at_one_gigahertz() {
            for cycles in [0, 1, 999, 1_000_000_007, u64::MAX / 3, u64::MAX] {
                assert_eq!(super::cycles_to_ns(cycles), cycles);
            }
        }

        #[test]
        fn fixed_point_error_is_below_the_bound() {
            use super::FRACTION;
            // 2.596971 GHz, as calibrated on a development machine, and
            // the slowest and a fast clock.
            for hz in [2_596_971_000u128, 16_384, 5_000_000_007] {
                let scale = ((1_000_000_000u128 << FRACTION) / hz) as u64;
                for cycles in [1u64, 2_596_971, 2_596_971_000, 10_389_000_000_000, u64::MAX] {
                    let exact = (u128::from(cycles) * 1_000_000_000 / hz) as u64;
                    let fast = ((u128::from(cycles) * u128::from(scale)) >> FRACTION) as u64;
                    assert!(
                        fast <= exact && exact - fast <= 1 + exact / (1 << 40),
                        "{hz} Hz, {cycles}: {exact} vs {fast}"
                    );
                }
            }
        }
    }
}

/// Running a function on another core, outside the reactor (boot, tests,
/// starting each core's loop).
pub mod call {
    pub use super::imp::call::{CallError, Pending, post, run_on, serve_pending};
}

/// The serial port the console writes to and reads from.
pub mod serial {
    pub use super::imp::serial::Uart;
}

/// Port-mapped I/O, for devices that live in the I/O port space (QEMU's
/// fw_cfg, PCI configuration mechanism #1).
pub mod io {
    pub use super::imp::io::{read_u8, read_u16, read_u32, write_u8, write_u16, write_u32};
}

/// PCI configuration space (ECAM where ACPI describes it, else port I/O),
/// as `pci_types::ConfigRegionAccess`.
pub mod pci {
    pub use super::imp::pci::{ConfigSpace, Mechanism, PortConfigSpace, mechanism};
}

/// Device interrupts: a handler on a chosen core. Message-signalled
/// interrupts (MSI-X) first: a vector from the target core's own pool with
/// a handler that runs there ([`allocate_vector`](irq::allocate_vector)),
/// and the message a device writes to raise it
/// ([`msi_message`](irq::msi_message)); legacy ISA lines through the
/// IOAPIC ([`route_isa`](irq::route_isa)) for the devices that have no MSI.
pub mod irq {
    use super::CoreId;

    pub use super::imp::irq::{
        RouteError, allocate_vector, free_vector, msi_message, msi_target, route_isa,
    };

    /// What a device writes to raise a message-signalled interrupt: a
    /// 64-bit address and 32-bit data (the MSI-X table entry's fields).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MsiMessage {
        pub address: u64,
        pub data: u32,
    }

    /// Why a message-signalled interrupt could not be set up.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MsiError {
        /// There is no such core.
        NoSuchCore(CoreId),
        /// Every device vector of that core is taken.
        NoFreeVector(CoreId),
        /// That vector is not allocated on that core.
        NotAllocated(CoreId, u8),
        /// The core's APIC id does not fit a message's 8-bit destination
        /// (an x2APIC id above 255 needs interrupt remapping).
        DestinationTooWide(CoreId, u32),
    }
}

mod vectors;

/// Device registers in physical memory, mapped uncached.
pub mod mmio {
    pub use super::imp::mmio::{MmioRegion, map};
}

/// Leaving the machine: power off and reset (ACPI on a PC; `power_off`
/// falls back to QEMU's debug-exit device), and the test kernel's exit
/// with a status.
pub mod power {
    pub use super::imp::power::{exit_qemu, power_off, reboot};

    /// What the guest reports to the host through QEMU's `isa-debug-exit`
    /// device. QEMU exits with `(code << 1) | 1`: 33 for success and 35 for
    /// failure, which cannot be confused with QEMU's own exit codes (0 for a
    /// guest shutdown or reset, 1 for its own errors).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u32)]
    pub enum ExitCode {
        Success = 0x10,
        Failure = 0x11,
    }
}

/// CPU exceptions: what the fatal path reports.
pub mod trap {
    pub use super::imp::trap::{ExceptionReport, breakpoint, breakpoint_count, set_fatal_handler};
    #[cfg(target_os = "none")]
    pub use super::x86_64::exception::vector;
}

/// Ring 3: user page tables and the frames behind them, entering user mode
/// (a call that returns why the thread came back), and the one copy
/// routine that may touch user memory (a page fault inside it is an error,
/// not a crash). The checks around the copy are `process`'s.
pub mod user {
    #[cfg(not(target_os = "none"))]
    pub use super::fake::user::{
        Protection, Table, UserContext, alloc_frame, copy_from_user, copy_to_user, enter,
        fault_names, frame_ptr, frames_in_use, free_frame, protection, save_fpu, write_frame,
    };
    #[cfg(target_os = "none")]
    pub use super::x86_64::{
        exception::names as fault_names,
        user::{Protection, UserContext, enter, protection, save_fpu},
        usercopy::{copy_from_user, copy_to_user},
        uspace::{Table, alloc_frame, frame_ptr, frames_in_use, free_frame, write_frame},
    };

    /// What a user page allows: W^X by construction (no variant is both
    /// writable and executable).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Access {
        Read,
        ReadWrite,
        ReadExecute,
    }

    impl Access {
        pub fn writable(self) -> bool {
            self == Access::ReadWrite
        }

        pub fn executable(self) -> bool {
            self == Access::ReadExecute
        }
    }

    /// Why a user thread came back to the kernel.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Trap {
        /// It made a syscall (number and arguments in its context).
        Syscall,
        /// An interrupt came (already handled); the thread can go on.
        Interrupt,
        /// It raised an exception.
        Fault(Fault),
    }

    /// An exception a user thread raised.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Fault {
        pub vector: u8,
        pub error_code: u64,
        pub rip: u64,
        /// The address a page fault was about.
        pub address: Option<u64>,
    }

    impl core::fmt::Display for Fault {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let (mnemonic, name) = fault_names(self.vector);
            write!(f, "{mnemonic} {name}")?;
            if let Some(address) = self.address {
                write!(f, " at {address:#x} (error code {:#x})", self.error_code)?;
            } else if self.error_code != 0 {
                write!(f, " (error code {:#x})", self.error_code)?;
            }
            Ok(())
        }
    }
}

/// Bringing the machine up (the bootstrap core's part of boot).
#[cfg(target_os = "none")]
pub mod boot {
    pub use super::x86_64::boot::{Machine, early, init};
    pub use super::x86_64::smp::{ApTiming, SmpReport};
}

/// The local APIC and IOAPIC, for the tests and benchmarks of this layer.
#[cfg(target_os = "none")]
pub mod apic {
    pub use super::x86_64::ioapic::{IRQ_BASE_VECTOR, isa_entry};
    pub use super::x86_64::lapic::{
        Mode, TimerKind, base_msr, last_timer_fired, mode, own_id, register_id, ring_all_others,
        timer_kind,
    };
}

/// Kernel page tables: device windows, stacks, address translation.
#[cfg(target_os = "none")]
pub mod paging {
    pub use super::x86_64::paging::{Mapping, MmioRegion, allocate_stack, map_mmio, translate};
}

/// The clock calibration, checked again (tests).
#[cfg(target_os = "none")]
pub mod calibration {
    pub use super::x86_64::boot::{Calibration, recalibrate};
}
