//! Orderly stop of the other cores over the intercore bus (the shell's
//! `halt`): the initiator broadcasts the protocol's `Stop` through its
//! per-core broadcast ring (written once, read in place by every peer).
//! A core that receives it finishes the message batch it is handling (no
//! task is interrupted mid-poll: messages are handled between polls),
//! stops taking work, cancels its timer, marks itself stopped and halts
//! with interrupts masked. `fatal`'s stop (an NMI) stays the path for fatal
//! errors, where a core may be stuck and cannot be asked.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use percore_proto::Message;

use super::{Reactor, reactors, service, sleep, this};
use crate::arch::{CoreId, cpu, doorbell, timer};
use crate::time::Clock;

/// What [`stop_other_cores`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// Cores asked to stop (every other core that was running).
    pub asked: usize,
    /// Of those, how many confirmed (stopped) before the timeout.
    pub stopped: usize,
    /// Tasks that were still alive on the stopped cores (abandoned).
    pub tasks_left: usize,
}

/// Asks every other core to stop and waits up to `timeout` for them to
/// do so. The calling core keeps running (it is the one that reports, and
/// then exits or halts the machine).
pub async fn stop_other_cores(timeout: Duration) -> StopReport {
    let here = this();
    let others: Vec<&Reactor> = reactors()
        .iter()
        .filter(|r| r.core != here.core && !r.is_stopped())
        .collect();
    broadcast(here, Message::Stop);
    let deadline = Clock::now().0 + timeout.as_nanos() as u64;
    loop {
        let stopped = others.iter().filter(|r| r.is_stopped()).count();
        if stopped == others.len() || Clock::now().0 >= deadline {
            return StopReport {
                asked: others.len(),
                stopped,
                tasks_left: others
                    .iter()
                    .filter(|r| r.is_stopped())
                    .map(|r| r.stats.tasks.load(Ordering::Acquire))
                    .sum(),
            };
        }
        sleep(Duration::from_millis(1)).await;
    }
}

/// Sends a payload-free message to every other core through `from`'s
/// broadcast ring; if the slowest peer is a whole ring behind, falls back
/// to the direct rings (whose overflow queues never refuse), so the message
/// is never lost.
fn broadcast(from: &Reactor, message: Message) {
    let result = from.bus.borrow_mut().broadcast(message);
    match result {
        Ok(ring) => {
            from.stats.messages_out.fetch_add(1, Ordering::Relaxed);
            for to in ring.iter() {
                doorbell::ring(to);
            }
        }
        Err(_) => {
            log::warn!("reactor: broadcast ring full; sending {message:?} core by core");
            for r in reactors().iter().filter(|r| r.core != from.core) {
                from.send(r.core, message);
            }
        }
    }
}

/// Stops this core for good after a `Stop` message.
pub(super) fn stop_this_core(me: &Reactor) -> ! {
    cpu::disable_interrupts();
    timer::cancel();
    let tasks = me.stats.tasks.load(Ordering::Relaxed);
    let timers = me.stats.timers.load(Ordering::Relaxed);
    log::info!(
        "core {}: stopped on request ({tasks} tasks, {timers} timers left)",
        me.core
    );
    me.stopped.store(true, Ordering::Release);
    // Services with tasks waiting on this core (senders waiting for room in
    // its ports) let them retry and learn that it stopped.
    service::core_stopped(me.core);
    cpu::mark_stopped();
    cpu::halt_forever()
}

/// Whether core `core` has stopped (messages to it can no longer be acted on).
pub fn is_stopped(core: CoreId) -> bool {
    super::reactor(core).is_some_and(Reactor::is_stopped)
}
