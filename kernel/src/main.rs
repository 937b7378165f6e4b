//! The percore kernel binary: boot, start a reactor on every core, run the
//! serial console ("tele") as a task on core 0.
#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};

entry_point!(kernel_main, config = &percore_kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = percore_kernel::init(boot_info);
    percore_kernel::reactor::init(percore_sched::Flavour::RoundRobin);
    kernel.announce_ready();
    let pinned =
        percore_kernel::reactor::SpawnOptions::new(percore_kernel::reactor::priority(48)).pinned();
    let _console = percore_kernel::reactor::spawn_with(
        percore_kernel::arch::x86_64::cpu_local::CoreId(0),
        pinned,
        percore_kernel::tele::run(),
    );
    percore_kernel::reactor::run()
}
