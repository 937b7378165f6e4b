//! Orderly stop of the other cores over the intercore bus (the console's
//! `halt`): the initiator broadcasts the protocol's `Halt` through its
//! per-core broadcast ring (written once, read in place by every peer).
//! A core that receives it finishes the message batch it is handling (no
//! task is interrupted mid-poll: messages are handled between polls),
//! stops taking work, cancels its timer, marks itself stopped and parks
//! with interrupts off. The NMI stop of `fatal.rs` stays the path for
//! fatal errors, where a core may be stuck and cannot be asked.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use percore_proto::Message;

use super::{Reactor, bus, reactors, sleep, this};
use crate::arch::x86_64::cpu_local::{self, CoreId};
use crate::arch::x86_64::{halt_forever, lapic};
use crate::time::Clock;

/// What [`halt_other_cores`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaltReport {
    /// Cores asked to stop (every other core that was running).
    pub asked: usize,
    /// Of those, how many confirmed (parked) before the timeout.
    pub stopped: usize,
    /// Tasks that were still alive on the stopped cores (abandoned).
    pub tasks_left: usize,
}

/// Asks every other core to stop and waits up to `timeout` for them to
/// park. The calling core keeps running (it is the one that reports, and
/// then exits or halts the machine).
pub async fn halt_other_cores(timeout: Duration) -> HaltReport {
    let here = this();
    let others: Vec<&Reactor> = reactors()
        .iter()
        .filter(|r| r.core != here.core && !r.is_parked())
        .collect();
    here.broadcast(Message::Halt);
    let deadline = Clock::now().0 + timeout.as_nanos() as u64;
    loop {
        let stopped = others.iter().filter(|r| r.is_parked()).count();
        if stopped == others.len() || Clock::now().0 >= deadline {
            return HaltReport {
                asked: others.len(),
                stopped,
                tasks_left: others
                    .iter()
                    .filter(|r| r.is_parked())
                    .map(|r| r.stats.tasks.load(Ordering::Acquire))
                    .sum(),
            };
        }
        sleep(Duration::from_millis(1)).await;
    }
}

impl Reactor {
    /// Whether this core stopped on a `Halt` message.
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    /// Sends a payload-free message to every other core through this
    /// core's broadcast ring; if the slowest peer is a whole ring behind,
    /// falls back to the direct rings (whose overflow queues never refuse),
    /// so the message is never lost.
    pub(super) fn broadcast(&self, message: Message) {
        let result = self.bus.borrow_mut().broadcast(message);
        match result {
            Ok(ring) => {
                self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
                for to in ring {
                    self.stats.doorbells.fetch_add(1, Ordering::Relaxed);
                    lapic::send_ipi(to, lapic::IPI_VECTOR);
                }
            }
            Err(message) => {
                log::warn!("reactor: broadcast ring full; sending {message:?} core by core");
                for r in reactors().iter().filter(|r| r.core != self.core) {
                    self.send(r.core, bus::Letter::Other(message));
                }
            }
        }
    }

    /// Parks this core for good after a `Halt` message.
    pub(super) fn park(&self) -> ! {
        x86_64::instructions::interrupts::disable();
        lapic::cancel_timer();
        let tasks = self.stats.tasks.load(Ordering::Relaxed);
        let timers = self.stats.timers.load(Ordering::Relaxed);
        log::info!(
            "core {}: halted on request ({tasks} tasks, {timers} timers left)",
            self.core
        );
        self.parked.store(true, Ordering::Release);
        // Senders waiting for room in this core's ports retry and learn
        // that it halted.
        for port in self.ports.read().values() {
            port.wake_senders();
        }
        cpu_local::this_core()
            .stopped
            .store(true, Ordering::Release);
        halt_forever()
    }
}

/// Whether core `core` has parked (messages to it can no longer be acted on).
pub(super) fn parked(core: CoreId) -> bool {
    super::reactor(core).is_some_and(Reactor::is_parked)
}
