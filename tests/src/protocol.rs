//! Tests of the intercore protocol's messages beyond spawn/wake/timer/sync:
//! `Join` (a joiner on another core), `Send` (ports by number), the ring
//! depth accounting, and `Halt` (an orderly stop of the other cores).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::Poll;
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::x86_64::cpu_local::{self, CoreId};
use percore_kernel::arch::x86_64::tsc;
use percore_kernel::reactor::port::{self, PortError};
use percore_kernel::reactor::{
    self, SpawnOptions, block_on, channel, priority, sleep, spawn_on, spawn_with,
};

use crate::reactor::{busy_us, cores, start_reactors};

fn total(counter: impl Fn(&reactor::ReactorStats) -> u64) -> u64 {
    reactor::reactors().iter().map(|r| counter(&r.stats)).sum()
}

/// One core's counter (0 if the core has no reactor).
fn of_core(core: CoreId, counter: impl Fn(&reactor::ReactorStats) -> u64) -> u64 {
    reactor::reactor(core).map_or(0, |r| counter(&r.stats))
}

fn pinned() -> SpawnOptions {
    SpawnOptions::new(priority(32)).pinned()
}

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
                    (a * 100 + b, cpu_local::core_id().0)
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
    let joins = total(|s| s.joins_in.load(Ordering::SeqCst)) - before;
    let expected = u64::from(n) * u64::from(n - 1);
    if joins != expected {
        return Err(format!(
            "{joins} Join messages for {expected} cross-core joins"
        ));
    }
    Ok(())
}

const PER_SENDER: u64 = 500;

/// Every core opens port 7 (room for 64 values); every core sends 500
/// numbered values to every core's port 7, waiting when it is full. Every
/// value arrives once, in order per sender. Then the error cases.
pub fn ports_by_number(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let n = cores();
    let opened: Vec<_> = (0..n)
        .map(|c| spawn_with(CoreId(c), pinned(), async { port::open(7, 64) }))
        .collect();
    let receivers = block_on(async {
        let mut receivers = Vec::new();
        for handle in opened {
            receivers.push(handle.await.map_err(|e| format!("open: {e:?}"))?);
        }
        Ok::<_, String>(receivers)
    })?;
    let readers: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(c, mut rx)| {
            spawn_with(CoreId(c as u32), pinned(), async move {
                let mut next = alloc::vec![0u64; n as usize];
                for _ in 0..u64::from(n) * PER_SENDER {
                    let value = rx.recv().await;
                    let (from, seq) = ((value >> 32) as usize, value & 0xffff_ffff);
                    match next.get_mut(from) {
                        Some(expected) if *expected == seq => *expected += 1,
                        _ => {
                            return Err(format!(
                                "port on core {c}: got {from}/{seq}, out of order"
                            ));
                        }
                    }
                }
                if rx.core() != CoreId(c as u32) || rx.try_recv().is_some() {
                    return Err(format!("port on core {c}: extra values"));
                }
                Ok(())
            })
        })
        .collect();
    // Pinned: order is promised per sending core, so a sender must not move.
    let senders: Vec<_> = (0..n)
        .map(|from| {
            spawn_with(CoreId(from), pinned(), async move {
                for seq in 0..PER_SENDER {
                    for to in 0..n {
                        let value = (u64::from(from) << 32) | seq;
                        port::send(CoreId(to), 7, value)
                            .await
                            .map_err(|e| format!("send {from}->{to}: {e:?}"))?;
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    block_on(async {
        for sender in senders {
            sender.await?;
        }
        for reader in readers {
            reader.await?;
        }
        Ok::<(), String>(())
    })?;
    port_errors(n)
}

fn port_errors(n: u32) -> Result<(), String> {
    let last = CoreId(n - 1);
    let check = |what: &str, got: Result<(), PortError>, want: Result<(), PortError>| {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what}: got {got:?}, expected {want:?}"))
        }
    };
    check(
        "never opened",
        port::try_send(CoreId(0), 99, 1),
        Err(PortError::NoSuchPort {
            core: CoreId(0),
            number: 99,
        }),
    )?;
    check(
        "no such core",
        port::try_send(CoreId(n), 7, 1),
        Err(PortError::NoSuchCore(CoreId(n))),
    )?;
    let first = block_on(spawn_on(last, priority(32), async { port::open(9, 4) }))
        .map_err(|e| format!("open 9: {e:?}"))?;
    let twice = block_on(spawn_on(last, priority(32), async {
        port::open(9, 4).map(|_| ())
    }));
    check("opened twice", twice, Err(PortError::InUse(9)))?;
    check(
        "capacity 0",
        port::open(8, 0).map(|_| ()),
        Err(PortError::BadCapacity(0)),
    )?;
    for v in 0..4 {
        check("room left", port::try_send(last, 9, v), Ok(()))?;
    }
    check(
        "full",
        port::try_send(last, 9, 77),
        Err(PortError::Full(77)),
    )?;
    let undeliverable = || of_core(last, |s| s.undeliverable.load(Ordering::SeqCst));
    let lost_before = undeliverable();
    drop(first);
    check(
        "after close",
        port::try_send(last, 9, 5),
        Err(PortError::NoSuchPort {
            core: last,
            number: 9,
        }),
    )?;
    // The four unread values are reported, whether they were queued or still
    // in flight when the port closed.
    let lost = || undeliverable() - lost_before;
    let deadline = tsc::rdtsc() + tsc::hz();
    while lost() < 4 && tsc::rdtsc() < deadline {
        block_on(sleep(Duration::from_millis(1)));
    }
    if lost() != 4 {
        return Err(format!(
            "closing with 4 unread values reported {} lost",
            lost()
        ));
    }
    // Re-opened, the port starts empty and takes four values again.
    let again = block_on(spawn_on(last, priority(32), async { port::open(9, 4) }))
        .map_err(|e| format!("re-open 9: {e:?}"))?;
    for v in 0..4 {
        check("room after re-open", port::try_send(last, 9, v), Ok(()))?;
    }
    drop(again);
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
        let deadline = tsc::rdtsc() + tsc::hz() * 5;
        while SENT.load(Ordering::SeqCst) < (n - 1) as usize && tsc::rdtsc() < deadline {
            busy_us(100);
        }
        rx
    });
    // Send only once the last core is inside the busy task (not draining).
    let deadline = tsc::rdtsc() + tsc::hz() * 5;
    while !BUSY.load(Ordering::SeqCst) && tsc::rdtsc() < deadline {
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
    let me = cpu_local::core_id();
    for core in (0..n).filter(|&c| c != me.0) {
        spawn_with(CoreId(core), pinned(), async move {
            loop {
                TICKS[core as usize % 64].fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(1)).await;
            }
        });
    }
    block_on(sleep(Duration::from_millis(20)));
    let report = block_on(reactor::halt::halt_other_cores(Duration::from_secs(2)));
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
        let stopped = cpu_local::core(CoreId(core))
            .and_then(|s| s.local())
            .is_some_and(|l| l.stopped.load(Ordering::SeqCst));
        let parked = reactor::reactor(CoreId(core)).is_some_and(|r| r.is_parked());
        if !stopped || !parked || before[core as usize] == 0 {
            return Err(format!(
                "core {core}: stopped {stopped}, parked {parked}, ticked {}",
                before[core as usize]
            ));
        }
        match port::try_send(CoreId(core), 7, 1) {
            Err(PortError::Halted(c)) if c == CoreId(core) => {}
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
        let ran_on = block_on(spawn_on(halted, priority(32), async {
            cpu_local::core_id()
        }));
        if ran_on != me {
            return Err(format!(
                "a spawn on halted core {halted} ran on core {ran_on}"
            ));
        }
    }
    Ok(())
}

/// A console reader on the last core: its registration is made in core 0's
/// readiness queue through a `Register` message; bytes received through
/// IRQ 4 on core 0 (UART loopback) reach it; dropping it deregisters.
pub fn console_reader_on_another_core(_: &Kernel) -> Result<(), String> {
    use percore_kernel::console;
    start_reactors();
    let last = CoreId(cores() - 1);
    let registrations = || of_core(CoreId(0), |s| s.registrations.load(Ordering::SeqCst) as u64);
    let before = registrations();
    let reader = spawn_with(last, pinned(), async {
        let mut input = console::Reader::new().map_err(|e| format!("{e:?}"))?;
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(input.next_byte().await);
        }
        Ok::<_, String>((got, cpu_local::core_id()))
    });
    // Give the registration time to arrive; bytes sent before it would
    // still be read (the reader checks the buffer after registering).
    block_on(sleep(Duration::from_millis(5)));
    const MCR: u16 = 0x3F8 + 4;
    console::with_uart(|port| {
        // SAFETY: UART loopback (keeping DTR, RTS, OUT2), as in com1_interrupt_routed.
        unsafe { x86_64::instructions::port::Port::<u8>::new(MCR).write(0x1B) };
        for &b in b"abc" {
            port.send_raw(b);
        }
    });
    let deadline = tsc::rdtsc() + tsc::hz() * 5;
    while !reader.is_finished() && tsc::rdtsc() < deadline {
        block_on(sleep(Duration::from_millis(1)));
    }
    console::with_uart(|_| {
        // SAFETY: back to normal operation (DTR, RTS, OUT2).
        unsafe { x86_64::instructions::port::Port::<u8>::new(MCR).write(0x0B) };
    });
    if !reader.is_finished() {
        return Err(format!(
            "the reader on core {last} did not get 3 bytes (registrations on core 0: {})",
            registrations()
        ));
    }
    let (got, ran_on) = block_on(reader)?;
    if got != b"abc" || ran_on != last {
        return Err(format!("read {got:?} on core {ran_on}"));
    }
    let deadline = tsc::rdtsc() + tsc::hz();
    while registrations() != before && tsc::rdtsc() < deadline {
        block_on(sleep(Duration::from_millis(1)));
    }
    if registrations() != before {
        return Err(format!(
            "the dropped reader is still registered ({} registrations, {before} before)",
            registrations()
        ));
    }
    Ok(())
}

static ACKS: AtomicUsize = AtomicUsize::new(0);
const RAISES: usize = 50;

/// For every core as the owner of a software event source: a task on the
/// next core registers, and core 0 raises the source 50 times, each after
/// the previous edge was seen. Every edge reaches the task — including when
/// the owner has halted in between, which takes the poll's IPI unpark.
pub fn readiness_edges_reach_other_cores(_: &Kernel) -> Result<(), String> {
    use percore_kernel::reactor::readiness::{self, Readiness};
    use percore_poll::{Interest, Ready};
    start_reactors();
    let n = cores();
    for owner in 0..n {
        let source = readiness::define_source(CoreId(owner)).map_err(|e| format!("{e:?}"))?;
        ACKS.store(0, Ordering::SeqCst);
        let registered = AtomicUsize::new(0);
        let registered: &'static AtomicUsize =
            alloc::boxed::Box::leak(alloc::boxed::Box::new(registered));
        let subscriber = spawn_on(CoreId((owner + 1) % n), priority(32), async move {
            let mut r =
                Readiness::register(source, Interest::READABLE).map_err(|e| format!("{e:?}"))?;
            r.ready().await; // in place
            registered.store(1, Ordering::SeqCst);
            for _ in 0..RAISES {
                let ready = r.ready().await;
                if !ready.contains(Ready::READABLE) {
                    return Err(format!("event without READABLE: {ready:?}"));
                }
                ACKS.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), String>(())
        });
        block_on(async {
            let deadline = tsc::rdtsc() + tsc::hz() * 5;
            while registered.load(Ordering::SeqCst) == 0 && tsc::rdtsc() < deadline {
                sleep(Duration::from_micros(200)).await;
            }
            for i in 0..RAISES {
                if readiness::raise(source, Ready::READABLE) != 1 {
                    return Err(format!(
                        "source of core {owner}: raise {i} found no registration"
                    ));
                }
                let deadline = tsc::rdtsc() + tsc::hz() * 2;
                while ACKS.load(Ordering::SeqCst) <= i && tsc::rdtsc() < deadline {
                    sleep(Duration::from_micros(200)).await;
                }
                if ACKS.load(Ordering::SeqCst) <= i {
                    return Err(format!(
                        "source of core {owner}: edge {i} never reached its task"
                    ));
                }
            }
            subscriber.await
        })?;
        if ACKS.load(Ordering::SeqCst) != RAISES {
            return Err(format!(
                "{} events for {RAISES} edges",
                ACKS.load(Ordering::SeqCst)
            ));
        }
    }
    Ok(())
}

/// Every core probes every other core 100 times with Ping/Pong (answered
/// by the reactor, no task on the far side); every probe completes, and
/// the error cases are clear.
pub fn ping_every_core(_: &Kernel) -> Result<(), String> {
    use percore_kernel::reactor::ping::{PingError, ping};
    start_reactors();
    let n = cores();
    let before = total(|s| s.probes.load(Ordering::SeqCst));
    let probers: Vec<_> = (0..n)
        .map(|from| {
            spawn_with(CoreId(from), pinned(), async move {
                for to in (0..n).filter(|&to| to != from) {
                    for _ in 0..100 {
                        ping(CoreId(to))
                            .await
                            .map_err(|e| format!("{from}->{to}: {e:?}"))?;
                    }
                }
                match ping(CoreId(from)).await {
                    Err(PingError::ToSelf) => {}
                    other => return Err(format!("ping to self: {other:?}")),
                }
                match ping(CoreId(n)).await {
                    Err(PingError::NoSuchCore(c)) if c == CoreId(n) => Ok(()),
                    other => Err(format!("ping to a missing core: {other:?}")),
                }
            })
        })
        .collect();
    block_on(async {
        for prober in probers {
            prober.await?;
        }
        Ok::<(), String>(())
    })?;
    // Each probe is counted twice: the Ping where it is answered, the Pong
    // where it completes.
    let probes = total(|s| s.probes.load(Ordering::SeqCst)) - before;
    let expected = 2 * 100 * u64::from(n) * u64::from(n - 1);
    if probes != expected {
        return Err(format!(
            "{probes} Ping/Pong messages handled, expected {expected}"
        ));
    }
    Ok(())
}

/// Poll mode: two cores that never halt exchange 1000 Ping/Pongs without a
/// single doorbell IPI, and a sleep on a polling core completes without a
/// timer interrupt; switched back, the core halts again when idle.
pub fn poll_mode_needs_no_interrupts(_: &Kernel) -> Result<(), String> {
    use percore_kernel::reactor::ping::ping;
    use percore_kernel::reactor::set_busy_poll;
    start_reactors();
    let n = cores();
    let (me, far) = (CoreId(0), CoreId(n - 1));
    let doorbells = || total(|s| s.doorbells.load(Ordering::SeqCst));
    let halts = |core: CoreId| of_core(core, |s| s.halts.load(Ordering::SeqCst));
    let timer_irqs = |core: CoreId| {
        cpu_local::core(core)
            .and_then(|s| s.local())
            .map_or(0, |l| l.stats.timer_interrupts.load(Ordering::SeqCst))
    };
    if !set_busy_poll(me, true) || !set_busy_poll(far, true) || set_busy_poll(CoreId(n), true) {
        return Err(String::from(
            "set_busy_poll accepted a missing core or refused a real one",
        ));
    }
    // Warm up: once a Ping has been answered, the far core has woken from
    // any halt it was in and is polling (the kick may take a while under TCG).
    if n > 1 {
        block_on(async {
            for _ in 0..10 {
                ping(far).await.map_err(|e| format!("{e:?}"))?;
            }
            Ok::<(), String>(())
        })?;
    }
    block_on(sleep(Duration::from_millis(1)));
    let (bells, far_halts, irqs) = (doorbells(), halts(far), timer_irqs(me));
    if n > 1 {
        block_on(async {
            for _ in 0..1000 {
                ping(far).await.map_err(|e| format!("{e:?}"))?;
            }
            Ok::<(), String>(())
        })?;
    }
    block_on(sleep(Duration::from_millis(5)));
    let still_polling = halts(far);
    let result = (
        doorbells() - bells,
        still_polling - far_halts,
        timer_irqs(me) - irqs,
    );
    set_busy_poll(me, false);
    set_busy_poll(far, false);
    if result != (0, 0, 0) {
        return Err(format!(
            "in poll mode: {} doorbells, {} halts of core {far}, {} timer interrupts on core 0",
            result.0, result.1, result.2
        ));
    }
    // Counted from before poll mode ended (it may halt, and stay halted,
    // right after being switched back).
    let deadline = tsc::rdtsc() + tsc::hz();
    while halts(far) == still_polling && tsc::rdtsc() < deadline {
        block_on(sleep(Duration::from_millis(1)));
    }
    if halts(far) == still_polling {
        return Err(format!("core {far} never halted after leaving poll mode"));
    }
    Ok(())
}
