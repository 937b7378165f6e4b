//! Tests of ports: `Send` values addressed by `(core, number)`, with
//! backpressure at the sender and clear errors.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, clock};
use percore_kernel::ipc::port::{self, PortError};
use percore_kernel::reactor::{block_on, priority, sleep, spawn_on, spawn_with};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, of_core, pinned, start_reactors};

/// This file's tests.
pub const TESTS: &[Test] = &[Test::new(
    "reactor_ports_by_number",
    Kind::Normal,
    ports_by_number,
)];

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
            spawn_with(CoreId(c as u16), pinned(), async move {
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
                if rx.core() != CoreId(c as u16) || rx.try_recv().is_some() {
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

fn port_errors(n: u16) -> Result<(), String> {
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
    let deadline = clock::cycles() + clock::hz();
    while lost() < 4 && clock::cycles() < deadline {
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
