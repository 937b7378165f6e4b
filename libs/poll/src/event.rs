//! [`Event`] and [`Events`]: what `poll` reports (mio's `event::Event` and
//! `Events`).

use alloc::vec::Vec;

use crate::{Ready, Token};

/// One readiness event: a token and what became ready.
///
/// ```
/// use std::time::Duration;
/// use percore_poll::{Events, Interest, Poll, Ready, Registration, Token};
///
/// let mut poll = Poll::new().unwrap();
/// let mut s = Registration::new();
/// poll.registry().register(&mut s, Token(5), Interest::READABLE).unwrap();
/// s.signal().unwrap().set(Ready::READABLE | Ready::READ_CLOSED).unwrap();
/// let mut events = Events::with_capacity(4);
/// poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
/// let e = events.iter().next().unwrap();
/// assert_eq!(e.token(), Token(5));
/// assert!(e.is_readable() && e.is_read_closed());
/// assert!(!e.is_writable() && !e.is_write_closed() && !e.is_error());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Event {
    token: Token,
    ready: Ready,
}

impl Event {
    pub(crate) const fn new(token: Token, ready: Ready) -> Self {
        Self { token, ready }
    }

    /// The token of the registration that became ready.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Readable (or, as in mio, a read-side hang-up you will see on read).
    pub fn is_readable(&self) -> bool {
        self.ready.contains(Ready::READABLE)
    }

    /// Writable.
    pub fn is_writable(&self) -> bool {
        self.ready.contains(Ready::WRITABLE)
    }

    /// The source reported an error.
    pub fn is_error(&self) -> bool {
        self.ready.contains(Ready::ERROR)
    }

    /// The read half is closed.
    pub fn is_read_closed(&self) -> bool {
        self.ready.contains(Ready::READ_CLOSED)
    }

    /// The write half is closed.
    pub fn is_write_closed(&self) -> bool {
        self.ready.contains(Ready::WRITE_CLOSED)
    }

    /// Priority data is available.
    pub fn is_priority(&self) -> bool {
        self.ready.contains(Ready::PRIORITY)
    }

    /// Always `false`: there is no AIO here (mio: FreeBSD/macOS only).
    pub fn is_aio(&self) -> bool {
        false
    }

    /// Always `false`: there is no LIO here (mio: FreeBSD only).
    pub fn is_lio(&self) -> bool {
        false
    }

    /// The raw readiness bits (not in mio).
    pub fn readiness(&self) -> Ready {
        self.ready
    }
}

/// A buffer of events filled by [`Poll::poll`](crate::Poll::poll); at most
/// `capacity` per call, the rest stay queued for the next call.
///
/// ```
/// use percore_poll::Events;
///
/// let events = Events::with_capacity(128);
/// assert!(events.is_empty());
/// assert_eq!(events.capacity(), 128);
/// for event in &events {
///     let _ = event.token();
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Events {
    events: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// An empty buffer that takes up to `capacity` events per poll.
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            events: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// The most events one poll stores.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the last poll stored no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Iterates over the events of the last poll.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.events.iter(),
        }
    }

    /// Removes all events (`poll` does this itself).
    pub fn clear(&mut self) {
        self.events.clear();
    }

    pub(crate) fn is_full(&self) -> bool {
        self.events.len() >= self.capacity
    }

    pub(crate) fn push(&mut self, event: Event) {
        self.events.push(event);
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over [`Events`], yielding `&Event` like mio's.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    inner: core::slice::Iter<'a, Event>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Event;

    fn next(&mut self) -> Option<&'a Event> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}
