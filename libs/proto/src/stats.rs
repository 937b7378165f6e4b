//! [`Stats`]: per-endpoint counters. Each endpoint is owned by one core and
//! only that core updates its counters, so they are plain integers, not
//! atomics: counting costs an `add` on the hot path.

/// Counters of one [`Endpoint`](crate::Endpoint) since creation.
///
/// ```
/// use percore_proto::{Bus, CoreId, Message};
/// let mut eps = Bus::new(2, 4).unwrap();
/// let _ = eps[0].send(CoreId(1), Message::Stop).unwrap();
/// assert_eq!(eps[0].stats().sent, 1);
/// eps[1].drain(8, |_, _| {});
/// assert_eq!(eps[1].stats().received, 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages placed into an outbound ring (a broadcast counts once).
    pub sent: u64,
    /// Of `sent`, how many were broadcasts.
    pub broadcast: u64,
    /// Messages taken out of inbound rings and broadcasts by `drain`.
    pub received: u64,
    /// Sends refused with [`SendError::Full`](crate::SendError::Full).
    pub full: u64,
    /// Messages that went into an overflow queue (ever).
    pub overflow_queued: u64,
    /// Messages sitting in the overflow queues right now.
    pub overflow_pending: u64,
    /// The largest `overflow_pending` ever seen: how far memory grew.
    pub overflow_peak: u64,
    /// Doorbells (IPIs) this endpoint told its caller to ring.
    pub doorbells: u64,
}
