//! The intercore bus as the reactor uses it (each reactor holds its core's
//! `percore_proto::Endpoint`): `percore_proto`'s N x N matrix
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

use percore_proto::{Bus, Endpoint};

/// Slots per ring (per ordered core pair).
pub const RING_CAPACITY: usize = 256;

/// Builds the ring matrix for `cores` cores; element i goes to core i.
pub fn create(cores: usize) -> Vec<Endpoint> {
    Bus::new(cores, RING_CAPACITY).expect("bus for the online cores")
}
