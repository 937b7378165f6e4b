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
//! Sockets ([`crate::net`]) and the disk log ([`crate::dlog`]) have
//! readiness in the kernel: registering one
//! is a `poll_register` call, and while any socket is registered one
//! `poll_wait` is kept in flight in the ring; its completion brings the
//! sockets' events (edge-triggered, mio's readable, writable, closed and
//! error bits).
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
use percore_abi::{Error, Handle, PollEvent, Sys, decode};

use crate::dlog::DiskLog;
use crate::net::{TcpListener, TcpStream, UdpSocket};
use crate::ring::Ring;

/// Registrations one [`Poll`] holds.
pub const MAX_REGISTRATIONS: usize = 32;
/// Events one [`Events`] holds.
pub const MAX_EVENTS: usize = 32;
/// The tag of a poll's timeout (not a registration's).
const TIMEOUT_TAG: u64 = u64::MAX;
/// The tag of the sockets' `poll_wait`.
const SOCKETS_TAG: u64 = u64::MAX - 1;

/// Where the sockets' `poll_wait` writes its events (one `Poll` a
/// program; the buffer must stay put while the call is in flight).
struct SocketEvents(core::cell::UnsafeCell<[PollEvent; MAX_EVENTS]>);

// SAFETY: a program has one thread.
unsafe impl Sync for SocketEvents {}

static SOCKET_EVENTS: SocketEvents = SocketEvents(core::cell::UnsafeCell::new(
    [PollEvent { token: 0, ready: 0 }; MAX_EVENTS],
));

/// What can be registered: a handle watched by a probe (a timer, a
/// channel), or a socket.
pub trait Source {
    fn handle(&self) -> Handle;
    /// A socket: its readiness comes from the kernel's `poll_wait`.
    fn is_socket(&self) -> bool {
        false
    }
}

impl Source for Handle {
    fn handle(&self) -> Handle {
        *self
    }
}

impl<T: Source> Source for &mut T {
    fn handle(&self) -> Handle {
        (**self).handle()
    }

    fn is_socket(&self) -> bool {
        (**self).is_socket()
    }
}

macro_rules! socket_source {
    ($($t:ty),*) => {$(
        impl Source for $t {
            fn handle(&self) -> Handle {
                <$t>::handle(self)
            }

            fn is_socket(&self) -> bool {
                true
            }
        }
    )*};
}

socket_source!(TcpListener, TcpStream, UdpSocket, DiskLog);

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

    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    /// Both.
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

impl core::ops::BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

/// One readiness event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    token: Token,
    /// `PollEvent`'s bits.
    ready: u64,
}

impl Event {
    /// A probe's completion as an event.
    fn probe(token: Token, result: Result<u64, Error>) -> Event {
        let ready = match result {
            Ok(_) | Err(Error::TooSmall) => PollEvent::READABLE,
            Err(_) => PollEvent::ERROR,
        };
        Event { token, ready }
    }

    pub fn token(&self) -> Token {
        self.token
    }

    /// The probe saw what it waits for (a timer expiry, a queued message),
    /// or the socket has data (or its peer closed).
    pub fn is_readable(&self) -> bool {
        self.ready & PollEvent::READABLE != 0
    }

    /// The socket has room to write (a connect completed).
    pub fn is_writable(&self) -> bool {
        self.ready & PollEvent::WRITABLE != 0
    }

    /// The peer shut down its write half.
    pub fn is_read_closed(&self) -> bool {
        self.ready & PollEvent::READ_CLOSED != 0
    }

    pub fn is_write_closed(&self) -> bool {
        self.ready & PollEvent::WRITE_CLOSED != 0
    }

    /// The probe failed (the handle was closed, ...), or the connection did
    /// (refused, reset, timed out).
    pub fn is_error(&self) -> bool {
        self.ready & PollEvent::ERROR != 0
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
    /// Sockets registered (with the kernel) now.
    sockets: core::cell::Cell<usize>,
}

impl Registry {
    /// Watches `source` (a timer or channel handle, or a socket) and
    /// reports it as `token`. Registering a socket again changes its token
    /// and interest.
    pub fn register<S: Source>(
        &self,
        source: S,
        token: Token,
        interests: Interest,
    ) -> Result<(), Error> {
        if source.is_socket() {
            let handle = source.handle().raw();
            let first = crate::sys::call(Sys::PollDeregister, handle, 0, 0).is_err();
            crate::sys::call(
                Sys::PollRegister,
                handle,
                token.0 as u64,
                u64::from(interests.0),
            )?;
            if first {
                self.sockets.set(self.sockets.get() + 1);
            }
            return Ok(());
        }
        let handle = source.handle();
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

    /// Stops reporting a socket (closing it does too, but the count of
    /// registered sockets is only kept right by this).
    pub fn deregister_socket<S: Source>(&self, source: S) -> Result<(), Error> {
        crate::sys::call(Sys::PollDeregister, source.handle().raw(), 0, 0)?;
        self.sockets.set(self.sockets.get().saturating_sub(1));
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
    /// The sockets' `poll_wait` is in the ring.
    sockets_in_flight: bool,
    /// Socket events of the last `poll_wait` not handed out yet (the
    /// caller's `Events` were full): `SOCKET_EVENTS[next..end]`.
    socket_left: (usize, usize),
}

impl Poll {
    /// Takes over the process's ring.
    pub fn new(ring: Ring) -> Poll {
        Poll {
            ring,
            registry: Registry {
                slots: RefCell::new([None; MAX_REGISTRATIONS]),
                sockets: core::cell::Cell::new(0),
            },
            timeout_in_flight: false,
            sockets_in_flight: false,
            socket_left: (0, 0),
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
            self.ring.submit_and_wait(1)?;
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
        let drained = self.socket_left.0 == self.socket_left.1;
        if self.registry.sockets.get() > 0 && !self.sockets_in_flight && drained {
            let args = [
                SOCKET_EVENTS.0.get() as u64,
                MAX_EVENTS as u64,
                u64::MAX,
                0,
                0,
                0,
            ];
            self.sockets_in_flight = self
                .ring
                .submit(Submission::new(Sys::PollWait, SOCKETS_TAG, args))
                .is_ok();
        }
        self.ring.flush()
    }
}

/// Moves socket events the kernel wrote (`SOCKET_EVENTS[left.0..left.1]`)
/// into `events` while it has room.
fn hand_out(left: &mut (usize, usize), events: &mut Events) {
    // SAFETY: the kernel wrote the events there and has no call in flight
    // on the buffer (the next goes out once these are handed out).
    let written = unsafe { &*SOCKET_EVENTS.0.get() };
    let (next, end) = left;
    {
        while *next < *end {
            let e = written[*next];
            let event = Event {
                token: Token(e.token as usize),
                ready: e.ready,
            };
            if !events.push(event) {
                return;
            }
            *next += 1;
        }
    }
}

impl Poll {
    /// Hands completions out as events; true if the timeout expired.
    fn reap(&mut self, events: &mut Events) -> bool {
        let mut timed_out = false;
        hand_out(&mut self.socket_left, events);
        let mut slots = self.registry.slots.borrow_mut();
        for r in slots.iter_mut().flatten() {
            if let Some(result) = r.pending
                && events.push(Event::probe(r.token, result))
            {
                r.pending = None;
            }
        }
        for done in self.ring.completions() {
            if done.user_data == SOCKETS_TAG {
                self.sockets_in_flight = false;
                let n = decode(done.result).unwrap_or(0) as usize;
                self.socket_left = (0, n.min(MAX_EVENTS));
                hand_out(&mut self.socket_left, events);
                continue;
            }
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
            if !events.push(Event::probe(token, result)) {
                r.pending = Some(result);
            }
        }
        timed_out
    }
}
