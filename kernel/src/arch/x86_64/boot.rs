//! The bootstrap core's bring-up of the machine: per-core data, traps,
//! memory, descriptor tables with interrupt stacks, ACPI, the calibrated
//! clock, local APICs, IOAPICs and the application cores.

use alloc::vec::Vec;

use bootloader_api::BootInfo;

use super::acpi;
use super::cpu_local;
use super::refclock::RefClock;
use super::smp::{self, SmpReport};
use super::{gdt, idt, ioapic, ipi, lapic, msi, paging, pci, pic, power, tsc};
use crate::mem;

/// How long the TSC is measured against the reference clock at boot.
const TSC_CALIBRATION_NS: u64 = 10_000_000;

/// What boot found and did.
pub struct Machine {
    /// Usable physical memory in MiB.
    pub usable_mib: u64,
    /// Cores the firmware reported (enabled processors).
    pub cores_reported: usize,
    /// How application-core start-up went.
    pub smp: SmpReport,
}

/// The clock the TSC was calibrated against.
static REFERENCE: spin::Once<RefClock> = spin::Once::new();

/// The first step, before anything logs: this core's per-core data (every
/// log line names its core) and early trap handling on the current stack,
/// good enough to report a fault in the rest of boot.
pub fn early() {
    cpu_local::install_bsp();
    idt::build(false);
    idt::load();
    pic::remap_and_mask();
}

/// Brings the machine up from the bootloader's hand-off (after [`early`]
/// and once logging works). Interrupts stay masked; the caller unmasks them
/// when the rest of the kernel is ready. Panics (with a report) only if
/// memory cannot be set up.
pub fn init(boot_info: &'static BootInfo) -> Machine {
    let phys_offset = boot_info.physical_memory_offset.into_option();
    if let Err(error) = paging::init(&boot_info.memory_regions, phys_offset) {
        panic!("memory initialisation failed: {error:?}");
    }
    mem::stack::register_guard(boot_info.kernel_stack_bottom - 4096, "boot");
    if let Err(error) = gdt::init_this_core() {
        panic!("descriptor tables: cannot allocate interrupt stacks: {error:?}");
    }
    idt::build(true);

    let platform = match acpi::discover(boot_info.rsdp_addr.into_option(), phys_offset.unwrap_or(0))
    {
        Ok(platform) => Some(platform),
        Err(error) => {
            log::error!("ACPI: {error}; continuing on the bootstrap core alone");
            None
        }
    };
    pci::init(platform.as_ref());
    let reference = REFERENCE.call_once(|| RefClock::select(platform.as_ref()));
    let hz = tsc::calibrate(reference, TSC_CALIBRATION_NS);
    log::info!(
        "percore {}: tsc {}.{:03} MHz (calibrated against the {})",
        env!("CARGO_PKG_VERSION"),
        hz / 1_000_000,
        hz / 1_000 % 1_000,
        reference.name()
    );
    if let Some(platform) = &platform {
        let info = platform.power;
        log::info!(
            "ACPI power: PM1a control {:x?}, \\_S5 sleep types {:?}, reset register {:x?}",
            info.pm1a_control,
            info.s5,
            info.reset
        );
        power::init(info);
    }

    let apic_phys = platform
        .as_ref()
        .map_or(0xFEE0_0000, |p| p.local_apic_address);
    if let Err(error) = lapic::init_global(apic_phys) {
        panic!("local APIC: cannot map its registers: {error:?}");
    }
    lapic::init_this_core();
    ipi::init();
    let bsp_apic = cpu_local::this_core()
        .apic_id
        .load(core::sync::atomic::Ordering::Relaxed);
    let others: Vec<u32> = platform
        .iter()
        .flat_map(|p| p.processors.iter())
        .filter(|p| p.enabled && p.apic_id != bsp_apic)
        .map(|p| p.apic_id)
        .collect();
    let all: Vec<u32> = core::iter::once(bsp_apic)
        .chain(others.iter().copied())
        .collect();
    cpu_local::init_cores(&all);
    msi::init();
    if let Some(platform) = &platform
        && let Err(error) = ioapic::init(platform)
    {
        log::error!("IOAPIC: cannot map its registers ({error:?}); no device interrupts");
    }
    let smp = match smp::start_aps(&others, &boot_info.memory_regions, phys_offset.unwrap_or(0)) {
        Ok(report) => report,
        Err(error) => {
            log::error!("SMP start-up impossible ({error:?}); running on the bootstrap core alone");
            SmpReport::default()
        }
    };
    let usable_mib = mem::usable_bytes() / (1024 * 1024);
    log::info!(
        "{} of {} cores online ({:?}, timer {:?}); AP start-up {} us; {usable_mib} MiB usable, heap {} MiB",
        cpu_local::online_cores(),
        all.len(),
        lapic::mode(),
        lapic::timer_kind(),
        crate::arch::clock::cycles_to_ns(smp.total_cycles) / 1000,
        mem::heap::HEAP_SIZE / (1024 * 1024)
    );
    Machine {
        usable_mib,
        cores_reported: all.len(),
        smp,
    }
}

/// The TSC measured again against the boot-time reference clock.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// The frequency measured now, in Hz.
    pub hz: u64,
    /// The frequency measured at boot, in Hz.
    pub boot_hz: u64,
    /// Reference-clock ticks the measurement spanned.
    pub ticks: u64,
    /// The reference clock's name.
    pub reference: &'static str,
}

/// Measures the TSC against the boot-time reference clock over about
/// `window_ns`. `None` when the reference is the PIT (no readable counter)
/// or boot has not run.
pub fn recalibrate(window_ns: u64) -> Option<Calibration> {
    let reference = REFERENCE.get()?;
    let ref_hz = reference.hz();
    if ref_hz == 0 {
        return None;
    }
    let (hz, ticks) = tsc::measure(reference, ref_hz, window_ns);
    Some(Calibration {
        hz,
        boot_hz: tsc::hz(),
        ticks,
        reference: reference.name(),
    })
}
