//! One function per figure, each printing `bench NAME VALUE UNIT` lines with
//! the names and units of percore's in-kernel benchmarks
//! (`tests/src/bench.rs`), so `cargo xtask bench compare` can pair them.
//! Threads stand in for percore's tasks: the measuring one on vCPU 0, its
//! peer on the last vCPU (percore's core 0 and its "far" core).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::ring::{Wait, channel};
use crate::sys;

type Figure = fn() -> Result<(), String>;

/// Every figure, by subcommand name, in the order `all` runs them (but
/// for [`NOT_IN_ALL`]).
pub const FIGURES: &[(&str, Figure)] = &[
    ("boot", boot),
    ("round-trip-poll", round_trip_poll),
    ("round-trip-sleep", round_trip_sleep),
    ("throughput", throughput),
    ("task-switch", task_switch),
    ("spawn", spawn),
    ("timer-sleep", timer_sleep),
    ("timerfd", timerfd),
    ("null-syscall", null_syscall),
    ("idle-irqs", idle_irqs),
    ("cyclictest", cyclictest),
    ("disk", crate::disk::disk),
    ("user", crate::user::user),
    ("user-first", crate::user::user_first),
    ("serve", crate::serve::serve),
];

/// Figures `all` leaves out: `boot` means something only as userspace's
/// first program, `disk` needs a machine with a disk, `user` is
/// `bench compare user`'s and `user-first` is its exec'd child, and
/// `serve` (the network benchmark's servers) runs until the machine stops.
pub const NOT_IN_ALL: [&str; 5] = ["boot", "disk", "user", "user-first", "serve"];

const ROUND_TRIPS: usize = 10_000;
const MESSAGES: u64 = 200_000;
const SPAWNS: usize = 1000;
const TIMER_SHOTS: usize = 500;
const CYCLIC_WAKEUPS: usize = 100_000;
const CYCLIC_INTERVAL_NS: u64 = 100_000;

fn line(name: &str, value: u64, unit: &str) {
    println!("bench {name} {value} {unit}");
}

/// The sample at quantile `parts / whole` of `samples` (sorted in place).
fn quantile(samples: &mut [u64], parts: usize, whole: usize) -> u64 {
    samples.sort_unstable();
    samples
        .get(samples.len().saturating_sub(1) * parts / whole)
        .copied()
        .unwrap_or(0)
}

/// `NAME_p50_ns` and `NAME_p99_ns`.
fn p50_p99(name: &str, samples: &mut [u64]) {
    line(&format!("{name}_p50_ns"), quantile(samples, 50, 100), "ns");
    line(&format!("{name}_p99_ns"), quantile(samples, 99, 100), "ns");
}

/// The peer's vCPU: the last one (as percore's far core), or None on one vCPU.
fn far_cpu() -> Option<usize> {
    let cpus = sys::cpus();
    (cpus > 1).then_some(cpus - 1)
}

fn join<T>(handle: std::thread::JoinHandle<Result<T, String>>) -> Result<T, String> {
    handle
        .join()
        .map_err(|_| String::from("a benchmark thread panicked"))?
}

/// `boot_us`: time from the kernel's start to this, the first userspace
/// program (the analogue of percore's `boot_us` on its ready line).
fn boot() -> Result<(), String> {
    line("boot_us", sys::boottime_ns() / 1000, "us");
    Ok(())
}

/// Round trips between vCPU 0 and the far vCPU over two rings.
fn round_trips(wait: Wait, cpu: usize, count: usize) -> Result<Vec<u64>, String> {
    let (mut to_far, mut at_far) = channel::<u64>(64);
    let (mut back, mut at_home) = channel::<u64>(64);
    sys::pin(0)?;
    let echo = std::thread::spawn(move || {
        sys::pin(cpu)?;
        for _ in 0..count + 100 {
            let v = at_far.recv(wait);
            back.send(v, wait);
        }
        Ok(())
    });
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + 100 {
        let t0 = sys::now_ns();
        to_far.send(i as u64, wait);
        at_home.recv(wait);
        // The first 100 warm the caches and the scheduler up.
        if i >= 100 {
            samples.push(sys::now_ns() - t0);
        }
    }
    join(echo)?;
    Ok(samples)
}

/// Busy-polling threads: percore's `bus_round_trip_poll_mode`.
fn round_trip_poll() -> Result<(), String> {
    let Some(far) = far_cpu() else { return Ok(()) };
    p50_p99(
        "bus_round_trip_poll_mode",
        &mut round_trips(Wait::Spin, far, ROUND_TRIPS)?,
    );
    Ok(())
}

/// Threads that sleep on a futex when their ring is empty: percore's halting
/// `bus_round_trip` (a doorbell IPI wakes the far core).
fn round_trip_sleep() -> Result<(), String> {
    let Some(far) = far_cpu() else { return Ok(()) };
    p50_p99(
        "bus_round_trip",
        &mut round_trips(Wait::Sleep, far, ROUND_TRIPS)?,
    );
    Ok(())
}

/// Sends `count` messages of `T` to a consumer on `cpu`; returns ns taken.
fn stream<T: Copy + Send + 'static>(
    cpu: usize,
    capacity: usize,
    count: u64,
    value: T,
) -> Result<u64, String> {
    let (mut tx, mut rx) = channel::<T>(capacity);
    let sink = std::thread::spawn(move || {
        sys::pin(cpu)?;
        for _ in 0..count {
            rx.recv(Wait::Sleep);
        }
        Ok(())
    });
    let t0 = sys::now_ns();
    for _ in 0..count {
        tx.send(value, Wait::Sleep);
    }
    join(sink)?;
    Ok(sys::now_ns() - t0)
}

/// One-way throughput to the far vCPU, one u64 per message and 32 per
/// message, both sides sleeping when they cannot go on; and the IPIs
/// (rescheduling and function-call interrupts) that cost per 1M messages.
fn throughput() -> Result<(), String> {
    let Some(far) = far_cpu() else { return Ok(()) };
    sys::pin(0)?;
    let ipis_before = sys::interrupts(&["RES", "CAL"])?;
    let unbatched_ns = stream(far, 1024, MESSAGES, 0u64)?;
    let batched_ns = stream(far, 64, MESSAGES / 32, [0u64; 32])?;
    let ipis = sys::interrupts(&["RES", "CAL"])? - ipis_before;
    let per_s = |n: u64, ns: u64| n * 1_000_000_000 / ns.max(1);
    line(
        "cross_core_throughput_unbatched",
        per_s(MESSAGES, unbatched_ns),
        "msgs/s",
    );
    line(
        "cross_core_throughput_batched32",
        per_s(MESSAGES, batched_ns),
        "msgs/s",
    );
    let messages = MESSAGES + MESSAGES / 32;
    line("ipis_per_1m_messages", ipis * 1_000_000 / messages, "count");
    Ok(())
}

/// Two threads on vCPU 0 handing a message back and forth, each sleeping in
/// between: every hand-off is one switch (percore's `task_switch`).
fn task_switch() -> Result<(), String> {
    const ROUNDS: usize = 20_000;
    let t0 = sys::now_ns();
    round_trips(Wait::Sleep, 0, ROUNDS)?;
    line(
        "task_switch_ns",
        (sys::now_ns() - t0) / (2 * (ROUNDS as u64 + 100)),
        "ns",
    );
    Ok(())
}

/// Spawn to first run of a new thread: created by a thread on vCPU 0
/// (local), and on the far vCPU at vCPU 0's request through a ring, as
/// percore's `spawn_on` sends a Spawn message to the far core (remote). A new
/// thread inherits its creator's pinning.
fn spawn() -> Result<(), String> {
    sys::pin(0)?;
    let first_run = |spawned_at: u64| std::thread::spawn(move || sys::now_ns() - spawned_at);
    let mut local: Vec<u64> = (0..SPAWNS)
        .map(|_| first_run(sys::now_ns()).join().unwrap_or(u64::MAX))
        .collect();
    p50_p99("spawn_to_first_poll_local", &mut local);
    let Some(far) = far_cpu() else { return Ok(()) };
    let (mut requests, mut at_far) = channel::<u64>(4);
    let (mut answers, mut at_home) = channel::<u64>(4);
    let spawner = std::thread::spawn(move || {
        sys::pin(far)?;
        for _ in 0..SPAWNS {
            let spawned_at = at_far.recv(Wait::Sleep);
            let delay = first_run(spawned_at).join().unwrap_or(u64::MAX);
            answers.send(delay, Wait::Sleep);
        }
        Ok(())
    });
    let mut remote = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        requests.send(sys::now_ns(), Wait::Sleep);
        remote.push(at_home.recv(Wait::Sleep));
    }
    join(spawner)?;
    p50_p99("spawn_to_first_poll_remote", &mut remote);
    Ok(())
}

/// Lateness of 1 ms `clock_nanosleep` sleeps: percore's reactor sleeps.
fn timer_sleep() -> Result<(), String> {
    sys::pin(0)?;
    let mut samples: Vec<u64> = (0..TIMER_SHOTS)
        .map(|_| {
            let due = sys::now_ns() + 1_000_000;
            sys::sleep_until(due);
            sys::now_ns() - due
        })
        .collect();
    p50_p99("reactor_timer_lateness", &mut samples);
    Ok(())
}

/// Lateness of 1 ms one-shot timerfd expiries (read blocks until expiry).
fn timerfd() -> Result<(), String> {
    sys::pin(0)?;
    // SAFETY: timerfd_create has no memory arguments.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, 0) };
    if fd < 0 {
        return Err(format!(
            "timerfd_create: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut samples = Vec::with_capacity(TIMER_SHOTS);
    for _ in 0..TIMER_SHOTS {
        let due = sys::now_ns() + 1_000_000;
        let spec = libc::itimerspec {
            it_interval: sys::timespec(0),
            it_value: sys::timespec(due),
        };
        let mut expirations = 0u64;
        // SAFETY: `spec` is a valid itimerspec, `expirations` 8 writable bytes.
        let armed = unsafe {
            libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) == 0
                && libc::read(fd, (&raw mut expirations).cast(), 8) == 8
        };
        if !armed {
            let error = std::io::Error::last_os_error();
            // SAFETY: fd is ours and closed once.
            unsafe { libc::close(fd) };
            return Err(format!("timerfd: {error}"));
        }
        samples.push(sys::now_ns() - due);
    }
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    p50_p99("timerfd_lateness", &mut samples);
    Ok(())
}

/// `getpid` through `syscall(2)` (no libc caching), p50 over batches of 100.
fn null_syscall() -> Result<(), String> {
    sys::pin(0)?;
    let mut samples: Vec<u64> = (0..2000)
        .map(|_| {
            let t0 = sys::now_ns();
            for _ in 0..100 {
                // SAFETY: getpid takes no arguments and cannot fail.
                std::hint::black_box(unsafe { libc::syscall(libc::SYS_getpid) });
            }
            (sys::now_ns() - t0) / 100
        })
        .collect();
    line("null_syscall_p50_ns", quantile(&mut samples, 50, 100), "ns");
    Ok(())
}

/// Local timer interrupts per second per vCPU over 5 s of idleness.
fn idle_irqs() -> Result<(), String> {
    const SECONDS: u64 = 5;
    let before = sys::interrupts(&["LOC"])?;
    std::thread::sleep(std::time::Duration::from_secs(SECONDS));
    let irqs = sys::interrupts(&["LOC"])? - before;
    line(
        "idle_timer_irqs_per_s",
        irqs / SECONDS / sys::cpus() as u64,
        "count",
    );
    Ok(())
}

/// cyclictest's measurement: a SCHED_FIFO thread on vCPU 0 wakes every
/// 100 µs on an absolute deadline, 100k times, while every other vCPU runs a
/// CPU hog; p99.99 and max of the wake-up lateness.
fn cyclictest() -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (1..sys::cpus())
        .map(|cpu| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                sys::pin(cpu)?;
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                Ok(())
            })
        })
        .collect();
    let measured = (|| -> Result<Vec<u64>, String> {
        sys::pin(0)?;
        sys::set_fifo(95)?;
        let mut samples = Vec::with_capacity(CYCLIC_WAKEUPS);
        let mut next = sys::now_ns();
        for _ in 0..CYCLIC_WAKEUPS {
            next += CYCLIC_INTERVAL_NS;
            sys::sleep_until(next);
            let late = sys::now_ns().saturating_sub(next);
            samples.push(late);
            // Periods missed during a stall are skipped, as cyclictest does:
            // one stall is one late wake-up, not a run of them.
            next += late / CYCLIC_INTERVAL_NS * CYCLIC_INTERVAL_NS;
        }
        Ok(samples)
    })();
    stop.store(true, Ordering::Relaxed);
    for hog in hogs {
        join(hog)?;
    }
    let mut samples = measured?;
    line(
        "cyclictest_p9999_ns",
        quantile(&mut samples, 9999, 10_000),
        "ns",
    );
    line(
        "cyclictest_max_ns",
        samples.last().copied().unwrap_or(0),
        "ns",
    );
    Ok(())
}
