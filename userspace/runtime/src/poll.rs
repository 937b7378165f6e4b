//! Readiness over the submission ring, with the names of `percore_poll`
//! (and mio): [`Poll`], [`Registry`], [`Token`], [`Interest`], [`Events`].
//!
//! The kernel's ring completes operations; readiness is built on top the
//! way mio does it over IOCP, by keeping one probe in flight per
//! registration: a timer gets a `wait`, a channel a `recv` of zero bytes
//! (which completes with `TooSmall` when a message is queued, leaving it
//! there for the program to take; an empty message is taken by the probe).
//! Each completion is one event, and the probe goes back in flight at the
//! next [`Poll::poll`] (so a message left queued is reported again). No allocation: at most
//! [`MAX_REGISTRATIONS`] registrations and [`MAX_EVENTS`] events a poll.
//!
//! ```ignore
//! let mut poll = Poll::new(Ring::setup(16)?);
//! let mut events = Events::with_capacity(8);
//! poll.registry().register(timer, Token(1), Interest::READABLE)?;
//! poll.poll(&mut events, None)?;
//! for event in events.iter() { assert_eq!(event.token(), Token(1)); }
//! ```

use core::cell::RefCell;
use core::time::Duration;

use percore_abi::ring::Submission;
use percore_abi::{Error, Handle, Sys, decode};

use crate::ring::Ring;

/// Registrations one [`Poll`] holds.
pub const MAX_REGISTRATIONS: usize = 32;
/// Events one [`Events`] holds.
pub const MAX_EVENTS: usize = 32;
/// The tag of a poll's timeout (not a registration's).
const TIMEOUT_TAG: u64 = u64::MAX;

/// Names a registration in its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// What a registration waits for. Timers and channels are only ever
/// readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest(u8);

impl Interest {
    pub const READABLE: Interest = Interest(1);
    pub const WRITABLE: Interest = Interest(2);

    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }
}

/// One readiness event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    token: Token,
    result: Result<u64, Error>,
}

impl Event {
    pub fn token(&self) -> Token {
        self.token
    }

    /// The probe saw what it waits for (a timer expiry, a queued message).
    pub fn is_readable(&self) -> bool {
        matches!(self.result, Ok(_) | Err(Error::TooSmall))
    }

    /// The probe failed (the handle was closed, ...).
    pub fn is_error(&self) -> bool {
        !self.is_readable()
    }
}

/// The events of one [`Poll::poll`].
pub struct Events {
    events: [Option<Event>; MAX_EVENTS],
    len: usize,
    capacity: usize,
}

impl Events {
    /// Room for `capacity` events (at most [`MAX_EVENTS`]).
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            events: [None; MAX_EVENTS],
            len: 0,
            capacity: capacity.min(MAX_EVENTS),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events[..self.len].iter().flatten()
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, event: Event) -> bool {
        if self.len == self.capacity {
            return false;
        }
        self.events[self.len] = Some(event);
        self.len += 1;
        true
    }
}

#[derive(Clone, Copy)]
struct Registration {
    handle: Handle,
    token: Token,
    /// The probe is in the ring (submitted, not completed).
    in_flight: bool,
    /// The handle turned out to be a channel (its probe is a `recv`).
    channel: bool,
    /// A completion not handed out yet (the events were full).
    pending: Option<Result<u64, Error>>,
}

/// Where registrations are made.
pub struct Registry {
    slots: RefCell<[Option<Registration>; MAX_REGISTRATIONS]>,
}

impl Registry {
    /// Watches `handle` (a timer or a channel) and reports it as `token`.
    pub fn register(&self, handle: Handle, token: Token, interests: Interest) -> Result<(), Error> {
        if !interests.is_readable() {
            return Err(Error::InvalidArgument);
        }
        let mut slots = self.slots.borrow_mut();
        if slots.iter().flatten().any(|r| r.token == token) {
            return Err(Error::InvalidArgument);
        }
        let free = slots.iter_mut().find(|s| s.is_none()).ok_or(Error::Full)?;
        *free = Some(Registration {
            handle,
            token,
            in_flight: false,
            channel: false,
            pending: None,
        });
        Ok(())
    }

    /// Stops reporting `token` (a probe in flight completes unreported).
    pub fn deregister(&self, token: Token) -> Result<(), Error> {
        let mut slots = self.slots.borrow_mut();
        let slot = slots
            .iter_mut()
            .find(|s| s.is_some_and(|r| r.token == token))
            .ok_or(Error::BadHandle)?;
        *slot = None;
        Ok(())
    }
}

/// Readiness over the process's ring.
pub struct Poll {
    ring: Ring,
    registry: Registry,
    timeout_in_flight: bool,
}

impl Poll {
    /// Takes over the process's ring.
    pub fn new(ring: Ring) -> Poll {
        Poll {
            ring,
            registry: Registry {
                slots: RefCell::new([None; MAX_REGISTRATIONS]),
            },
            timeout_in_flight: false,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Waits for events (`None`: until one comes; `Some(t)`: at most
    /// about `t`; `Some(0)`: not at all) and stores them in `events`.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<(), Error> {
        events.clear();
        self.arm()?;
        let wait = match timeout {
            Some(t) if t.is_zero() => false,
            Some(t) => {
                if !self.timeout_in_flight {
                    let sleep = Submission::new(
                        Sys::Sleep,
                        TIMEOUT_TAG,
                        [t.as_nanos() as u64, 0, 0, 0, 0, 0],
                    );
                    self.timeout_in_flight = self.ring.submit(sleep).is_ok();
                }
                true
            }
            None => true,
        };
        loop {
            let timed_out = self.reap(events);
            if !events.is_empty() || timed_out || !wait {
                return Ok(());
            }
            self.arm()?;
            self.ring.enter(1)?;
        }
    }

    /// Puts every registration's probe in flight.
    fn arm(&mut self) -> Result<(), Error> {
        let mut slots = self.registry.slots.borrow_mut();
        for r in slots.iter_mut().flatten() {
            if r.in_flight || r.pending.is_some() {
                continue;
            }
            // A timer's `wait`, or a channel's zero-byte `recv`. The kind
            // is learnt from the first answer: `wait` on a channel is
            // WrongType at once.
            let (op, args) = match r.channel {
                false => (Sys::Wait, [r.handle.raw(), 0, 0, 0, 0, 0]),
                true => (Sys::Recv, [r.handle.raw(), 0, 0, 0, 0, 0]),
            };
            if self
                .ring
                .submit(Submission::new(op, r.token.0 as u64, args))
                .is_err()
            {
                break;
            }
            r.in_flight = true;
        }
        drop(slots);
        self.ring.flush()
    }

    /// Hands completions out as events; true if the timeout expired.
    fn reap(&mut self, events: &mut Events) -> bool {
        let mut timed_out = false;
        let mut slots = self.registry.slots.borrow_mut();
        for r in slots.iter_mut().flatten() {
            if let Some(result) = r.pending
                && events.push(Event {
                    token: r.token,
                    result,
                })
            {
                r.pending = None;
            }
        }
        for done in self.ring.completions() {
            if done.user_data == TIMEOUT_TAG {
                self.timeout_in_flight = false;
                timed_out = true;
                continue;
            }
            let token = Token(done.user_data as usize);
            let Some(r) = slots.iter_mut().flatten().find(|r| r.token == token) else {
                continue;
            };
            r.in_flight = false;
            let result = decode(done.result);
            if result == Err(Error::WrongType) && !r.channel {
                r.channel = true;
                continue;
            }
            if !events.push(Event { token, result }) {
                r.pending = Some(result);
            }
        }
        timed_out
    }
}
