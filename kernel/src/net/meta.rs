//! What the socket API keeps about each socket beside smoltcp's state
//! ([`Meta`], [`Listener`]), and how a socket's readiness is read from it
//! in mio's terms: readable (data, or the end of the stream), writable
//! (room to send), read-closed (the peer's FIN), write-closed (this side
//! shut down), error (refused, reset, timed out). The net task computes it
//! after every poll and reports changes ([`super::shard`]).

use alloc::vec::Vec;
use core::task::Waker;

use percore_poll::{Ready, Signal};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};

use super::Error;
use crate::time::{Clock, Instant};

/// A socket's kind, for the readiness scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Udp,
}

/// What the API keeps about one socket beside smoltcp's.
pub struct Meta {
    pub kind: Kind,
    /// The `percore_poll` registration's signal, while registered.
    pub signal: Option<Signal>,
    /// Readiness last reported, and the queue lengths it was computed at.
    pub last: Ready,
    pub seen: (usize, usize),
    pub readers: Option<Waker>,
    pub writers: Option<Waker>,
    /// The connection reached Established at some point.
    pub established: bool,
    /// The peer sent its FIN.
    pub peer_fin: bool,
    /// This side closed (shutdown or drop).
    pub closed_by_us: bool,
    /// The handle was dropped (at this clock time): the socket is
    /// removed once closed, or aborted after [`LINGER_NS`].
    pub dropped: Option<Instant>,
    /// The read half was shut down here.
    pub read_shut: bool,
    /// Why the connection failed, once it did.
    pub error: Option<Error>,
    /// When a connection request was made (for refused vs timed out).
    pub connecting_since: Option<Instant>,
    /// Its buffers' sizes and use ([`super::buffers`]).
    pub demand: super::buffers::Demand,
}

impl Meta {
    pub fn new(kind: Kind) -> Meta {
        Meta {
            kind,
            signal: None,
            last: Ready::EMPTY,
            seen: (0, 0),
            readers: None,
            writers: None,
            established: false,
            peer_fin: false,
            closed_by_us: false,
            dropped: None,
            read_shut: false,
            error: None,
            connecting_since: None,
            demand: super::buffers::Demand::default(),
        }
    }
}

/// A listening port: sockets in Listen state, handed out as they connect.
pub struct Listener {
    pub backlog: Vec<SocketHandle>,
    pub options: super::tcp::Options,
    pub signal: Option<Signal>,
    pub waker: Option<Waker>,
}

/// Whether `ready` has any bit of `bits`.
pub fn touches(ready: Ready, bits: Ready) -> bool {
    ready.bits() & bits.bits() != 0
}

/// Whether a listening socket holds a connection to hand out.
pub fn acceptable(socket: &tcp::Socket) -> bool {
    !matches!(
        socket.state(),
        tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
    )
}

/// A TCP socket's readiness (mio's meaning), its queue lengths, whether it
/// is closed for good; records what the connection went through in `meta`.
pub fn tcp_readiness(socket: &tcp::Socket, meta: &mut Meta) -> (Ready, (usize, usize), bool) {
    use tcp::State as S;
    let state = socket.state();
    match state {
        S::Established | S::FinWait1 | S::FinWait2 | S::Closing | S::TimeWait => {
            meta.established = true
        }
        S::CloseWait | S::LastAck => {
            meta.established = true;
            meta.peer_fin = true;
        }
        _ => {}
    }
    if matches!(state, S::Closing | S::TimeWait) {
        meta.peer_fin = true;
    }
    if state == S::Closed && !meta.closed_by_us && meta.error.is_none() {
        meta.error = Some(if meta.established {
            if meta.peer_fin {
                Error::NotConnected
            } else {
                Error::ConnectionReset
            }
        } else {
            match meta.connecting_since {
                Some(since)
                    if Clock::now().0.saturating_sub(since.0) >= super::tcp::CONNECT_TIMEOUT_NS =>
                {
                    Error::TimedOut
                }
                _ => Error::ConnectionRefused,
            }
        });
    }
    let mut ready = Ready::EMPTY;
    if socket.can_recv() {
        ready |= Ready::READABLE;
    }
    if meta.peer_fin || (meta.established && !socket.may_recv()) {
        ready |= Ready::READABLE | Ready::READ_CLOSED;
    }
    // A connection with no send buffer is lent one by the write.
    if socket.can_send() || (socket.send_capacity() == 0 && socket.may_send()) {
        ready |= Ready::WRITABLE;
    }
    if meta.established && !socket.may_send() {
        ready |= Ready::WRITE_CLOSED;
    }
    if meta.error.is_some() && !matches!(meta.error, Some(Error::NotConnected)) {
        ready |= Ready::ERROR | Ready::READ_CLOSED | Ready::WRITE_CLOSED;
    }
    let closed = matches!(state, S::Closed | S::TimeWait);
    (ready, (socket.recv_queue(), socket.send_queue()), closed)
}

pub fn udp_readiness(socket: &udp::Socket) -> (Ready, (usize, usize), bool) {
    let mut ready = Ready::EMPTY;
    if socket.can_recv() {
        ready |= Ready::READABLE;
    }
    if socket.can_send() {
        ready |= Ready::WRITABLE;
    }
    (ready, (socket.recv_queue(), socket.send_queue()), false)
}
