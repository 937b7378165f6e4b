//! Reactor tests (`-smp 4` and the rest of the matrix): tasks across cores,
//! timers, channels, load balancing, tickless idle.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::ipc::{self, barrier, channel};
use percore_kernel::mem::heap;
use percore_kernel::reactor::{
    self, SchedConfig, SpawnOptions, block_on, interval, priority, sleep, spawn, spawn_on,
    spawn_with, yield_now,
};
use percore_kernel::time::{Clock, Instant};

use crate::harness::{Kind, Test};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "reactor_ten_thousand_tasks_joined_elsewhere",
        Kind::Normal,
        ten_thousand_tasks_joined_elsewhere,
    ),
    Test::new(
        "reactor_hundred_thousand_timers",
        Kind::Normal,
        hundred_thousand_timers,
    ),
    Test::new(
        "reactor_interval_without_drift",
        Kind::Normal,
        interval_without_drift,
    ),
    Test::new(
        "reactor_ping_pong_every_pair",
        Kind::Normal,
        ping_pong_every_pair,
    ),
    Test::new(
        "reactor_channel_backpressure",
        Kind::Normal,
        channel_backpressure,
    ),
    Test::new(
        "reactor_load_balancing_spreads_work",
        Kind::Normal,
        load_balancing_spreads_work,
    ),
    Test::new(
        "reactor_cross_core_messages_do_not_allocate",
        Kind::Normal,
        cross_core_messages_do_not_allocate,
    ),
    Test::new(
        "reactor_unmovable_work_wakes_no_core",
        Kind::Normal,
        unmovable_work_wakes_no_core,
    ),
    Test::new(
        "reactor_tickless_when_idle",
        Kind::Normal,
        tickless_when_idle,
    ),
    Test::new("reactor_console_commands", Kind::Normal, console_commands),
    Test::new("reactor_process_actor", Kind::Normal, process_actor),
    Test::new("reactor_remote_timers", Kind::Normal, remote_timers),
    Test::new(
        "reactor_barrier_across_cores",
        Kind::Normal,
        barrier_across_cores,
    ),
];

static STARTED: AtomicBool = AtomicBool::new(false);

/// Starts the reactors once (the first reactor test or bench to run does it).
pub fn start_reactors() {
    ensure_reactors();
}

/// The kernel's boot configuration chooses each core's discipline.
static KERNEL: spin::Once<SchedConfig> = spin::Once::new();

/// Records the boot configuration before any test starts the reactors.
pub fn configure(kernel: &Kernel) {
    KERNEL.call_once(|| kernel.sched_config());
}

fn ensure_reactors() {
    if !STARTED.swap(true, Ordering::AcqRel) {
        let config: SchedConfig = KERNEL.get().cloned().unwrap_or_default();
        reactor::init(&config);
        ipc::init();
        let deadline = clock::cycles() + clock::hz() * 5;
        while !reactor::all_started() && clock::cycles() < deadline {
            core::hint::spin_loop();
        }
    }
}

pub fn cores() -> u16 {
    cpu::online_cores() as u16
}

/// The sum of a counter over every core's reactor.
pub fn total(counter: impl Fn(&reactor::ReactorStats) -> u64) -> u64 {
    reactor::reactors().iter().map(|r| counter(&r.stats)).sum()
}

/// One core's counter (0 if the core has no reactor).
pub fn of_core(core: CoreId, counter: impl Fn(&reactor::ReactorStats) -> u64) -> u64 {
    reactor::reactor(core).map_or(0, |r| counter(&r.stats))
}

/// Spawn options of a task that must stay where it is put.
pub fn pinned() -> SpawnOptions {
    SpawnOptions::new(priority(32)).pinned()
}

/// 10k tasks spawned across all cores complete; their results are joined
/// by a task on another core than the one that spawned them.
pub fn ten_thousand_tasks_joined_elsewhere(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    let n = cores();
    let joiner = CoreId(n.saturating_sub(1));
    let total = block_on(spawn_on(joiner, priority(32), async move {
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| {
                spawn_on(
                    CoreId((i % u64::from(n)) as u16),
                    priority(32),
                    async move { i * 3 },
                )
            })
            .collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await;
        }
        sum
    }));
    let expected: u64 = (0..10_000u64).map(|i| i * 3).sum();
    if total != expected {
        return Err(format!("joined sum {total}, expected {expected}"));
    }
    Ok(())
}

static FIRED: AtomicU64 = AtomicU64::new(0);
static EARLY: AtomicU64 = AtomicU64::new(0);

/// 100k one-shot timers spread over all cores all fire, none early.
pub fn hundred_thousand_timers(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    FIRED.store(0, Ordering::SeqCst);
    EARLY.store(0, Ordering::SeqCst);
    const TIMERS: u64 = 100_000;
    let n = u64::from(cores());
    let start = Clock::now().0;
    let handles: Vec<_> = (0..n)
        .map(|core| {
            spawn_on(CoreId(core as u16), priority(32), async move {
                let mine: Vec<_> = (0..TIMERS / n + u64::from(core < TIMERS % n))
                    .map(|i| {
                        // Deadlines spread over 1..=200 ms.
                        let deadline = Instant(start + 1_000_000 + (i * 7919 % 200) * 1_000_000);
                        spawn(priority(32), async move {
                            reactor::sleep_until(deadline).await;
                            if Clock::now() < deadline {
                                EARLY.fetch_add(1, Ordering::Relaxed);
                            }
                            FIRED.fetch_add(1, Ordering::Relaxed);
                        })
                    })
                    .collect();
                for handle in mine {
                    handle.await;
                }
            })
        })
        .collect();
    block_on(async {
        for handle in handles {
            handle.await;
        }
    });
    let (fired, early) = (FIRED.load(Ordering::SeqCst), EARLY.load(Ordering::SeqCst));
    percore_kernel::println!(
        "timers: {fired} fired, {early} early, in {} ms",
        (Clock::now().0 - start) / 1_000_000
    );
    if fired != TIMERS || early != 0 {
        return Err(format!("{fired} of {TIMERS} timers fired, {early} early"));
    }
    Ok(())
}

/// An interval fires N times at exact multiples of its period (no drift),
/// never before its due instant.
pub fn interval_without_drift(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    const PERIOD_MS: u64 = 2;
    const TICKS: u64 = 50;
    block_on(async {
        let start = Clock::now().0;
        let mut ticker = interval(Duration::from_millis(PERIOD_MS));
        let mut first = None;
        for n in 0..TICKS {
            let due = ticker.tick().await;
            let now = Clock::now();
            let first_due = *first.get_or_insert(due.0);
            if due.0 != first_due + n * PERIOD_MS * 1_000_000 {
                return Err(format!(
                    "tick {n} due at {} ns, not a multiple of the period",
                    due.0 - first_due
                ));
            }
            if now < due {
                return Err(format!("tick {n} came {} ns early", due.0 - now.0));
            }
        }
        let late = Clock::now()
            .0
            .saturating_sub(start + TICKS * PERIOD_MS * 1_000_000);
        percore_kernel::println!(
            "interval: {TICKS} ticks of {PERIOD_MS} ms, last one late by {} us",
            late / 1000
        );
        Ok(())
    })
}

/// Every ordered pair of cores ping-pongs 10k messages through channels
/// (1k per pair above 4 cores, where 56+ pairs under TCG would take minutes):
/// nothing lost, nothing reordered.
pub fn ping_pong_every_pair(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    let n = cores();
    let rounds: u64 = if n <= 4 { 10_000 } else { 1_000 };
    for a in 0..n {
        for b in (0..n).filter(|&b| b != a) {
            let result = block_on(spawn_on(CoreId(a), priority(40), async move {
                let (mut to_b, mut at_b) = channel::channel::<u64>(64).expect("capacity");
                let (mut to_a, mut at_a) = channel::channel::<u64>(64).expect("capacity");
                let echo = spawn_on(CoreId(b), priority(40), async move {
                    while let Some(value) = at_b.recv().await {
                        to_a.send(value).await;
                    }
                });
                for seq in 0..rounds {
                    to_b.send(seq).await;
                    match at_a.recv().await {
                        Some(got) if got == seq => {}
                        other => {
                            return Err(format!("core {a}->{b}: sent {seq}, got back {other:?}"));
                        }
                    }
                }
                drop(to_b);
                echo.await;
                Ok(())
            }));
            result?;
        }
    }
    percore_kernel::println!(
        "ping-pong: {} pairs x {rounds} round trips, in order",
        n * n.saturating_sub(1)
    );
    Ok(())
}

/// A full channel applies backpressure: `try_send` hands the value back,
/// `send().await` waits, and every value arrives in order.
pub fn channel_backpressure(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    let far = CoreId(cores() - 1);
    block_on(async move {
        let (mut tx, mut rx) = channel::channel::<u64>(4).expect("capacity");
        for i in 0..4 {
            tx.try_send(i)
                .map_err(|e| format!("send {i} into an empty channel: {e:?}"))?;
        }
        match tx.try_send(99) {
            Err(channel::TrySendError::Full(99)) => {}
            other => return Err(format!("full channel accepted a value: {other:?}")),
        }
        let consumer = spawn_on(far, priority(32), async move {
            let mut got = Vec::new();
            while let Some(value) = rx.recv().await {
                got.push(value);
                if got.len() % 100 == 0 {
                    sleep(Duration::from_micros(200)).await; // a slow consumer
                }
            }
            got
        });
        for i in 4..2_000 {
            tx.send(i).await;
        }
        drop(tx);
        let got = consumer.await;
        if got != (0..2_000).collect::<Vec<u64>>() {
            return Err(format!(
                "received {} values, not 0..2000 in order",
                got.len()
            ));
        }
        Ok(())
    })
}

static RAN_ON: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
static PINNED_MOVED: AtomicBool = AtomicBool::new(false);

pub fn busy_us(us: u64) {
    let end = clock::cycles() + clock::hz() / 1_000_000 * us;
    while clock::cycles() < end {
        core::hint::spin_loop();
    }
}

/// 1000 CPU-bound tasks (4 slices each) spawned on core 0 end up spread over
/// every core (each core runs some slices); a pinned task never leaves core 0.
pub fn load_balancing_spreads_work(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    let n = cores() as usize;
    for counter in &RAN_ON {
        counter.store(0, Ordering::SeqCst);
    }
    PINNED_MOVED.store(false, Ordering::SeqCst);
    let handles = block_on(async {
        let mut handles = Vec::new();
        for _ in 0..4 {
            handles.push(spawn_with(
                CoreId(0),
                SpawnOptions::new(priority(32)).pinned(),
                async {
                    for _ in 0..50 {
                        if cpu::core_id() != CoreId(0) {
                            PINNED_MOVED.store(true, Ordering::SeqCst);
                        }
                        busy_us(100);
                        yield_now().await;
                    }
                },
            ));
        }
        handles
    });
    let workers: Vec<_> = block_on(async {
        (0..1000)
            .map(|_| {
                spawn(priority(32), async {
                    for _ in 0..4 {
                        busy_us(50);
                        RAN_ON[cpu::core_id().index()].fetch_add(1, Ordering::Relaxed);
                        yield_now().await;
                    }
                })
            })
            .collect()
    });
    block_on(async {
        for handle in handles {
            handle.await;
        }
        for worker in workers {
            worker.await;
        }
    });
    let counts: Vec<usize> = RAN_ON[..n]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    percore_kernel::println!("balance: 4000 slices of 1000 tasks run per core: {counts:?}");
    if PINNED_MOVED.load(Ordering::SeqCst) {
        return Err(String::from("a pinned task ran on another core"));
    }
    if counts.iter().sum::<usize>() != 4000 {
        return Err(format!(
            "{} of 4000 slices ran",
            counts.iter().sum::<usize>()
        ));
    }
    // Every core must have run part of the burst: without balancing, all of
    // it would run on core 0. (How evenly depends on how the host schedules
    // QEMU's vCPU threads, so no tighter bound is asserted.)
    if counts.contains(&0) {
        return Err(format!("work not spread over all cores: {counts:?}"));
    }
    Ok(())
}

/// Busy work that no other core could take wakes no sleeping core: one
/// movable task yielding in a loop (it keeps every polling batch of its
/// core full, but nothing waits behind it), then two pinned tasks yielding
/// to each other (they wait, but cannot move). Core 0 rings no doorbell to
/// make a sleeping core come asking, and nothing moves. (The balancer once
/// counted any full batch as saturation and woke idle cores about every
/// millisecond each, only to deny their requests.)
/// A stream of channel messages to a task on another core allocates
/// nothing once warm: the turn's inbox, the wake path, the channel and its
/// wait lists are allocated once. The heap counter is global, so work the
/// test does not control counts too (a timer of an earlier test's task
/// boxes its waker, a wake queue grows once): up to 10 of them
/// are tolerated. A path that allocates per message or per wait (a wait
/// list that gave its buffer away on every wake-up made 300 to 700 here)
/// fails.
pub fn cross_core_messages_do_not_allocate(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    if cores() < 2 {
        return Ok(());
    }
    const WARM_UP: u64 = 2_000;
    const COUNTED: u64 = 20_000;
    const ALLOWED: u64 = 10;
    let (allocations, sum) = block_on(async {
        let (mut tx, mut rx) = channel::channel::<u64>(64).expect("capacity");
        let sink = spawn_with(CoreId(1), pinned(), async move {
            let mut sum = 0u64;
            while let Some(value) = rx.recv().await {
                sum += value;
            }
            sum
        });
        for i in 0..WARM_UP {
            tx.send(i).await;
        }
        let before = heap::allocations();
        for i in WARM_UP..WARM_UP + COUNTED {
            tx.send(i).await;
        }
        let allocations = heap::allocations() - before;
        drop(tx);
        (allocations, sink.await)
    });
    let total = WARM_UP + COUNTED;
    if sum != total * (total - 1) / 2 {
        return Err(format!(
            "the receiver summed {sum}, not {}",
            total * (total - 1) / 2
        ));
    }
    percore_kernel::println!("{COUNTED} messages, {allocations} heap allocations anywhere");
    if allocations > ALLOWED {
        return Err(format!(
            "{COUNTED} messages to a task on core 1 made {allocations} heap allocations (at most {ALLOWED} tolerated)"
        ));
    }
    Ok(())
}

pub fn unmovable_work_wakes_no_core(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    if cores() < 2 {
        return Ok(());
    }
    let doorbells = || cpu::stats(CoreId(0)).map_or(0, |s| s.doorbells.load(Ordering::SeqCst));
    let moved = || of_core(CoreId(0), |s| s.migrated_out.load(Ordering::SeqCst));
    // Yields in a loop for 50 ms; returns how many.
    async fn busy() -> u64 {
        let end = clock::cycles() + clock::hz() / 20;
        let mut yields = 0u64;
        while clock::cycles() < end {
            yield_now().await;
            yields += 1;
        }
        yields
    }
    // Let wake-ups of earlier tests settle.
    block_on(sleep(Duration::from_millis(20)));
    for (what, options, tasks) in [
        ("one movable task", SpawnOptions::new(priority(32)), 1),
        ("two pinned tasks", pinned(), 2),
    ] {
        let (bells, out) = (doorbells(), moved());
        let handles: Vec<_> = (0..tasks)
            .map(|_| spawn_with(CoreId(0), options, busy()))
            .collect();
        let yields: u64 = block_on(async {
            let mut sum = 0;
            for handle in handles {
                sum += handle.await;
            }
            sum
        });
        let (bells, out) = (doorbells() - bells, moved() - out);
        percore_kernel::println!(
            "{what}: {yields} yields in 50 ms, {bells} doorbells, {out} moved"
        );
        if bells != 0 || out != 0 {
            return Err(format!(
                "{what} yielding in a loop ({yields} yields) made core 0 ring {bells} doorbells and move {out} tasks"
            ));
        }
    }
    Ok(())
}

/// An idle kernel takes no timer interrupts: over one second with nothing
/// to do, no core's APIC timer fires.
pub fn tickless_when_idle(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    // Let timers left by earlier tests drain first.
    let settle = clock::cycles() + clock::hz() * 2;
    while reactor::reactors()
        .iter()
        .any(|r| r.stats.timers.load(Ordering::Relaxed) > 0)
        && clock::cycles() < settle
    {
        core::hint::spin_loop();
    }
    let count = || -> Vec<u64> {
        (0..cpu::core_count() as u16)
            .map(|c| {
                cpu::stats(CoreId(c)).map_or(0, |s| s.timer_interrupts.load(Ordering::Acquire))
            })
            .collect()
    };
    let before = count();
    // Core 0 waits by spinning (arming no timer); the others sit in their reactors.
    busy_us(1_000_000);
    let after = count();
    let fired: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    percore_kernel::println!(
        "tickless: {fired} timer interrupts over 1 s idle on {} cores",
        after.len()
    );
    if fired != 0 {
        return Err(format!(
            "{fired} timer interrupts while idle ({before:?} -> {after:?})"
        ));
    }
    Ok(())
}

/// The console commands answer with what they promise (the serial input path
/// itself is covered by `com1_interrupt_routed`).
pub fn console_commands(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    let n = cores() as usize;
    let run = |command: &'static str| block_on(percore_kernel::shell::commands::execute(command));
    let cores_out = run("cores");
    if !cores_out.starts_with("core  apic") || cores_out.lines().count() != n + 1 {
        return Err(format!("`cores` printed:\n{cores_out}"));
    }
    for command in ["tasks", "timers"] {
        let out = run(command);
        if out.lines().count() != n + 1 {
            return Err(format!("`{command}` printed:\n{out}"));
        }
    }
    let ping = run("ping");
    let probed = |line: &str| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() == 4 && fields.iter().all(|f| f.parse::<u64>().is_ok()) && fields[1] == "100"
    };
    if !ping.starts_with("core  probes")
        || ping.lines().count() != n
        || !ping.lines().skip(1).all(probed)
    {
        return Err(format!("`ping` printed:\n{ping}"));
    }
    if run("poll 0 on") != "poll: core 0 now polls (never halts)"
        || run("poll 0 off") != "poll: core 0 now halts when idle"
        || run("poll 99 on") != "poll: no core 99"
        || run("poll x") != "usage: poll CORE on|off"
    {
        return Err(String::from("`poll` answered wrongly"));
    }
    let demo = run("spawn-demo");
    if !demo.starts_with("spawn-demo: 100 tasks") {
        return Err(format!("`spawn-demo` printed: {demo}"));
    }
    if !run("help").contains("spawn-demo") || !run("bogus").starts_with("unknown command `bogus`") {
        return Err(String::from(
            "`help` or an unknown command answered wrongly",
        ));
    }
    Ok(())
}

/// A counter process, for the actor test: adds, and fails on overflow.
struct Counter(u64);

#[derive(Debug, PartialEq, Eq)]
struct Overflow(u64);

impl percore_kernel::ipc::actor::Actor for Counter {
    type Message = u64;
    type Error = Overflow;

    fn send(self, add: u64) -> Result<Counter, Overflow> {
        self.0.checked_add(add).map(Counter).ok_or(Overflow(self.0))
    }
}

/// A process on the last core takes 1000 messages from tasks on every core,
/// in order per sender; the final state is joined; an error transition
/// stops a process and reaches its joiner.
pub fn process_actor(_: &Kernel) -> Result<(), String> {
    use percore_kernel::ipc::actor::spawn_actor;
    ensure_reactors();
    let n = cores();
    let home = CoreId(n - 1);
    let (mailbox, handle) =
        spawn_actor(home, priority(32), Counter(0), 16).map_err(|e| format!("{e:?}"))?;
    let senders: Vec<_> = (0..n)
        .map(|core| {
            let mut mailbox = mailbox.clone();
            spawn_on(CoreId(core), priority(32), async move {
                for i in 0..1000 / u64::from(n) + u64::from(core < 1000 % n) {
                    mailbox.send(i + 1).await;
                }
            })
        })
        .collect();
    drop(mailbox);
    let result = block_on(async move {
        for sender in senders {
            sender.await;
        }
        handle.await
    });
    let expected: u64 = (0..n)
        .map(|core| (1..=1000 / u64::from(n) + u64::from(core < 1000 % n)).sum::<u64>())
        .sum();
    match result {
        Ok(Counter(total)) if total == expected => {}
        Ok(Counter(total)) => return Err(format!("process counted {total}, expected {expected}")),
        Err(e) => return Err(format!("process failed: {e:?}")),
    }
    let (mut mailbox, handle) =
        spawn_actor(home, priority(32), Counter(u64::MAX - 1), 4).map_err(|e| format!("{e:?}"))?;
    let outcome = block_on(async move {
        mailbox.send(5).await;
        handle.await
    });
    match outcome {
        Err(Overflow(at)) if at == u64::MAX - 1 => Ok(()),
        other => Err(format!(
            "overflowing transition gave {:?}",
            other.map(|c| c.0)
        )),
    }
}

/// Timers armed on another core's wheel (the protocol's `Timer` message)
/// wake their task back on its own core, never early.
pub fn remote_timers(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    let n = cores();
    let early = block_on(async move {
        let mut early = 0u32;
        for i in 0..300u64 {
            let on = CoreId((i % u64::from(n)) as u16);
            let deadline = Instant(Clock::now().0 + 200_000 + (i * 7919 % 2_000) * 1000);
            reactor::sleep_on(on, deadline).await;
            if Clock::now() < deadline {
                early += 1;
            }
        }
        early
    });
    if early != 0 {
        return Err(format!("{early} of 300 remote timers completed early"));
    }
    Ok(())
}

static ARRIVED: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
static PASSED_EARLY: AtomicBool = AtomicBool::new(false);

/// Three rounds of a barrier across every core (the protocol's `Sync`
/// message): no core leaves a round before every core has arrived.
pub fn barrier_across_cores(_: &Kernel) -> Result<(), String> {
    ensure_reactors();
    let n = cores() as usize;
    for arrived in &ARRIVED {
        arrived.store(0, Ordering::SeqCst);
    }
    PASSED_EARLY.store(false, Ordering::SeqCst);
    let handles: Vec<_> = (0..n as u16)
        .map(|core| {
            spawn_on(CoreId(core), priority(32), async move {
                for (round, arrived) in ARRIVED.iter().enumerate() {
                    // Stagger the arrivals so that the barrier has something to wait for.
                    sleep(Duration::from_micros(
                        100 * u64::from(core) * (round as u64 + 1),
                    ))
                    .await;
                    arrived.fetch_add(1, Ordering::SeqCst);
                    barrier::sync_all_cores(42).await;
                    if arrived.load(Ordering::SeqCst) != n {
                        PASSED_EARLY.store(true, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    block_on(async {
        for handle in handles {
            handle.await;
        }
    });
    if PASSED_EARLY.load(Ordering::SeqCst) {
        return Err(String::from(
            "a core left a barrier round before every core arrived",
        ));
    }
    Ok(())
}
