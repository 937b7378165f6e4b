//! [`Sender`] and [`Receiver`]: the one API every ring flavour implements,
//! so code (and benchmarks) can swap a CAS ring for a fan-in of SPSC rings.

use crate::error::{PopError, PushError};
use crate::wait::WaitStrategy;

/// The sending side of any ring.
///
/// ```
/// use percore_ring::{Receiver, Sender, mpsc, wait::BusySpin};
/// fn send_all(tx: &mut impl Sender<u32>) {
///     for i in 0..3 { tx.push(i, &mut BusySpin); }
/// }
/// let (mut tx, mut rx) = mpsc::cas::channel(4).unwrap();
/// send_all(&mut tx);
/// assert_eq!(rx.pop(&mut BusySpin), 0);
/// ```
pub trait Sender<T> {
    /// Pushes `value`, or hands it back if the ring is full. Never blocks.
    fn try_push(&mut self, value: T) -> Result<(), PushError<T>>;

    /// Pushes `value`, calling `wait` while the ring is full (backpressure).
    fn push<W: WaitStrategy>(&mut self, value: T, wait: &mut W) {
        let mut slot = Some(value);
        wait.wait_until(|| match self.try_push(slot.take()?) {
            Ok(()) => Some(()),
            Err(PushError::Full(v)) => {
                slot = Some(v);
                None
            }
        });
    }
}

/// The receiving side of any ring.
///
/// ```
/// use percore_ring::{Receiver, Sender, spsc, wait::BusySpin};
/// let (mut tx, mut rx) = spsc::channel(2).unwrap();
/// Sender::try_push(&mut tx, 5u8).unwrap();
/// assert_eq!(Receiver::try_pop(&mut rx), Ok(5));
/// ```
pub trait Receiver<T> {
    /// Pops the oldest message, or `Empty`. Never blocks.
    fn try_pop(&mut self) -> Result<T, PopError>;

    /// Pops a message, calling `wait` while the ring is empty.
    fn pop<W: WaitStrategy>(&mut self, wait: &mut W) -> T {
        wait.wait_until(|| self.try_pop().ok())
    }
}
