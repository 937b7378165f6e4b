//! [`Error`]: why a socket call failed. Errors are values; nothing here
//! panics on what the network sends.

use core::fmt;

use crate::arch::CoreId;

/// Why a socket operation failed (mio's `io::ErrorKind`s, named).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Nothing to read, no room to write, nothing to accept yet: try again
    /// after the next readiness event. (embedded-io 0.6 has no such kind;
    /// [`embedded_io::Error::kind`] reports it as `Other`.)
    WouldBlock,
    /// The socket belongs to core `owner` and was used on core `here`. A
    /// socket lives on the core that created it; it is never forwarded.
    WrongCore { owner: CoreId, here: CoreId },
    /// The port is already bound (on this core).
    AddrInUse,
    /// No address yet (DHCP not done), or no free local port.
    AddrNotAvailable,
    /// The peer answered the connection request with a reset.
    ConnectionRefused,
    /// The peer reset an established connection.
    ConnectionReset,
    /// The connection request or the connection timed out.
    TimedOut,
    /// The socket's send buffer is full (UDP: the datagram was not queued).
    NoBufferSpace,
    /// The socket is not connected (never was, or no longer).
    NotConnected,
    /// Writing after this side shut down its write half.
    BrokenPipe,
    /// A bad argument: an IPv6 address, port 0, an unroutable destination.
    InvalidInput,
    /// There is no network (no device, or the stack did not start).
    NoNetwork,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WouldBlock => f.write_str("operation would block"),
            Error::WrongCore { owner, here } => {
                write!(f, "socket of core {owner} used on core {here}")
            }
            Error::AddrInUse => f.write_str("address in use"),
            Error::AddrNotAvailable => f.write_str("address not available"),
            Error::ConnectionRefused => f.write_str("connection refused"),
            Error::ConnectionReset => f.write_str("connection reset"),
            Error::TimedOut => f.write_str("timed out"),
            Error::NoBufferSpace => f.write_str("no buffer space"),
            Error::NotConnected => f.write_str("not connected"),
            Error::BrokenPipe => f.write_str("broken pipe"),
            Error::InvalidInput => f.write_str("invalid input"),
            Error::NoNetwork => f.write_str("no network"),
        }
    }
}

impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as K;
        match self {
            Error::WouldBlock | Error::WrongCore { .. } | Error::NoNetwork => K::Other,
            Error::AddrInUse => K::AddrInUse,
            Error::AddrNotAvailable => K::AddrNotAvailable,
            Error::ConnectionRefused => K::ConnectionRefused,
            Error::ConnectionReset => K::ConnectionReset,
            Error::TimedOut => K::TimedOut,
            Error::NoBufferSpace => K::OutOfMemory,
            Error::NotConnected => K::NotConnected,
            Error::BrokenPipe => K::BrokenPipe,
            Error::InvalidInput => K::InvalidInput,
        }
    }
}

/// A socket call's result.
pub type Result<T> = core::result::Result<T, Error>;
