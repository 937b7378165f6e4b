//! The in-QEMU test kernel: boots exactly like `percore-kernel`, then runs the
//! tests the host asks for (see [`harness`]) and exits QEMU with a verdict.
#![no_std]
#![no_main]

extern crate alloc;

mod bench;
mod faults;
mod harness;
mod memory;
mod platform;
mod protocol;
mod reactor;
mod smp;
mod topic;

use bootloader_api::{BootInfo, entry_point};
use harness::{Kind, Test};

entry_point!(test_main, config = &percore_kernel::BOOTLOADER_CONFIG);

/// Every in-QEMU test. Names are what `cargo xtask test FILTER` matches.
static TESTS: &[Test] = &[
    Test::new("boot_state", Kind::Normal, platform::boot_state),
    Test::new(
        "mmio_uncached_lapic",
        Kind::Normal,
        platform::mmio_uncached_lapic,
    ),
    Test::new("heap_many_sizes", Kind::Normal, memory::heap_many_sizes),
    Test::new(
        "heap_large_vec_and_btreemap",
        Kind::Normal,
        memory::heap_large_vec_and_btreemap,
    ),
    Test::new(
        "frames_unique_and_usable",
        Kind::Normal,
        memory::frames_unique_and_usable,
    ),
    Test::new(
        "breakpoint_reported_and_resumed",
        Kind::Normal,
        faults::breakpoint,
    ),
    Test::new("cores_online", Kind::Normal, smp::cores_online),
    Test::new(
        "apic_mode_matches_machine",
        Kind::Normal,
        smp::apic_mode_matches_machine,
    ),
    Test::new("ipi_matrix", Kind::Normal, smp::ipi_matrix),
    Test::new(
        "apic_timer_every_core",
        Kind::Normal,
        smp::apic_timer_every_core,
    ),
    Test::new(
        "tsc_skew_across_cores",
        Kind::Normal,
        smp::tsc_skew_across_cores,
    ),
    Test::new(
        "tsc_calibration_vs_reference",
        Kind::Normal,
        smp::tsc_calibration_vs_reference,
    ),
    Test::new(
        "com1_interrupt_routed",
        Kind::Normal,
        smp::com1_interrupt_routed,
    ),
    Test::new(
        "panic_on_application_core",
        Kind::Panic {
            message: "deliberate panic on an application core",
        },
        smp::panic_on_application_core,
    ),
    Test::new("bench_smp", Kind::Bench, bench::bench_smp),
    Test::new("bench_reactor", Kind::Bench, bench::bench_reactor),
    // Reactor tests last: they start the reactors on every core.
    Test::new(
        "reactor_ten_thousand_tasks_joined_elsewhere",
        Kind::Normal,
        reactor::ten_thousand_tasks_joined_elsewhere,
    ),
    Test::new(
        "reactor_hundred_thousand_timers",
        Kind::Normal,
        reactor::hundred_thousand_timers,
    ),
    Test::new(
        "reactor_interval_without_drift",
        Kind::Normal,
        reactor::interval_without_drift,
    ),
    Test::new(
        "reactor_ping_pong_every_pair",
        Kind::Normal,
        reactor::ping_pong_every_pair,
    ),
    Test::new(
        "reactor_channel_backpressure",
        Kind::Normal,
        reactor::channel_backpressure,
    ),
    Test::new(
        "reactor_load_balancing_spreads_work",
        Kind::Normal,
        reactor::load_balancing_spreads_work,
    ),
    Test::new(
        "reactor_tickless_when_idle",
        Kind::Normal,
        reactor::tickless_when_idle,
    ),
    Test::new(
        "reactor_console_commands",
        Kind::Normal,
        reactor::console_commands,
    ),
    Test::new(
        "reactor_process_actor",
        Kind::Normal,
        reactor::process_actor,
    ),
    Test::new(
        "reactor_remote_timers",
        Kind::Normal,
        reactor::remote_timers,
    ),
    Test::new(
        "reactor_barrier_across_cores",
        Kind::Normal,
        reactor::barrier_across_cores,
    ),
    Test::new(
        "topic_fan_out_every_core",
        Kind::Normal,
        topic::fan_out_every_core,
    ),
    Test::new("topic_errors", Kind::Normal, topic::errors),
    Test::new(
        "reactor_join_across_cores",
        Kind::Normal,
        protocol::join_across_cores,
    ),
    Test::new(
        "reactor_ports_by_number",
        Kind::Normal,
        protocol::ports_by_number,
    ),
    Test::new(
        "reactor_ring_depth_seen_by_busy_core",
        Kind::Normal,
        protocol::ring_depth_seen_by_busy_core,
    ),
    Test::new(
        "reactor_console_reader_on_another_core",
        Kind::Normal,
        protocol::console_reader_on_another_core,
    ),
    Test::new(
        "reactor_readiness_edges_reach_other_cores",
        Kind::Normal,
        protocol::readiness_edges_reach_other_cores,
    ),
    Test::new(
        "reactor_ping_every_core",
        Kind::Normal,
        protocol::ping_every_core,
    ),
    Test::new(
        "reactor_poll_mode_needs_no_interrupts",
        Kind::Normal,
        protocol::poll_mode_needs_no_interrupts,
    ),
    // Leaves only one core running: the harness runs it after every other test.
    Test::new(
        "reactor_halt_parks_other_cores",
        Kind::Normal,
        protocol::halt_parks_other_cores,
    )
    .last(),
    faults::PAGE_FAULT,
    faults::STACK_OVERFLOW,
    faults::DIVIDE_ERROR,
    faults::INVALID_OPCODE,
];

fn test_main(boot_info: &'static mut BootInfo) -> ! {
    let kernel = percore_kernel::init(boot_info);
    kernel.announce_ready();
    harness::run(&kernel, TESTS)
}
