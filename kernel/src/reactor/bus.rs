//! The intercore bus as the reactor uses it: `percore_proto`'s N x N matrix
//! of SPSC rings (ring i->j written only by core i, read only by core j)
//! carrying its protocol [`Message`]s, written in place into preallocated
//! ring slots. Objects that travel with a message (a task, a waker, a reply
//! cell) ride as `percore_proto::Word`s, packed by the sending service and
//! taken back by the receiving one; this module never looks inside.
//!
//! A full ring is backpressure: every message goes through the endpoint's
//! per-destination overflow queue (`send_or_queue`) when its ring is full,
//! flushed every turn of the loop, so spawns, wakes and migrations are never
//! lost. `prepare_sleep` refuses to sleep while that queue holds anything.
//!
//! Doorbell: a core about to sleep marks itself sleeping and re-checks its
//! rings; a sender that publishes and then finds the mark set rings its
//! doorbell (see `percore_proto`'s README for why no wake-up is lost). Busy
//! receivers are never interrupted.

use alloc::vec::Vec;

use percore_proto::{Bus as Matrix, Endpoint, Message};

use crate::arch::CoreId;

/// Slots per ring (per ordered core pair).
pub const RING_CAPACITY: usize = 256;

/// One core's end of the bus.
pub struct Bus {
    endpoint: Endpoint,
}

/// Builds the ring matrix for `cores` cores; element i goes to core i.
pub fn create(cores: usize) -> Vec<Bus> {
    Matrix::new(cores, RING_CAPACITY)
        .expect("bus for the online cores")
        .into_iter()
        .map(|endpoint| Bus { endpoint })
        .collect()
}

impl Bus {
    /// Sends `message` to core `to`; returns whether to ring its doorbell.
    /// Never loses the message: a full ring queues it for [`Bus::flush`].
    pub fn send(&mut self, to: CoreId, message: Message) -> bool {
        match self.endpoint.send_or_queue(to, message) {
            Ok(delivery) => delivery.must_ring(),
            Err(error) => {
                // Only a bad destination gets here (a bug): say so loudly.
                // An object travelling with the message is leaked, not freed twice.
                log::error!("bus: cannot send to core {to}: {error:?}");
                false
            }
        }
    }

    /// Moves queued overflow into rings that have room; returns the cores
    /// whose doorbell must be rung.
    pub fn flush(&mut self) -> Vec<CoreId> {
        self.endpoint.flush().iter().collect()
    }

    /// Takes up to `max` messages, fairly over the peers, per-peer in order.
    pub fn drain(&mut self, max: usize, f: impl FnMut(CoreId, Message)) -> usize {
        self.endpoint.drain(max, f)
    }

    /// Sends a payload-free `message` (such as `Stop`) to every other core
    /// through this core's broadcast ring: written once, read in place by
    /// each peer. Returns the cores whose doorbell must be rung, or gives the
    /// message back when the slowest peer is a whole ring behind.
    pub fn broadcast(&mut self, message: Message) -> Result<Vec<CoreId>, Message> {
        match self.endpoint.broadcast(message) {
            Ok(ring) => Ok(ring.iter().collect()),
            Err(_) => Err(message),
        }
    }

    /// Drops what waits in the overflow queue towards `to` (a stopped core);
    /// returns how many messages. Objects inside are leaked, never freed twice.
    pub fn discard_overflow(&mut self, to: CoreId) -> usize {
        self.endpoint.discard_overflow(to)
    }

    /// Messages waiting in this core's inbound rings right now.
    pub fn inbound_depth(&mut self) -> usize {
        self.endpoint.inbound_depth()
    }

    /// About to sleep: false (do not sleep) if a message or own overflow is waiting.
    pub fn prepare_sleep(&mut self) -> bool {
        self.endpoint.prepare_sleep()
    }

    /// Awake again after a sleep.
    pub fn end_sleep(&mut self) {
        self.endpoint.end_sleep();
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> percore_proto::Stats {
        self.endpoint.stats()
    }
}
