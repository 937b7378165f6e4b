//! The percore kernel binary: boot, start a reactor on every core and the
//! services on them, run the shell as a task on core 0.
#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use percore_kernel::arch::CoreId;
use percore_kernel::reactor::{self, SpawnOptions};
use percore_kernel::{drivers, ipc, net, shell};

entry_point!(kernel_main, config = &percore_kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = percore_kernel::init(boot_info);
    reactor::init(&kernel.sched_config());
    ipc::init();
    drivers::virtio::init();
    // Without a network device there is no stack; nothing to say.
    if net::init().is_ok() {
        net::samples::start_configured();
    }
    kernel.announce_ready();
    let pinned = SpawnOptions::new(reactor::priority(48)).pinned();
    let _shell = reactor::spawn_with(CoreId(0), pinned, shell::run());
    let _screen = reactor::spawn_with(CoreId(0), pinned, async {
        if let Err(error) = drivers::screen::run().await {
            log::info!("screen: not drawing ({error:?})");
        }
    });
    reactor::run()
}
