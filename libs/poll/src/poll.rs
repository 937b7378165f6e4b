//! [`Poll`]: waits for and reports readiness events (mio's `Poll`).

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::time::Duration;

use crate::event::Event;
use crate::shared::{Shared, Taken};
use crate::{Error, Events, Park, Registry, Result, Spin};

/// The readiness queue of one core: register sources through
/// [`registry`](Poll::registry), then [`poll`](Poll::poll) for events.
///
/// Edge-triggered, like mio: a readiness edge is reported once; drain the
/// source until it would block before expecting another event. Spurious
/// events are possible (a bit latched, then consumed by the reader before
/// `poll` reported it); lost edges are not.
///
/// ```
/// use std::time::Duration;
/// use percore_poll::{Events, Interest, Poll, Ready, Registration, Token};
///
/// let mut poll = Poll::new().unwrap();
/// let mut events = Events::with_capacity(16);
/// let mut rx = Registration::new();
/// poll.registry().register(&mut rx, Token(0), Interest::READABLE).unwrap();
///
/// rx.signal().unwrap().set(Ready::READABLE).unwrap();
/// poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
/// assert_eq!(events.iter().count(), 1);
/// // Edge-triggered: no new edge, no new event.
/// poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
/// assert!(events.is_empty());
/// ```
#[derive(Debug)]
pub struct Poll {
    registry: Registry,
    /// The consumer position in the readiness queue.
    head: usize,
}

impl Poll {
    /// Registrations a [`Poll::new`] holds.
    pub const DEFAULT_CAPACITY: usize = 1024;
    /// Largest capacity accepted.
    pub const MAX_CAPACITY: usize = 1 << 31;

    /// A poll with [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) slots that
    /// waits by spinning ([`Spin`]). Kernel and host code that must sleep use
    /// [`with_park`](Self::with_park).
    ///
    /// ```
    /// let poll = percore_poll::Poll::new().unwrap();
    /// assert_eq!(poll.registry().capacity(), percore_poll::Poll::DEFAULT_CAPACITY);
    /// ```
    pub fn new() -> Result<Poll> {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A spinning poll with room for `capacity` registrations (wakers
    /// included). All memory is allocated here, none later.
    ///
    /// ```
    /// # use percore_poll::{Error, Poll};
    /// assert_eq!(Poll::with_capacity(0).unwrap_err(), Error::InvalidCapacity);
    /// ```
    pub fn with_capacity(capacity: usize) -> Result<Poll> {
        Self::with_park(capacity, Spin::new())
    }

    /// A poll with room for `capacity` registrations that waits with `park`
    /// (see [`Park`] for the contract and a `std` example).
    ///
    /// ```
    /// # use percore_poll::{Poll, Spin};
    /// let poll = Poll::with_park(100_000, Spin::new()).unwrap();
    /// assert_eq!(poll.registry().capacity(), 100_000);
    /// ```
    pub fn with_park(capacity: usize, park: impl Park + 'static) -> Result<Poll> {
        if capacity == 0 || capacity > Self::MAX_CAPACITY {
            return Err(Error::InvalidCapacity);
        }
        let shared = Arc::new(Shared::new(capacity, Box::new(park)));
        Ok(Poll {
            registry: Registry::new(shared),
            head: 0,
        })
    }

    /// The registry of this poll.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Waits for readiness events and stores up to `events.capacity()` of
    /// them in `events` (which is cleared first).
    ///
    /// - `Some(Duration::ZERO)`: never waits (the reactor's drain step).
    /// - `Some(t)`: waits at most about `t`, as the [`Park`] hook measures it;
    ///   may return early with no event (a spurious wake-up).
    /// - `None`: waits until at least one event is stored.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use percore_poll::{Events, Poll};
    /// let mut poll = Poll::new().unwrap();
    /// let mut events = Events::with_capacity(4);
    /// poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
    /// assert!(events.is_empty());
    /// ```
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<()> {
        events.clear();
        self.drain(events);
        if !events.is_empty() || events.capacity() == 0 || timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        loop {
            let shared = &self.registry.shared;
            if shared.prepare_sleep(self.head) {
                shared.park(timeout);
            }
            shared.end_sleep();
            self.drain(events);
            if !events.is_empty() || timeout.is_some() {
                return Ok(());
            }
        }
    }

    /// For an event loop that waits on more than this poll at once (the
    /// kernel's reactor halts until a ring message, a timer *or* readiness
    /// arrives): announces that the owner is about to wait, and returns
    /// `false` if readiness is already queued (then do not wait: call
    /// [`poll`](Self::poll) with a zero timeout instead). From this call
    /// until [`end_sleep`](Self::end_sleep), a signaller that queues readiness
    /// calls [`Park::unpark`], which must end the owner's wait (the kernel:
    /// an IPI to the owning core). The same store-fence-load handshake as
    /// `poll`'s own waiting, so no edge is missed; a `false` return still
    /// needs `end_sleep`.
    /// ```
    /// use percore_poll::{Interest, Poll, Ready, Registration, Token};
    /// let poll = Poll::new().unwrap();
    /// let mut rx = Registration::new();
    /// poll.registry().register(&mut rx, Token(0), Interest::READABLE).unwrap();
    /// assert!(poll.prepare_sleep()); // nothing queued: the loop may halt
    /// poll.end_sleep();
    /// rx.signal().unwrap().set(Ready::READABLE).unwrap();
    /// assert!(!poll.prepare_sleep()); // readiness waits: do not halt
    /// poll.end_sleep();
    /// ```
    pub fn prepare_sleep(&self) -> bool {
        self.registry.shared.prepare_sleep(self.head)
    }

    /// Whether readiness is queued for the next [`poll`](Self::poll), without
    /// taking it or announcing a sleep: what a poller spinning before it
    /// parks (halt polling) checks.
    ///
    /// ```
    /// use percore_poll::{Interest, Poll, Ready, Registration, Token};
    /// let poll = Poll::new().unwrap();
    /// let mut rx = Registration::new();
    /// poll.registry().register(&mut rx, Token(1), Interest::READABLE).unwrap();
    /// assert!(!poll.has_pending());
    /// rx.signal().unwrap().set(Ready::READABLE).unwrap();
    /// assert!(poll.has_pending());
    /// ```
    pub fn has_pending(&self) -> bool {
        self.registry.shared.has_queued(self.head)
    }

    /// Ends the wait announced by [`prepare_sleep`](Self::prepare_sleep):
    /// signallers stop calling [`Park::unpark`].
    pub fn end_sleep(&self) {
        self.registry.shared.end_sleep();
    }

    /// Moves queued readiness into `events` until it is full or the queue
    /// is (momentarily) empty; entries queued during the drain are left for
    /// the next call, so a token appears at most once per `poll`.
    fn drain(&mut self, events: &mut Events) {
        let until = self.registry.shared.queued_until();
        while !events.is_full() {
            match self.registry.shared.take(&mut self.head, until) {
                None => return,
                Some(Taken::Event(token, ready)) => events.push(Event::new(token, ready)),
                Some(Taken::Nothing) => {}
                Some(Taken::Free(slot)) => self.registry.reclaim(slot),
            }
        }
    }
}
