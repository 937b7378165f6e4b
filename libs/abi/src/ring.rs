//! The layout of the per-process submission and completion rings (the
//! second way into the kernel; reserved, see [`Sys::RingSetup`](crate::Sys::RingSetup)).
//!
//! A process and its core's reactor share two rings of fixed-size entries
//! in memory: the process writes [`Submission`]s and advances the
//! submission tail; the reactor, on each turn, copies each entry into
//! kernel memory *before* looking at it, runs it as the syscall
//! `Submission::op` with the same arguments, and posts a [`Completion`]
//! carrying `user_data` back. The indices in a [`RingHeader`] are free-running
//! `u32`s read from user memory and so hostile: the kernel masks them with
//! its own copy of the size and never trusts `tail - head`. A full
//! completion ring stops the reactor taking submissions (backpressure),
//! never drops a completion.

use crate::Sys;

/// One operation submitted through the ring: a syscall number and its six
/// arguments, exactly as they would travel in registers.
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::ring::Submission>(), 64);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Submission {
    /// A [`Sys`] number.
    pub op: u32,
    /// Per-entry flags; none are defined yet (must be 0).
    pub flags: u32,
    /// Returned unchanged in the [`Completion`].
    pub user_data: u64,
    pub args: [u64; 6],
}

impl Submission {
    /// An entry for `op` with `args`.
    pub const fn new(op: Sys, user_data: u64, args: [u64; 6]) -> Submission {
        Submission {
            op: op as u32,
            flags: 0,
            user_data,
            args,
        }
    }
}

/// The result of one [`Submission`].
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::ring::Completion>(), 16);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Completion {
    pub user_data: u64,
    /// Encoded as a syscall's `rax` ([`encode`](crate::encode)).
    pub result: u64,
}

/// The shared indices of one ring. The producer writes `tail`, the consumer
/// `head`; both count entries since setup and wrap at 2^32. `flags` carries
/// [`RingHeader::ASLEEP`], set by the reactor before its core sleeps.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct RingHeader {
    pub head: u32,
    pub tail: u32,
    pub flags: u32,
    /// log2 of the entry count, fixed at setup.
    pub order: u32,
}

impl RingHeader {
    /// The reactor sleeps: make one `ring_enter` call to have it look.
    pub const ASLEEP: u32 = 1;
}
