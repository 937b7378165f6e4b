//! The in-QEMU test kernel: boots exactly like `percore-kernel`, then runs the
//! tests the host asks for (see [`harness`]) and exits QEMU with a verdict.
//! Each test module exports its own list, `TESTS`; names are what
//! `cargo xtask test --qemu FILTER` matches.
#![no_std]
#![no_main]

extern crate alloc;

mod bench;
mod bus;
mod cases;
mod disk;
mod disk_bench;
mod disklog;
mod faults;
mod harness;
mod memory;
mod net;
mod netmq;
mod pci;
mod platform;
mod ports;
mod probe;
mod reactor;
mod readiness;
mod sched;
mod smp;
mod storage;
mod streams;
mod topic;
mod uring;
mod user;
mod user_bench;
mod user_dlog;

use bootloader_api::{BootInfo, entry_point};

entry_point!(test_main, config = &percore_kernel::BOOTLOADER_CONFIG);

/// Every test, module by module, in the order they run: the ones that
/// start the reactors on every core come after the platform's own.
const SUITES: &[&[harness::Test]] = &[
    platform::TESTS,
    memory::TESTS,
    faults::TESTS,
    smp::TESTS,
    pci::TESTS,
    bench::TESTS,
    cases::TESTS,
    reactor::TESTS,
    topic::TESTS,
    bus::TESTS,
    ports::TESTS,
    readiness::TESTS,
    probe::TESTS,
    sched::TESTS,
    streams::TESTS,
    disk::TESTS,
    disk_bench::TESTS,
    net::TESTS,
    netmq::TESTS,
    disklog::TESTS,
    user::TESTS,
    uring::TESTS,
    user_bench::TESTS,
    user_dlog::TESTS,
    storage::TESTS,
];

fn test_main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = percore_kernel::init(boot_info);
    kernel.announce_ready();
    reactor::configure(&kernel);
    harness::run(&kernel, SUITES)
}
