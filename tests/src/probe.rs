//! Tests of latency probes (`Ping`/`Pong`, answered by the reactor) and of
//! poll mode (cores that never sleep).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::reactor::{block_on, sleep, spawn_with};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, of_core, pinned, start_reactors, total};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("reactor_ping_every_core", Kind::Normal, ping_every_core),
    Test::new(
        "reactor_poll_mode_needs_no_interrupts",
        Kind::Normal,
        poll_mode_needs_no_interrupts,
    ),
];

/// Every core probes every other core 100 times with Ping/Pong (answered
/// by the reactor, no task on the far side); every probe completes, and
/// the error cases are clear.
pub fn ping_every_core(_: &Kernel) -> Result<(), String> {
    use percore_kernel::ipc::probe::{PingError, ping};
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
    use percore_kernel::ipc::probe::ping;
    use percore_kernel::reactor::set_busy_poll;
    start_reactors();
    let n = cores();
    let (me, far) = (CoreId(0), CoreId(n - 1));
    let doorbells = || {
        (0..n)
            .filter_map(|c| cpu::stats(CoreId(c)))
            .map(|s| s.doorbells.load(Ordering::SeqCst))
            .sum::<u64>()
    };
    let halts = |core: CoreId| of_core(core, |s| s.sleeps.load(Ordering::SeqCst));
    let timer_irqs =
        |core: CoreId| cpu::stats(core).map_or(0, |s| s.timer_interrupts.load(Ordering::SeqCst));
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
    let deadline = clock::cycles() + clock::hz();
    while halts(far) == still_polling && clock::cycles() < deadline {
        block_on(sleep(Duration::from_millis(1)));
    }
    if halts(far) == still_polling {
        return Err(format!("core {far} never halted after leaving poll mode"));
    }
    Ok(())
}
