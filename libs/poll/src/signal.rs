//! [`Signal`]: the handle an event source uses to report readiness, from any
//! core or interrupt handler.

use alloc::sync::Arc;

use crate::shared::Shared;
use crate::{Ready, Result};

/// Reports readiness of one registration into its `Poll`'s queue.
///
/// Obtained from a registered [`Registration`](crate::Registration); cheap to
/// clone (one reference count) and `Send + Sync`, so an interrupt handler or
/// another core can hold it. [`set`](Signal::set) is lock-free: one CAS on
/// the registration's state word, plus one queue push on a new edge. It never
/// waits for another party (not the poller, not a half-finished push of
/// another signaller), so it is safe in an interrupt handler that preempted
/// either on the same core. After the
/// source is deregistered the signal is stale and `set` returns
/// [`Error::NotRegistered`](crate::Error::NotRegistered).
///
/// ```
/// use percore_poll::{Events, Interest, Poll, Ready, Registration, Token};
///
/// let mut poll = Poll::new().unwrap();
/// let mut source = Registration::new();
/// poll.registry().register(&mut source, Token(3), Interest::READABLE).unwrap();
/// let signal = source.signal().unwrap().clone();
/// std::thread::spawn(move || signal.set(Ready::READABLE).unwrap()).join().unwrap();
///
/// let mut events = Events::with_capacity(8);
/// poll.poll(&mut events, None).unwrap();
/// assert_eq!(events.iter().next().unwrap().token(), Token(3));
/// ```
#[derive(Clone)]
pub struct Signal {
    pub(crate) shared: Arc<Shared>,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl Signal {
    /// Marks `ready` (edge-triggered): the registration is queued once, no
    /// matter how many times it is signalled before the next `poll` takes it.
    /// Bits outside the registration's interest are latched and reported if
    /// a later `reregister` asks for them.
    ///
    /// ```
    /// # use percore_poll::{Events, Interest, Poll, Ready, Registration, Token};
    /// # let mut poll = Poll::new().unwrap();
    /// # let mut source = Registration::new();
    /// # poll.registry().register(&mut source, Token(3), Interest::READABLE).unwrap();
    /// let signal = source.signal().unwrap();
    /// for _ in 0..1000 {
    ///     signal.set(Ready::READABLE).unwrap();
    /// }
    /// let mut events = Events::with_capacity(8);
    /// poll.poll(&mut events, Some(std::time::Duration::ZERO)).unwrap();
    /// assert_eq!(events.iter().count(), 1);
    /// ```
    pub fn set(&self, ready: Ready) -> Result<()> {
        self.shared.signal(self.slot, self.generation, ready)
    }
}

impl core::fmt::Debug for Signal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Signal")
            .field("slot", &self.slot)
            .field("generation", &self.generation)
            .finish()
    }
}
