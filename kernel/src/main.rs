//! The percore kernel binary: boot, announce, idle.
#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};

entry_point!(kernel_main, config = &percore_kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = percore_kernel::init(boot_info);
    kernel.announce_ready();
    percore_kernel::arch::x86_64::idle_loop()
}
