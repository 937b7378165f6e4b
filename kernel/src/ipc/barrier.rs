//! Barriers across cores, over the bus (the protocol's `Sync` message).
//!
//! `sync_all_cores(barrier)` is called by one task on every online core; it
//! completes on all of them once all have arrived. Each barrier has a home
//! core (`barrier % cores`) that counts arrivals and sends each waiting core
//! its release. In a `Sync` message, an even `generation` field (2g) is an
//! arrival for round g and an odd one (2g+1) the release of round g, so late
//! traffic of an old round cannot release a new one.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::task::{Poll, Waker};

use percore_proto::Message;

use crate::arch::{CoreId, cpu};
use crate::reactor::{self, PerCore};

/// Per-core barrier state.
#[derive(Default)]
struct Barriers {
    /// Barriers homed here: the round being counted and who has arrived.
    home: BTreeMap<u32, (u32, Vec<CoreId>)>,
    /// Barriers a task of this core waits on: its round, released?, waker.
    waiting: BTreeMap<u32, (u32, bool, Option<Waker>)>,
}

static BARRIERS: PerCore<spin::Mutex<Barriers>> = PerCore::new();

fn barriers(core: CoreId) -> spin::MutexGuard<'static, Barriers> {
    BARRIERS
        .get(core)
        .expect("barriers used on an online core")
        .lock()
}

/// Waits until a task on every online core has called this for `barrier`.
pub async fn sync_all_cores(barrier: u32) {
    let me = cpu::core_id();
    let round = {
        let mut b = barriers(me);
        let entry = b.waiting.entry(barrier).or_insert((0, false, None));
        entry.1 = false;
        entry.0
    };
    let home = CoreId((barrier as usize % cpu::online_cores().max(1)) as u16);
    if home == me {
        on_sync(me, me, barrier, round * 2);
    } else {
        reactor::send(
            home,
            Message::Sync {
                barrier,
                generation: round * 2,
            },
        );
    }
    poll_fn(|cx| {
        let mut b = barriers(me);
        let Some(entry) = b.waiting.get_mut(&barrier) else {
            return Poll::Ready(());
        };
        if entry.1 {
            entry.0 += 1; // next round
            entry.1 = false;
            entry.2 = None;
            return Poll::Ready(());
        }
        entry.2 = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// The reactor's handling of a `Sync` message.
pub(super) fn on_message(from: CoreId, message: Message) {
    if let Message::Sync {
        barrier,
        generation,
    } = message
    {
        on_sync(cpu::core_id(), from, barrier, generation);
    }
}

/// A `Sync` message (or a local arrival at the home core), on core `me`.
fn on_sync(me: CoreId, from: CoreId, barrier: u32, generation: u32) {
    let round = generation / 2;
    if generation % 2 == 1 {
        release_here(me, barrier, round);
        return;
    }
    let released = {
        let mut b = barriers(me);
        let (current, arrived) = b.home.entry(barrier).or_insert((round, Vec::new()));
        if *current != round {
            log::warn!(
                "barrier {barrier}: arrival for round {round} while counting round {current}; ignored"
            );
            return;
        }
        arrived.push(from);
        if arrived.len() < cpu::online_cores() {
            return;
        }
        *current += 1;
        core::mem::take(arrived)
    };
    for core in released {
        if core == me {
            release_here(me, barrier, round);
        } else if reactor::reactor(core).is_some() {
            reactor::send(
                core,
                Message::Sync {
                    barrier,
                    generation: round * 2 + 1,
                },
            );
        }
    }
}

fn release_here(me: CoreId, barrier: u32, round: u32) {
    let waker = {
        let mut b = barriers(me);
        match b.waiting.get_mut(&barrier) {
            Some(entry) if entry.0 == round => {
                entry.1 = true;
                entry.2.take()
            }
            _ => None,
        }
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}
