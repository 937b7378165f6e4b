//! The protocol's `Ping` / `Pong`: a latency probe answered by the other
//! core's reactor itself (no task runs there), so its round trip is the
//! bus's own: ring, doorbell, one reactor turn on each side. The console's
//! `ping` command and `cargo xtask bench reactor` use it; the host-side
//! `cargo bench -p percore-proto` measures the same round trip between two
//! threads.

use alloc::collections::BTreeMap;
use core::future::poll_fn;
use core::sync::atomic::Ordering;
use core::task::{Poll, Waker};

use percore_proto::Message;

use super::{Reactor, bus, reactor, this};
use crate::arch::x86_64::cpu_local::CoreId;
use crate::arch::x86_64::tsc;

/// Why a probe could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingError {
    /// There is no such core (or it has no reactor).
    NoSuchCore(CoreId),
    /// A core does not ping itself (there is no ring to itself).
    ToSelf,
    /// The core has halted.
    Halted(CoreId),
}

/// Probes waiting for their `Pong`, by sequence number.
#[derive(Default)]
pub(super) struct Probes {
    next_seq: u64,
    waiting: BTreeMap<u64, Probe>,
}

#[derive(Default)]
struct Probe {
    round_trip: Option<u64>,
    waker: Option<Waker>,
}

/// Sends `core` a `Ping` and waits for its `Pong`; returns the round trip
/// in TSC cycles.
pub async fn ping(core: CoreId) -> Result<u64, PingError> {
    let target = reactor(core).ok_or(PingError::NoSuchCore(core))?;
    if target.is_parked() {
        return Err(PingError::Halted(core));
    }
    let origin = this();
    if origin.core == core {
        return Err(PingError::ToSelf);
    }
    let seq = {
        let mut probes = origin.probes.lock();
        let seq = probes.next_seq;
        probes.next_seq += 1;
        probes.waiting.insert(seq, Probe::default());
        seq
    };
    // A probe abandoned before its Pong (the future dropped) leaves no entry.
    let _forget = Forget { origin, seq };
    let sent_at = tsc::rdtsc();
    origin.send(core, bus::Letter::Other(Message::Ping { seq, sent_at }));
    // The answer comes back to `origin`, wherever this task runs by then.
    Ok(poll_fn(|cx| {
        let mut probes = origin.probes.lock();
        let Some(probe) = probes.waiting.get_mut(&seq) else {
            return Poll::Ready(0); // unreachable: only this future removes it
        };
        match probe.round_trip {
            Some(cycles) => {
                probes.waiting.remove(&seq);
                Poll::Ready(cycles)
            }
            None => {
                probe.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await)
}

/// Removes a probe's entry when its future ends, answered or not.
struct Forget {
    origin: &'static Reactor,
    seq: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.origin.probes.lock().waiting.remove(&self.seq);
    }
}

/// The reactor's handling of `Ping` (answer at once) and `Pong` (complete
/// the probe).
pub(super) fn on_message(reactor: &Reactor, from: CoreId, message: Message) {
    // Counted before answering or waking, so whoever sees the probe
    // complete also sees it counted.
    reactor.stats.probes.fetch_add(1, Ordering::Relaxed);
    match message {
        Message::Ping { seq, sent_at } => {
            reactor.send(from, bus::Letter::Other(Message::Pong { seq, sent_at }))
        }
        Message::Pong { seq, sent_at } => {
            let round_trip = tsc::rdtsc().saturating_sub(sent_at);
            let waker = {
                let mut probes = reactor.probes.lock();
                match probes.waiting.get_mut(&seq) {
                    Some(probe) => {
                        probe.round_trip = Some(round_trip);
                        probe.waker.take()
                    }
                    None => {
                        log::warn!("reactor: pong {seq} from core {from} matches no probe");
                        None
                    }
                }
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        _ => {}
    }
}
