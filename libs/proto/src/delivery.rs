//! [`Delivery`] and [`Batch`]: the answer of a send, saying whether the
//! receiver had halted and must be woken with an IPI.
//!
//! The kernel sends the IPIs; the bus only tells it which ones are needed,
//! so a busy core is never interrupted.

/// What a successful send did, and whether the caller must ring the
/// receiver's doorbell (send it an IPI).
///
/// ```
/// use percore_proto::{Bus, CoreId, Delivery, Message};
/// let mut eps = Bus::new(2, 4).unwrap();
/// let d = eps[0].send(CoreId(1), Message::Stop).unwrap();
/// assert_eq!(d, Delivery::Delivered); // core 1 is awake: no IPI
/// assert!(!d.must_ring());
/// ```
#[must_use = "a halted receiver must be sent an IPI when `must_ring()`"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In the receiver's ring; the receiver is awake (or will see it before
    /// halting): no IPI.
    Delivered,
    /// In the receiver's ring, and the receiver had announced that it halts:
    /// send it an IPI now. Exactly one sender is told so per sleep.
    RingDoorbell,
    /// Parked in this core's overflow queue (the ring was full); it enters
    /// the ring on a later [`Endpoint::flush`](crate::Endpoint::flush), which
    /// reports the doorbell then.
    Queued,
}

impl Delivery {
    /// `true` if the caller must send the receiver an IPI.
    ///
    /// ```
    /// use percore_proto::Delivery;
    /// assert!(Delivery::RingDoorbell.must_ring());
    /// assert!(!Delivery::Queued.must_ring());
    /// ```
    pub fn must_ring(self) -> bool {
        self == Delivery::RingDoorbell
    }
}

/// The result of [`Endpoint::send_batch`](crate::Endpoint::send_batch): how
/// many messages (a prefix of the slice) entered the ring, and the doorbell
/// verdict for all of them together.
///
/// ```
/// use percore_proto::{Bus, CoreId, Delivery, Message};
/// let mut eps = Bus::new(2, 2).unwrap();
/// let b = eps[0].send_batch(CoreId(1), &[Message::Stop; 3]).unwrap();
/// assert_eq!(b.sent, 2); // capacity 2: the third is left to the caller
/// assert_eq!(b.delivery, Delivery::Delivered);
/// ```
#[must_use = "a halted receiver must be sent an IPI when `delivery.must_ring()`"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// How many messages from the front of the slice were sent.
    pub sent: usize,
    /// [`Delivery::RingDoorbell`] if the receiver must be sent an IPI.
    pub delivery: Delivery,
}
