//! # percore-abi: the contract between the kernel and ring-3 programs
//!
//! Everything a user program and the kernel must agree on, and nothing
//! else: the crate knows no hardware and no kernel type, so the user
//! runtime depends on it alone.
//!
//! - [`Sys`]: the syscall numbers, and how arguments travel ([`Sys`] docs);
//! - [`Error`]: one error enum with stable codes; [`encode`]/[`decode`]
//!   turn a `Result<u64, Error>` into the one register a call returns;
//! - [`Handle`]: a reference to a kernel object (slot index + generation);
//! - [`ring`]: the layout of a submission/completion ring entry (the second
//!   way into the kernel, the same operations as the syscalls);
//! - the structures some calls read or write ([`IoVec`], [`ProcessInfo`],
//!   [`PollEvent`], [`DlogRecord`], [`DlogInfo`]) and the one-word socket
//!   address ([`SockAddr`]).
//!
//! ```
//! use percore_abi::{Error, decode, encode};
//!
//! assert_eq!(decode(encode(Ok(42))), Ok(42));
//! assert_eq!(decode(encode(Err(Error::BadHandle))), Err(Error::BadHandle));
//! ```
#![no_std]

mod error;
mod handle;
pub mod ring;
mod sys;

pub use error::{Error, decode, encode};
pub use handle::{Handle, HandleKind};
pub use sys::Sys;

/// The lowest address a user mapping may have: the first page stays
/// unmapped so that a null pointer (and small offsets from it) always faults.
pub const USER_BASE: u64 = 0x1000;
/// One past the highest user address: the top of the lower canonical half.
/// Every user range lies in `[USER_BASE, USER_TOP)`.
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;
/// Where program images are linked (the runtime's linker script).
pub const USER_IMAGE_BASE: u64 = 0x0040_0000;

/// One buffer of a gather write ([`Sys::WriteVectored`]): `count` of these,
/// each 16 bytes and 8-byte aligned, read from user memory.
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::IoVec>(), 16);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct IoVec {
    pub base: u64,
    pub len: u64,
}

/// What [`Sys::ProcessInfo`] writes to user memory (8-byte aligned).
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::ProcessInfo>(), 48);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ProcessInfo {
    /// The process id.
    pub pid: u64,
    /// The core the process runs on.
    pub core: u64,
    /// Syscalls made so far (this one included).
    pub syscalls: u64,
    /// Handles open now.
    pub handles: u64,
    /// CPU time spent in user mode and in its syscalls, in ns.
    pub cpu_ns: u64,
    /// Arguments the program was started with, as bytes (see [`Sys::Args`]).
    pub args_len: u64,
}

/// An IPv4 socket address as one word, as the socket calls pass it:
/// the address in bits 16..48 (most significant byte first), the port in
/// bits 0..16.
///
/// ```
/// use percore_abi::SockAddr;
/// let a = SockAddr::new([10, 0, 2, 2], 8080);
/// assert_eq!(SockAddr::from_raw(a.raw()), Some(a));
/// assert_eq!((a.ip(), a.port()), ([10, 0, 2, 2], 8080));
/// assert_eq!(SockAddr::from_raw(1 << 48), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockAddr(u64);

impl SockAddr {
    pub const fn new(ip: [u8; 4], port: u16) -> SockAddr {
        SockAddr(((u32::from_be_bytes(ip) as u64) << 16) | port as u64)
    }

    /// The address a word names; `None` if bits above 48 are set.
    pub const fn from_raw(raw: u64) -> Option<SockAddr> {
        if raw >> 48 != 0 {
            None
        } else {
            Some(SockAddr(raw))
        }
    }

    pub const fn raw(self) -> u64 {
        self.0
    }

    pub const fn ip(self) -> [u8; 4] {
        ((self.0 >> 16) as u32).to_be_bytes()
    }

    pub const fn port(self) -> u16 {
        self.0 as u16
    }
}

/// [`Sys::PollRegister`]'s interest: readable.
pub const INTEREST_READABLE: u64 = 1;
/// [`Sys::PollRegister`]'s interest: writable.
pub const INTEREST_WRITABLE: u64 = 2;

/// One readiness event of [`Sys::PollWait`] (16 bytes, 8-byte aligned).
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::PollEvent>(), 16);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PollEvent {
    /// The registration's token.
    pub token: u64,
    /// What became ready: the `READY_*` bits.
    pub ready: u64,
}

impl PollEvent {
    pub const READABLE: u64 = 1 << 0;
    pub const WRITABLE: u64 = 1 << 1;
    pub const READ_CLOSED: u64 = 1 << 3;
    pub const WRITE_CLOSED: u64 = 1 << 4;
    pub const ERROR: u64 = 1 << 5;
}

/// The header [`Sys::DlogRead`] writes before a record's payload (16
/// bytes, 8-byte aligned).
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::DlogRecord>(), 16);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DlogRecord {
    /// The record's sequence number (after [`Error::Corrupt`]: the last
    /// one lost).
    pub seq: u64,
    /// Its payload's length in bytes (after [`Error::TooSmall`]: what the
    /// payload needs).
    pub len: u64,
}

impl DlogRecord {
    /// Its size: where the payload starts in a read's buffer.
    pub const SIZE: u64 = 16;
}

/// What [`Sys::DlogInfo`] writes (8-byte aligned).
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::DlogInfo>(), 32);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DlogInfo {
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// Records below this sequence number are durable (and readable).
    pub durable_seq: u64,
    /// Valid records the log held when it was opened.
    pub recovered: u64,
    /// Records found corrupt when it was opened (never returned as data).
    pub corrupt: u64,
}
