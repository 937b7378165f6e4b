//! Tests of the engine's own protocol messages beyond spawn/wake/timer:
//! `Join` (a joiner on another core), the inbound ring depth accounting,
//! and `Stop` (an orderly stop of the other cores, which runs last).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::Poll;
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::ipc::channel;
use percore_kernel::ipc::port::{self, PortError};
use percore_kernel::reactor::{self, block_on, priority, sleep, spawn_on, spawn_with, stop};

use crate::harness::{Kind, Test};
use crate::reactor::{busy_us, cores, of_core, pinned, start_reactors, total};

/// This file's tests (`Stop` last: it leaves one core running).
pub const TESTS: &[Test] = &[
    Test::new("reactor_join_across_cores", Kind::Normal, join_across_cores),
    Test::new(
        "reactor_ring_depth_seen_by_busy_core",
        Kind::Normal,
        ring_depth_seen_by_busy_core,
    ),
    Test::new(
        "reactor_halt_parks_other_cores",
        Kind::Normal,
        halt_parks_other_cores,
    )
    .last(),
];

/// For every ordered pair of cores (a, b), a task on `a` joins a task on `b`
/// that finishes only after the joiner has polled its handle: the wake-up
/// must travel as exactly one `Join` message to `a`.
pub fn join_across_cores(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let n = cores();
    // A wake-up of an earlier test's joiner may still be in flight (a task
    // that finished just as its joiner found it done): let it land first.
    block_on(sleep(Duration::from_millis(10)));
    let before = total(|s| s.joins_in.load(Ordering::SeqCst));
    // The joiners report through a channel, not their own join handles, so
    // that the only joins are the ones under test.
    let (report, mut reports) =
        channel::channel::<Result<(), String>>(1024).map_err(|e| format!("{e:?}"))?;
    for (a, b) in (0..n).flat_map(|a| (0..n).map(move |b| (a, b))) {
        let mut report = report.clone();
        spawn_with(CoreId(a), pinned(), async move {
            let outcome = async move {
                let Ok((mut go, mut wait)) = channel::channel::<()>(1) else {
                    return Err(String::from("channel"));
                };
                let mut joined = spawn_with(CoreId(b), pinned(), async move {
                    let _ = wait.recv().await;
                    (a * 100 + b, cpu::core_id().0)
                });
                // Poll the handle once, so the joiner is registered (on core a)
                // before the task can finish.
                let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut joined).poll(cx))).await;
                if first.is_ready() {
                    return Err(format!("task on core {b} finished before it was released"));
                }
                go.send(()).await;
                match joined.await {
                    (value, ran_on) if value == a * 100 + b && ran_on == b => Ok(()),
                    other => Err(format!("joined {other:?} from core {b} on core {a}")),
                }
            }
            .await;
            report.send(outcome).await;
        });
    }
    drop(report);
    block_on(async {
        for _ in 0..n * n {
            match reports.recv().await {
                Some(outcome) => outcome?,
                None => return Err(String::from("a joiner ended without reporting")),
            }
        }
        Ok::<(), String>(())
    })?;
    // A joiner that found its task already done on its second poll reports
    // without waiting for the Join message, which may still be in flight:
    // let those land (bounded) before counting.
    let expected = u64::from(n) * u64::from(n - 1);
    let joins = || total(|s| s.joins_in.load(Ordering::SeqCst)) - before;
    let deadline = clock::cycles() + clock::hz();
    while joins() < expected && clock::cycles() < deadline {
        block_on(sleep(Duration::from_millis(1)));
    }
    let joins = joins();
    if joins != expected {
        return Err(format!(
            "{joins} Join messages for {expected} cross-core joins"
        ));
    }
    Ok(())
}

static SENT: AtomicUsize = AtomicUsize::new(0);
static BUSY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// While the last core is busy in one task (not draining its rings), every
/// other core sends it 50 port values: the reactor's ring depth, measured
/// when it drains, shows them all waiting.
pub fn ring_depth_seen_by_busy_core(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let n = cores();
    if n < 2 {
        return Ok(()); // no rings on one core
    }
    let last = CoreId(n - 1);
    // Earlier tests may have left a deep mark: start from zero.
    if let Some(r) = reactor::reactor(last) {
        r.stats.ring_depth_max.store(0, Ordering::SeqCst);
    }
    let rx = block_on(spawn_on(last, priority(32), async { port::open(10, 1024) }))
        .map_err(|e| format!("open: {e:?}"))?;
    SENT.store(0, Ordering::SeqCst);
    BUSY.store(false, Ordering::SeqCst);
    let busy = spawn_with(last, pinned(), async move {
        BUSY.store(true, Ordering::SeqCst);
        let deadline = clock::cycles() + clock::hz() * 5;
        while SENT.load(Ordering::SeqCst) < (n - 1) as usize && clock::cycles() < deadline {
            busy_us(100);
        }
        rx
    });
    // Send only once the last core is inside the busy task (not draining).
    let deadline = clock::cycles() + clock::hz() * 5;
    while !BUSY.load(Ordering::SeqCst) && clock::cycles() < deadline {
        core::hint::spin_loop();
    }
    let senders: Vec<_> = (0..n - 1)
        .map(|from| {
            spawn_with(CoreId(from), pinned(), async move {
                for v in 0..50 {
                    port::try_send(last, 10, v).map_err(|e| format!("{e:?}"))?;
                }
                SENT.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            })
        })
        .collect();
    let mut rx = block_on(async {
        for sender in senders {
            sender.await?;
        }
        Ok::<_, String>(busy.await)
    })?;
    let received = block_on(spawn_on(last, priority(32), async move {
        let mut count = 0;
        while count < 50 * (n - 1) {
            rx.recv().await;
            count += 1;
        }
        count
    }));
    let depth = of_core(last, |s| s.ring_depth_max.load(Ordering::SeqCst) as u64);
    if received != 50 * (n - 1) || depth < 50 * u64::from(n - 1) {
        return Err(format!(
            "received {received}, deepest inbound ring depth seen {depth}"
        ));
    }
    Ok(())
}

static TICKS: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];

/// The console's `halt`, minus the machine exit: every other core gets the
/// broadcast `Halt`, parks and says so; their work stops (a ticking task on
/// each stops ticking), and messages to them are refused with a clear error.
/// Runs last: it leaves only this core running.
pub fn halt_parks_other_cores(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let n = cores();
    let me = cpu::core_id();
    for core in (0..n).filter(|&c| c != me.0) {
        spawn_with(CoreId(core), pinned(), async move {
            loop {
                TICKS[core as usize % 64].fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(1)).await;
            }
        });
    }
    block_on(sleep(Duration::from_millis(20)));
    let report = block_on(stop::stop_other_cores(Duration::from_secs(2)));
    if report.asked != (n - 1) as usize || report.stopped != report.asked {
        return Err(format!("halt: {report:?} on {n} cores"));
    }
    let ticks = || {
        TICKS
            .iter()
            .map(|t| t.load(Ordering::SeqCst))
            .collect::<Vec<_>>()
    };
    let before = ticks();
    busy_us(20_000);
    let after = ticks();
    for core in (0..n).filter(|&c| c != me.0) {
        let stopped = cpu::is_stopped(CoreId(core));
        let parked = reactor::reactor(CoreId(core)).is_some_and(|r| r.is_stopped());
        if !stopped || !parked || before[core as usize] == 0 {
            return Err(format!(
                "core {core}: stopped {stopped}, parked {parked}, ticked {}",
                before[core as usize]
            ));
        }
        match port::try_send(CoreId(core), 7, 1) {
            Err(PortError::Stopped(c)) if c == CoreId(core) => {}
            other => return Err(format!("send to halted core {core}: {other:?}")),
        }
    }
    if before != after {
        return Err(format!(
            "halted cores still ran tasks: {before:?} -> {after:?}"
        ));
    }
    // The remaining core still works, and a spawn aimed at a halted core
    // runs here instead of being lost.
    let v = block_on(reactor::spawn(priority(32), async { 6 * 7 }));
    if v != 42 {
        return Err(String::from("this core stopped working after the halt"));
    }
    if n > 1 {
        let halted = CoreId((me.0 + 1) % n);
        let ran_on = block_on(spawn_on(halted, priority(32), async { cpu::core_id() }));
        if ran_on != me {
            return Err(format!(
                "a spawn on halted core {halted} ran on core {ran_on}"
            ));
        }
    }
    Ok(())
}
