//! Tests of the per-core readiness queues: console input read on another
//! core than the one its interrupt goes to, and software event sources
//! owned by each core in turn.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::reactor::{block_on, priority, sleep, spawn_on, spawn_with};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, of_core, pinned, start_reactors};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "reactor_console_reader_on_another_core",
        Kind::Normal,
        console_reader_on_another_core,
    ),
    Test::new(
        "reactor_readiness_edges_reach_other_cores",
        Kind::Normal,
        readiness_edges_reach_other_cores,
    ),
];

/// A console reader on the last core: its registration is made in core 0's
/// readiness queue through a `Register` message; bytes received through
/// IRQ 4 on core 0 (UART loopback) reach it; dropping it deregisters.
pub fn console_reader_on_another_core(_: &Kernel) -> Result<(), String> {
    use percore_kernel::console;
    use percore_kernel::drivers::uart;
    start_reactors();
    let last = CoreId(cores() - 1);
    let registrations = || of_core(CoreId(0), |s| s.registrations.load(Ordering::SeqCst) as u64);
    let before = registrations();
    let reader = spawn_with(last, pinned(), async {
        let mut input = uart::reader().map_err(|e| format!("{e:?}"))?;
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(input.next_byte().await);
        }
        Ok::<_, String>((got, cpu::core_id()))
    });
    // Give the registration time to arrive; bytes sent before it would
    // still be read (the reader checks the buffer after registering).
    block_on(sleep(Duration::from_millis(5)));
    console::with_uart(|port| {
        // Loopback, as in com1_interrupt_routed.
        port.set_loopback(true);
        let _ = core::fmt::Write::write_str(port, "abc");
    });
    let deadline = clock::cycles() + clock::hz() * 5;
    while !reader.is_finished() && clock::cycles() < deadline {
        block_on(sleep(Duration::from_millis(1)));
    }
    console::with_uart(|port| port.set_loopback(false));
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
    let deadline = clock::cycles() + clock::hz();
    while registrations() != before && clock::cycles() < deadline {
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
            let deadline = clock::cycles() + clock::hz() * 5;
            while registered.load(Ordering::SeqCst) == 0 && clock::cycles() < deadline {
                sleep(Duration::from_micros(200)).await;
            }
            for i in 0..RAISES {
                if readiness::raise(source, Ready::READABLE) != 1 {
                    return Err(format!(
                        "source of core {owner}: raise {i} found no registration"
                    ));
                }
                let deadline = clock::cycles() + clock::hz() * 2;
                while ACKS.load(Ordering::SeqCst) <= i && clock::cycles() < deadline {
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
