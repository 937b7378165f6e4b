//! The protocol's `Ping` / `Pong`: a latency probe answered by the other
//! core's reactor itself (no task runs there), so its round trip is the
//! bus's own: ring, doorbell, one reactor turn on each side. The shell's
//! `ping` command and `cargo xtask bench reactor` use it ([`round_trips`]);
//! the host-side `cargo bench -p percore-proto` measures the same round
//! trip between two threads.
//!
//! The probe's answer travels back in a `reactor::oneshot`: the `Ping`
//! carries the sender half as its tag, the `Pong` brings it back to the
//! prober's core, which fills it with the round trip.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use percore_proto::{Handle, Message};

use crate::arch::{CoreId, clock, cpu};
use crate::reactor::oneshot::{self, Sender};
use crate::reactor::{self, stop};

/// Why a probe could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingError {
    /// There is no such core (or it has no reactor).
    NoSuchCore(CoreId),
    /// A core does not ping itself (there is no ring to itself).
    ToSelf,
    /// The core has stopped.
    Stopped(CoreId),
}

/// Sends `core` a `Ping` and waits for its `Pong`; returns the round trip
/// in clock cycles.
pub async fn ping(core: CoreId) -> Result<u64, PingError> {
    if reactor::reactor(core).is_none() {
        return Err(PingError::NoSuchCore(core));
    }
    if stop::is_stopped(core) {
        return Err(PingError::Stopped(core));
    }
    let origin = reactor::this();
    if origin.core() == core {
        return Err(PingError::ToSelf);
    }
    let (reply, round_trip) = oneshot::oneshot::<u64>();
    let sent_at = clock::cycles();
    origin.send(
        core,
        Message::Ping {
            seq: Handle::new(reply).0,
            sent_at,
        },
    );
    // The answer comes back to `origin`, wherever this task runs by then.
    // No answer at all only if the far core stopped before answering.
    round_trip.await.ok_or(PingError::Stopped(core))
}

/// `count` probes to `core`, one after the other: their round trips in
/// clock cycles, in order, or the error that ended them.
pub async fn round_trips(core: CoreId, count: usize) -> Result<Vec<u64>, PingError> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        samples.push(ping(core).await?);
    }
    Ok(samples)
}

/// The reactor's handling of `Ping` (answer at once) and `Pong` (complete
/// the probe).
pub(super) fn on_message(from: CoreId, message: Message) {
    let me = reactor::this();
    // Counted before answering or waking, so whoever sees the probe
    // complete also sees it counted.
    me.stats.probes.fetch_add(1, Ordering::Relaxed);
    match message {
        Message::Ping { seq, sent_at } => me.send(from, Message::Pong { seq, sent_at }),
        Message::Pong { seq, sent_at } => {
            let round_trip = clock::cycles().saturating_sub(sent_at);
            // SAFETY: `seq` was packed by `ping` on this core from a
            // `Sender<u64>` and comes back once, in this `Pong`.
            let reply: Sender<u64> = unsafe { Handle(seq).take() };
            reply.send(round_trip);
        }
        other => log::warn!(
            "probe: unexpected {other:?} from core {from} on core {}",
            cpu::core_id()
        ),
    }
}
