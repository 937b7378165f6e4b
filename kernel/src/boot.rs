//! The boot sequence of the bootstrap core, shared by the kernel and the
//! in-QEMU test kernel.

use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};

use alloc::vec::Vec;

use crate::arch::x86_64::acpi::{self, Platform};
use crate::arch::x86_64::cpu_local::{self, CoreId};
use crate::arch::x86_64::refclock::RefClock;
use crate::arch::x86_64::smp::{self, SmpReport};
use crate::arch::x86_64::{gdt, idt, ioapic, ipi, lapic, pic, trap, tsc};
use crate::{console, mem, time};

/// Where the kernel image is loaded: the top 2 GiB, as for any x86_64 kernel.
/// Fixed (not chosen by the bootloader) so that a debugger finds the symbols
/// at their link-time addresses plus this constant.
pub const KERNEL_BASE: u64 = 0xFFFF_FFFF_8000_0000;
/// Size of the bootstrap core's kernel stack (the bootloader maps it, with a
/// guard page below).
pub const BOOT_STACK_SIZE: u64 = 128 * 1024;

/// How the bootloader must load percore.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.kernel_base = Mapping::FixedAddress(KERNEL_BASE);
    // Keep every bootloader mapping in the higher half: the lower half is for
    // user space.
    config.mappings.dynamic_range_start = Some(0xFFFF_8000_0000_0000);
    config.kernel_stack_size = BOOT_STACK_SIZE;
    config
};

/// The booted kernel, as seen by `main` (or the test kernel).
pub struct Kernel {
    pub boot_info: &'static BootInfo,
    /// Usable physical memory in MiB.
    pub usable_mib: u64,
    /// What ACPI described (`None` if the firmware's tables were unusable).
    pub platform: Option<Platform>,
    /// The clock the TSC was calibrated against.
    pub reference_clock: RefClock,
    /// How application-core start-up went.
    pub smp: SmpReport,
}

impl Kernel {
    /// Prints the line that marks the end of boot:
    /// `percore ready: cores=N mem=M MiB boot_us=T`.
    pub fn announce_ready(&self) {
        crate::println!(
            "percore ready: cores={} mem={} MiB boot_us={}",
            cpu_local::online_cores(),
            self.usable_mib,
            time::uptime_us()
        );
    }
}

/// How long the TSC is measured against the reference clock at boot.
const TSC_CALIBRATION_NS: u64 = 10_000_000;

/// Brings the machine from the bootloader's hand-off to a working kernel on
/// every core: per-core data, console, traps, memory, descriptor tables with
/// interrupt stacks, ACPI, calibrated clock, local APICs, IOAPIC routing and
/// the application cores. Interrupts are enabled on return. Panics (with a
/// report) only if memory cannot be set up.
pub fn init(boot_info: &'static mut BootInfo) -> Kernel {
    time::mark_boot();
    cpu_local::install_bsp();
    console::init(log::LevelFilter::Info);
    // Early traps, on the current stack: good enough to report a fault in
    // the rest of boot. Interrupt stacks come once memory is up.
    idt::build(false);
    idt::load();
    pic::remap_and_mask();

    let boot_info: &'static BootInfo = boot_info;
    let phys_offset = boot_info.physical_memory_offset.into_option();
    if let Err(error) = mem::init(&boot_info.memory_regions, phys_offset) {
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
            log::error!("ACPI: {error:?}; continuing on the bootstrap core alone");
            None
        }
    };
    let reference_clock = RefClock::select(platform.as_ref());
    let hz = tsc::calibrate(&reference_clock, TSC_CALIBRATION_NS);
    log::info!(
        "percore {}: tsc {}.{:03} MHz (calibrated against the {})",
        env!("CARGO_PKG_VERSION"),
        hz / 1_000_000,
        hz / 1_000 % 1_000,
        reference_clock.name()
    );

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
    if let Some(platform) = &platform {
        route_console_interrupt(platform);
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
        time::cycles_to_ns(smp.total_cycles) / 1000,
        mem::heap::HEAP_SIZE / (1024 * 1024)
    );
    x86_64::instructions::interrupts::enable();
    Kernel {
        boot_info,
        usable_mib,
        platform,
        reference_clock,
        smp,
    }
}

/// Vector of the COM1 receive interrupt (ISA IRQ 4).
pub const COM1_VECTOR: u8 = ioapic::IRQ_BASE_VECTOR + 4;

fn route_console_interrupt(platform: &Platform) {
    let routed = ioapic::init(platform)
        .map_err(|e| alloc::format!("{e:?}"))
        .and_then(|()| {
            trap::set_handler(COM1_VECTOR, |_| {
                console::on_receive_interrupt();
                lapic::end_of_interrupt();
            })
            .map_err(|e| alloc::format!("{e:?}"))
        })
        .and_then(|()| {
            ioapic::route_isa_irq(4, COM1_VECTOR, CoreId(0)).map_err(|e| alloc::format!("{e:?}"))
        });
    if let Err(error) = routed {
        log::error!("console input interrupt not routed: {error}");
    }
}
