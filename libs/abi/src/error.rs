//! One error enum for every call, with stable codes, and the encoding of a
//! call's result in one register.
//!
//! A result is one `u64`: a success value `v < 2^63` is `v` itself; an
//! error is the two's complement negation of its code (`-code as u64`), so
//! the top bit tells them apart, as on Linux.

/// Why a call failed. The discriminant is the stable code a program sees;
/// codes are never reused.
///
/// ```
/// use percore_abi::Error;
/// assert_eq!(Error::from_code(Error::Misaligned.code()), Some(Error::Misaligned));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Error {
    /// No such syscall number.
    NoSys = 1,
    /// A null pointer (the first page is never mapped).
    Null = 2,
    /// An address or range outside the user region: non-canonical, in the
    /// kernel half, or running across the user top.
    BadAddress = 3,
    /// A user address that is not mapped (or faulted during the copy).
    NotMapped = 4,
    /// Memory the call must write is mapped read-only.
    ReadOnly = 5,
    /// A pointer not aligned as its type requires.
    Misaligned = 6,
    /// `base + len` or `count * size` overflows.
    Overflow = 7,
    /// An argument out of range (a length above the call's limit, a zero
    /// period, unknown flags).
    InvalidArgument = 8,
    /// A handle that names no open object (never opened or closed).
    BadHandle = 9,
    /// A handle whose slot has been reused since (an old generation).
    StaleHandle = 10,
    /// A handle to an object of another kind than the call takes.
    WrongType = 11,
    /// The process's handle table is full.
    NoHandles = 12,
    /// The kernel is out of memory for this.
    NoMemory = 13,
    /// A queue is full: retry later (nothing was taken).
    Full = 14,
    /// The buffer is smaller than the message (the message stays queued).
    TooSmall = 15,
    /// The operation exists in the ABI but this kernel does not offer it yet.
    Unsupported = 16,
    /// Nothing to read, no room to write, nothing to accept yet: wait for
    /// the next readiness event.
    WouldBlock = 17,
    /// The port is already bound (on this core).
    AddrInUse = 18,
    /// No address yet (DHCP not done), or no free local port.
    AddrNotAvailable = 19,
    /// The peer refused the connection.
    ConnectionRefused = 20,
    /// The peer reset the connection.
    ConnectionReset = 21,
    /// The connection (request) timed out.
    TimedOut = 22,
    /// The socket is not connected (never was, or no longer).
    NotConnected = 23,
    /// Writing after this side shut down its write half.
    BrokenPipe = 24,
    /// There is no network (no device, or the stack did not start).
    NoNetwork = 25,
    /// The object belongs to another core.
    WrongCore = 26,
    /// There is no such device (a disk-log call on a machine without a disk).
    NoDevice = 27,
    /// The data asked for is damaged (a disk-log record whose checksum
    /// fails, or a log that does not open); never returned as data.
    Corrupt = 28,
    /// The device failed the request (an I/O error, or it misbehaved).
    Io = 29,
    /// No such record (past the durable end of the log).
    NotFound = 30,
    /// No room left (the disk log is full).
    NoSpace = 31,
    /// A result code this version of the ABI does not know (decoding only).
    Unknown = 0xFFFF,
}

impl Error {
    /// Every error, in code order.
    pub const ALL: [Error; 32] = [
        Error::NoSys,
        Error::Null,
        Error::BadAddress,
        Error::NotMapped,
        Error::ReadOnly,
        Error::Misaligned,
        Error::Overflow,
        Error::InvalidArgument,
        Error::BadHandle,
        Error::StaleHandle,
        Error::WrongType,
        Error::NoHandles,
        Error::NoMemory,
        Error::Full,
        Error::TooSmall,
        Error::Unsupported,
        Error::WouldBlock,
        Error::AddrInUse,
        Error::AddrNotAvailable,
        Error::ConnectionRefused,
        Error::ConnectionReset,
        Error::TimedOut,
        Error::NotConnected,
        Error::BrokenPipe,
        Error::NoNetwork,
        Error::WrongCore,
        Error::NoDevice,
        Error::Corrupt,
        Error::Io,
        Error::NotFound,
        Error::NoSpace,
        Error::Unknown,
    ];

    /// The stable code.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The error with code `code`, if there is one.
    pub fn from_code(code: u16) -> Option<Error> {
        Error::ALL.into_iter().find(|e| e.code() == code)
    }

    /// A short name, for reports (`"bad-handle"`).
    pub const fn name(self) -> &'static str {
        match self {
            Error::NoSys => "no-sys",
            Error::Null => "null",
            Error::BadAddress => "bad-address",
            Error::NotMapped => "not-mapped",
            Error::ReadOnly => "read-only",
            Error::Misaligned => "misaligned",
            Error::Overflow => "overflow",
            Error::InvalidArgument => "invalid-argument",
            Error::BadHandle => "bad-handle",
            Error::StaleHandle => "stale-handle",
            Error::WrongType => "wrong-type",
            Error::NoHandles => "no-handles",
            Error::NoMemory => "no-memory",
            Error::Full => "full",
            Error::TooSmall => "too-small",
            Error::Unsupported => "unsupported",
            Error::WouldBlock => "would-block",
            Error::AddrInUse => "addr-in-use",
            Error::AddrNotAvailable => "addr-not-available",
            Error::ConnectionRefused => "connection-refused",
            Error::ConnectionReset => "connection-reset",
            Error::TimedOut => "timed-out",
            Error::NotConnected => "not-connected",
            Error::BrokenPipe => "broken-pipe",
            Error::NoNetwork => "no-network",
            Error::WrongCore => "wrong-core",
            Error::NoDevice => "no-device",
            Error::Corrupt => "corrupt",
            Error::Io => "io",
            Error::NotFound => "not-found",
            Error::NoSpace => "no-space",
            Error::Unknown => "unknown",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest success value a result register carries.
pub const MAX_VALUE: u64 = (1 << 63) - 1;

/// A call's result as the `rax` it returns. A success value above
/// [`MAX_VALUE`] cannot be told from an error: it is clamped there (no call
/// returns one).
///
/// ```
/// use percore_abi::{Error, encode};
/// assert_eq!(encode(Ok(7)), 7);
/// assert_eq!(encode(Err(Error::NoSys)) as i64, -1);
/// ```
pub const fn encode(result: Result<u64, Error>) -> u64 {
    match result {
        Ok(value) if value > MAX_VALUE => MAX_VALUE,
        Ok(value) => value,
        Err(error) => (error.code() as u64).wrapping_neg(),
    }
}

/// The result a call's `rax` encodes; a negative value whose code this ABI
/// does not know decodes as [`Error::Unknown`].
///
/// ```
/// use percore_abi::{Error, decode};
/// assert_eq!(decode(3), Ok(3));
/// assert_eq!(decode((-9i64) as u64), Err(Error::BadHandle));
/// assert_eq!(decode((-4000i64) as u64), Err(Error::Unknown));
/// ```
pub fn decode(raw: u64) -> Result<u64, Error> {
    if raw <= MAX_VALUE {
        return Ok(raw);
    }
    let code = raw.wrapping_neg();
    Err(u16::try_from(code)
        .ok()
        .and_then(Error::from_code)
        .unwrap_or(Error::Unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_nonzero_and_decodable() {
        for (i, error) in Error::ALL.iter().enumerate() {
            assert_ne!(error.code(), 0);
            assert_eq!(Error::from_code(error.code()), Some(*error));
            assert_eq!(decode(encode(Err(*error))), Err(*error));
            for other in &Error::ALL[i + 1..] {
                assert_ne!(error.code(), other.code());
                assert_ne!(error.name(), other.name());
            }
        }
    }

    #[test]
    fn success_values_round_trip() {
        for value in [0, 1, 4096, u64::from(u32::MAX), MAX_VALUE] {
            assert_eq!(decode(encode(Ok(value))), Ok(value));
        }
        assert_eq!(decode(encode(Ok(u64::MAX))), Ok(MAX_VALUE));
    }

    #[test]
    fn unknown_codes_decode_as_unknown() {
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(32), None);
        assert_eq!(decode(1u64 << 63), Err(Error::Unknown));
        assert_eq!(decode(u64::MAX - 100), Err(Error::Unknown));
    }
}
