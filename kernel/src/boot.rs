//! The boot sequence of the bootstrap core, shared by the kernel and the
//! in-QEMU test kernel.

use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};

use crate::arch::x86_64::{cpu_local, gdt, idt, pic, tsc};
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

/// Brings the bootstrap core from the bootloader's hand-off to a working
/// kernel: per-core data, console, traps, clock, memory, heap, descriptor
/// tables with interrupt stacks. Panics (with a report) if memory cannot be set up.
pub fn init(boot_info: &'static mut BootInfo) -> Kernel {
    time::mark_boot();
    cpu_local::install_bsp();
    console::init(log::LevelFilter::Info);
    // Early traps, on the current stack: good enough to report a fault in
    // the rest of boot. Interrupt stacks come once memory is up.
    idt::build(false);
    idt::load();
    pic::remap_and_mask();
    let (hz, source) = tsc::calibrate();
    log::info!(
        "percore {} booting; tsc {} kHz ({source:?})",
        env!("CARGO_PKG_VERSION"),
        hz / 1000
    );

    let boot_info: &'static BootInfo = boot_info;
    if let Err(error) = mem::init(
        &boot_info.memory_regions,
        boot_info.physical_memory_offset.into_option(),
    ) {
        panic!("memory initialisation failed: {error:?}");
    }
    mem::stack::register_guard(boot_info.kernel_stack_bottom - 4096, "boot");
    if let Err(error) = gdt::init_this_core() {
        panic!("descriptor tables: cannot allocate interrupt stacks: {error:?}");
    }
    idt::build(true);
    let usable_mib = mem::usable_bytes() / (1024 * 1024);
    log::info!(
        "memory: {usable_mib} MiB usable, heap {} MiB",
        mem::heap::HEAP_SIZE / (1024 * 1024)
    );
    Kernel {
        boot_info,
        usable_mib,
    }
}
