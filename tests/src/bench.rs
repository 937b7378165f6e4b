//! In-kernel SMP benchmarks (`cargo xtask bench smp`): AP start-up, IPI
//! latency between core pairs, APIC timer lateness. Not run by `cargo xtask
//! test`: benchmarks are never pass/fail on timing.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::arch::{apic, call, doorbell, timer};
use percore_kernel::measure::percentile;
use percore_kernel::time::cycles_to_ns;
use percore_kernel::{Kernel, println};

use crate::harness::{Kind, Test};

/// This file's benchmarks (run by `cargo xtask bench`, never by `test`).
pub const TESTS: &[Test] = &[
    Test::new("bench_smp", Kind::Bench, bench_smp),
    Test::new("bench_reactor", Kind::Bench, bench_reactor),
];

const ROUND_TRIPS: usize = 10_000;
const TIMER_SHOTS: usize = 200;

/// Median and 99th percentile of `samples` (sorted in place).
fn percentiles(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    (percentile(samples, 50), percentile(samples, 99))
}

fn line(name: &str, value: u64, unit: &str) {
    println!("bench {name} {value} {unit}");
}

pub fn bench_smp(kernel: &Kernel) -> Result<(), String> {
    let cores: Vec<CoreId> = (0..cpu::core_count() as u16).map(CoreId).collect();
    println!(
        "== SMP benchmark: {} cores, {:?} APIC, {:?} timer",
        cores.len(),
        apic::mode(),
        apic::timer_kind()
    );
    ap_startup(kernel);
    for &core in cores.iter().filter(|c| c.0 != 0) {
        ipi_latency(core)?;
    }
    timer_lateness(&cores)
}

fn ap_startup(kernel: &Kernel) {
    println!("AP start-up (from STARTUP IPI)      entered_us  online_us  startups");
    for t in &kernel.machine.smp.timings {
        println!(
            "  core {:>3} (APIC {:>3})              {:>10}  {:>9}  {:>8}",
            t.core,
            t.apic_id,
            cycles_to_ns(t.entered_cycles) / 1000,
            cycles_to_ns(t.online_cycles) / 1000,
            t.startups
        );
    }
    let total_us = cycles_to_ns(kernel.machine.smp.total_cycles) / 1000;
    println!("  total (first INIT to last online): {total_us} us");
    for t in &kernel.machine.smp.timings {
        line(
            &format!("ap_startup_core{}_us", t.core),
            cycles_to_ns(t.online_cycles) / 1000,
            "us",
        );
    }
    line("ap_startup_total_us", total_us, "us");
}

static REMOTE_SEEN: [AtomicU64; ROUND_TRIPS] = [const { AtomicU64::new(0) }; ROUND_TRIPS];

/// On the remote core: answer each IPI from core 0 with an IPI back,
/// recording when it saw each one.
fn echo(rounds: usize) -> u64 {
    let Some(stats) = cpu::stats(cpu::core_id()) else {
        return 0;
    };
    cpu::enable_interrupts();
    let first = stats.ipis_received.load(Ordering::Acquire);
    for (seen, slot) in (first..).zip(REMOTE_SEEN.iter().take(rounds)) {
        while stats.ipis_received.load(Ordering::Acquire) == seen {
            core::hint::spin_loop();
        }
        slot.store(clock::cycles(), Ordering::Relaxed);
        doorbell::ring(CoreId(0));
    }
    cpu::disable_interrupts();
    0
}

fn ipi_latency(core: CoreId) -> Result<(), String> {
    let stats = cpu::stats(cpu::core_id()).ok_or("no counters for this core")?;
    let pending = call::post(core, echo, ROUND_TRIPS, 60_000).map_err(|e| format!("{e:?}"))?;
    // Let the echo loop start before the first timed IPI.
    let settle = clock::cycles() + clock::hz() / 100;
    while clock::cycles() < settle {
        core::hint::spin_loop();
    }
    let mut one_way = Vec::with_capacity(ROUND_TRIPS);
    let mut round_trip = Vec::with_capacity(ROUND_TRIPS);
    let first = stats.ipis_received.load(Ordering::Acquire);
    for (seen, slot) in (first..).zip(REMOTE_SEEN.iter()) {
        let sent = clock::cycles();
        doorbell::ring(core);
        while stats.ipis_received.load(Ordering::Acquire) == seen {
            core::hint::spin_loop();
        }
        let back = clock::cycles();
        round_trip.push(back - sent);
        one_way.push(slot.load(Ordering::Relaxed).saturating_sub(sent));
    }
    pending.wait(60_000).map_err(|e| format!("{e:?}"))?;
    let (ow50, ow99) = percentiles(&mut one_way);
    let (rt50, rt99) = percentiles(&mut round_trip);
    println!(
        "IPI 0<->{core} over {ROUND_TRIPS} round trips: one-way p50 {ow50} cycles ({} ns) p99 {ow99} cycles ({} ns); round trip p50 {rt50} cycles ({} ns) p99 {rt99} cycles ({} ns)",
        cycles_to_ns(ow50),
        cycles_to_ns(ow99),
        cycles_to_ns(rt50),
        cycles_to_ns(rt99)
    );
    for (name, value) in [
        ("one_way_p50", ow50),
        ("one_way_p99", ow99),
        ("round_trip_p50", rt50),
        ("round_trip_p99", rt99),
    ] {
        line(&format!("ipi_0_{core}_{name}_cycles"), value, "cycles");
        line(
            &format!("ipi_0_{core}_{name}_ns"),
            cycles_to_ns(value),
            "ns",
        );
    }
    Ok(())
}

/// On one core: `count` one-shots 200..1000 µs ahead; lateness in ns,
/// packed into the shared sample buffer from `offset`.
fn timer_shots(offset: usize) -> u64 {
    let Some(stats) = cpu::stats(cpu::core_id()) else {
        return 0;
    };
    cpu::disable_interrupts();
    for i in 0..TIMER_SHOTS {
        let fired_before = stats.timer_interrupts.load(Ordering::Acquire);
        let ahead_us = 200 + (i as u64 * 7919) % 800;
        let deadline = clock::cycles() + clock::hz() / 1_000_000 * ahead_us;
        timer::arm(deadline);
        while stats.timer_interrupts.load(Ordering::Acquire) == fired_before {
            cpu::wait_for_interrupt();
        }
        let fired = apic::last_timer_fired();
        LATENESS[offset + i].store(
            cycles_to_ns(fired.saturating_sub(deadline)),
            Ordering::Relaxed,
        );
    }
    0
}

static LATENESS: [AtomicU64; TIMER_SHOTS * 64] = [const { AtomicU64::new(0) }; TIMER_SHOTS * 64];

fn timer_lateness(cores: &[CoreId]) -> Result<(), String> {
    let mut all = Vec::new();
    for (i, &core) in cores.iter().enumerate().take(64) {
        call::run_on(core, timer_shots, i * TIMER_SHOTS, 60_000).map_err(|e| format!("{e:?}"))?;
        let mut samples: Vec<u64> = LATENESS[i * TIMER_SHOTS..(i + 1) * TIMER_SHOTS]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        all.extend_from_slice(&samples);
        let (p50, p99) = percentiles(&mut samples);
        println!(
            "APIC timer lateness core {core}: p50 {p50} ns p99 {p99} ns ({TIMER_SHOTS} one-shots)"
        );
    }
    let (p50, p99) = percentiles(&mut all);
    println!("APIC timer lateness all cores: p50 {p50} ns p99 {p99} ns");
    line("timer_lateness_p50_ns", p50, "ns");
    line("timer_lateness_p99_ns", p99, "ns");
    Ok(())
}

/// Median and 99th percentile in ns of TSC-cycle samples, plus cycles.
fn report_cycles(name: &str, samples: &mut [u64]) {
    let (p50, p99) = percentiles(samples);
    println!(
        "{name:<34} p50 {p50:>9} cycles {:>9} ns   p99 {p99:>9} cycles {:>9} ns",
        cycles_to_ns(p50),
        cycles_to_ns(p99)
    );
    line(&format!("{name}_p50_cycles"), p50, "cycles");
    line(&format!("{name}_p50_ns"), cycles_to_ns(p50), "ns");
    line(&format!("{name}_p99_cycles"), p99, "cycles");
    line(&format!("{name}_p99_ns"), cycles_to_ns(p99), "ns");
}

/// Round trips in clock cycles of `count` Ping/Pongs to `core`, one after
/// another.
fn ping_samples(core: CoreId, count: usize) -> Result<Vec<u64>, String> {
    percore_kernel::reactor::block_on(percore_kernel::ipc::probe::round_trips(core, count))
        .map_err(|e| format!("ping core {core}: {e:?}"))
}

fn total_doorbells() -> u64 {
    (0..cpu::online_cores() as u16)
        .filter_map(|c| cpu::stats(CoreId(c)))
        .map(|s| s.doorbells.load(Ordering::Relaxed))
        .sum()
}

/// `cargo xtask bench reactor`: the reactor's costs, measured in the kernel.
pub fn bench_reactor(_: &Kernel) -> Result<(), String> {
    use percore_kernel::ipc::channel::{self, channel};
    use percore_kernel::reactor::{
        SpawnOptions, block_on, priority, sleep, spawn_on, spawn_with, yield_now,
    };
    crate::reactor::start_reactors();
    let cores = cpu::online_cores();
    let far = CoreId(cores as u16 - 1);
    println!("== reactor benchmark: {cores} cores, round trips between core 0 and core {far}");

    // Cross-core message round trip through channels.
    let mut rtt = block_on(channel::round_trips(far, 10_000));
    report_cycles("cross_core_round_trip", &mut rtt);

    // The bus's own round trip: Ping answered by the far core's reactor (no
    // task there), the figure to compare with `cargo bench -p percore-proto`.
    if cores > 1 {
        let mut bus_rtt = ping_samples(far, 10_000)?;
        report_cycles("bus_round_trip", &mut bus_rtt);
        // The same with both cores in poll mode (they never halt, so no
        // doorbell IPI is needed): what is left is the rings and one
        // reactor turn on each side.
        percore_kernel::reactor::set_busy_poll(CoreId(0), true);
        percore_kernel::reactor::set_busy_poll(far, true);
        let doorbells_before = total_doorbells();
        let mut polled_rtt = ping_samples(far, 10_000)?;
        let doorbells = total_doorbells() - doorbells_before;
        percore_kernel::reactor::set_busy_poll(CoreId(0), false);
        percore_kernel::reactor::set_busy_poll(far, false);
        report_cycles("bus_round_trip_poll_mode", &mut polled_rtt);
        println!("  ({doorbells} doorbell IPIs over those 10000 round trips)");
    }

    // One-way throughput, unbatched (u64 per message) and batched (32 per message).
    const MESSAGES: u64 = 200_000;
    let doorbells_before = total_doorbells();
    let (unbatched_cycles, batched_cycles) = block_on(async move {
        let (mut tx, mut rx) = channel::<u64>(1024).expect("capacity");
        let sink = spawn_on(far, priority(40), async move {
            let mut n = 0u64;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        });
        let t0 = clock::cycles();
        for i in 0..MESSAGES {
            tx.send(i).await;
        }
        drop(tx);
        let got = sink.await;
        let unbatched = clock::cycles() - t0;
        assert_eq!(got, MESSAGES, "all messages arrive");
        let (mut tx, mut rx) = channel::<[u64; 32]>(64).expect("capacity");
        let sink = spawn_on(far, priority(40), async move {
            let mut n = 0u64;
            while rx.recv().await.is_some() {
                n += 32;
            }
            n
        });
        let t0 = clock::cycles();
        for i in 0..MESSAGES / 32 {
            tx.send([i; 32]).await;
        }
        drop(tx);
        let got = sink.await;
        (unbatched, (clock::cycles() - t0, got))
    });
    let doorbells = total_doorbells() - doorbells_before;
    let per_s = |cycles: u64, n: u64| n * clock::hz() / cycles.max(1);
    let unbatched = per_s(unbatched_cycles, MESSAGES);
    let batched = per_s(batched_cycles.0, batched_cycles.1);
    println!("cross_core_throughput_unbatched    {unbatched} msgs/s");
    println!("cross_core_throughput_batched32    {batched} msgs/s");
    line("cross_core_throughput_unbatched", unbatched, "msgs/s");
    line("cross_core_throughput_batched32", batched, "msgs/s");
    let messages = MESSAGES + batched_cycles.1 / 32;
    let ipis_per_million = doorbells * 1_000_000 / messages.max(1);
    println!(
        "doorbell IPIs per 1M messages      {ipis_per_million} ({doorbells} IPIs for {messages} channel messages)"
    );
    line("ipis_per_1m_messages", ipis_per_million, "count");

    // Spawn to first poll, local and remote.
    for (name, target) in [
        ("spawn_to_first_poll_local", CoreId(0)),
        ("spawn_to_first_poll_remote", far),
    ] {
        let mut samples = block_on(async move {
            let mut samples = Vec::with_capacity(1000);
            for _ in 0..1000 {
                let spawned_at = clock::cycles();
                samples.push(
                    spawn_on(
                        target,
                        priority(40),
                        async move { clock::cycles() - spawned_at },
                    )
                    .await,
                );
            }
            samples
        });
        report_cycles(name, &mut samples);
    }

    // Task switch: two tasks on one core yielding to each other. They are
    // pinned: two ready tasks on one core with others asleep is exactly what
    // the balancer moves apart, which would measure two yield loops on two
    // cores instead.
    const SWITCHES: u64 = 100_000;
    let pinned = SpawnOptions::new(priority(50)).pinned();
    let cycles = block_on(async move {
        let t0 = clock::cycles();
        let a = spawn_with(CoreId(0), pinned, async {
            for _ in 0..SWITCHES / 2 {
                yield_now().await;
            }
        });
        let b = spawn_with(CoreId(0), pinned, async {
            for _ in 0..SWITCHES / 2 {
                yield_now().await;
            }
        });
        a.await;
        b.await;
        clock::cycles() - t0
    });
    let switch = cycles / SWITCHES;
    println!(
        "task_switch                        {switch} cycles {} ns",
        cycles_to_ns(switch)
    );
    line("task_switch_cycles", switch, "cycles");
    line("task_switch_ns", cycles_to_ns(switch), "ns");

    // Timer lateness of reactor sleeps.
    let mut lateness = block_on(async {
        let mut samples = Vec::with_capacity(500);
        for i in 0..500u64 {
            let ahead = 100_000 + (i * 7919 % 1_900) * 1000;
            let due = percore_kernel::time::Clock::now().0 + ahead;
            sleep(core::time::Duration::from_nanos(ahead)).await;
            samples.push(percore_kernel::time::Clock::now().0.saturating_sub(due));
        }
        samples
    });
    let (p50, p99) = percentiles(&mut lateness);
    println!("timer_lateness                     p50 {p50} ns p99 {p99} ns");
    line("reactor_timer_lateness_p50_ns", p50, "ns");
    line("reactor_timer_lateness_p99_ns", p99, "ns");

    // Timer interrupts per second on idle cores (0 for a tickless kernel).
    let irqs = || -> u64 {
        (0..cores as u16)
            .filter_map(|c| cpu::stats(CoreId(c)))
            .map(|s| s.timer_interrupts.load(Ordering::Acquire))
            .sum()
    };
    let before = irqs();
    let end = clock::cycles() + clock::hz();
    while clock::cycles() < end {
        core::hint::spin_loop();
    }
    let per_s = (irqs() - before) / cores as u64;
    println!("idle_timer_irqs_per_s              {per_s} per core");
    line("idle_timer_irqs_per_s", per_s, "count");
    cyclictest_under_load(cores);
    Ok(())
}

/// cyclictest's measurement (the Linux guest's `cyclictest` figure): a task
/// on core 0 wakes every 100 µs on an absolute deadline, 100k times, while a
/// busy task holds every other core; p99.99 and max of the lateness.
fn cyclictest_under_load(cores: usize) {
    use percore_kernel::reactor::{block_on, priority, sleep_until, spawn_on};
    use percore_kernel::time::{Clock, Instant};
    const WAKEUPS: usize = 100_000;
    const INTERVAL_NS: u64 = 100_000;
    static STOP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    STOP.store(false, Ordering::Relaxed);
    let mut lateness = block_on(async move {
        let hogs: Vec<_> = (1..cores)
            .map(|core| {
                spawn_on(CoreId(core as u16), priority(40), async {
                    while !STOP.load(Ordering::Relaxed) {
                        core::hint::spin_loop();
                    }
                })
            })
            .collect();
        let mut samples = Vec::with_capacity(WAKEUPS);
        let mut next = Clock::now().0;
        for _ in 0..WAKEUPS {
            next += INTERVAL_NS;
            sleep_until(Instant(next)).await;
            let late = Clock::now().0.saturating_sub(next);
            samples.push(late);
            // Periods missed during a stall are skipped, as cyclictest does:
            // one stall is one late wake-up, not a run of them.
            next += late / INTERVAL_NS * INTERVAL_NS;
        }
        STOP.store(true, Ordering::Relaxed);
        for hog in hogs {
            hog.await;
        }
        samples
    });
    lateness.sort_unstable();
    let p9999 = lateness[(lateness.len() - 1) * 9999 / 10_000];
    let max = lateness[lateness.len() - 1];
    println!(
        "cyclictest (100 us, {WAKEUPS} wake-ups, other cores busy): p99.99 {p9999} ns max {max} ns"
    );
    line("cyclictest_p9999_ns", p9999, "ns");
    line("cyclictest_max_ns", max, "ns");
}
