//! The syscall layer: the ABI of `percore-abi` on top of processes.
//!
//! A user thread is a task of its core's reactor ([`thread`]): polling it
//! enters ring 3 until the thread traps back; a syscall is then handled
//! here, in the task, as ordinary async kernel code ([`dispatch`]) — a
//! call that blocks (sleep, receive, timer wait) awaits, which returns the
//! task to the reactor, and the core runs its other tasks meanwhile.
//!
//! The same operations also come through the process's submission ring
//! ([`ring`]): [`quick_op`] answers the quick ones, [`start`] checks and
//! runs any, [`poll_blocked`] waits for one that has to wait, whichever
//! way it came in.
//!
//! Every argument is hostile: pointers go through `process::umem`'s
//! checked copies, handles through the process's handle table, lengths
//! and counts are bounded; each bad argument is an `Error` code in `rax`,
//! never a panic.
//!
//! The socket calls and their readiness are in [`net`], the disk-log
//! calls in [`disk`].

pub mod disk;
pub mod net;
pub mod ring;
pub mod thread;

use alloc::vec;
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::task::{Context, Poll};
use core::time::Duration;

use percore_abi::ring::Corrupt;
use percore_abi::{Error, Handle, HandleKind, IoVec, ProcessInfo, Sys, encode};

use crate::process::object::{Channel, KernelObject};
pub use crate::process::ring::Blocked;
use crate::process::{Process, blocking, umem};
use crate::reactor;
use crate::time;

pub use thread::{spawn, spawn_image, spawn_with_handles};

/// What a syscall left the thread to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go back to user mode with this `rax`.
    Return(u64),
    /// The process called `exit(code)`.
    Exit(i64),
    /// The process was killed while the call blocked.
    Killed,
    /// The process corrupted its ring's indices: it ends with this report.
    BadRing(Corrupt),
}

/// What starting an operation gave: the one implementation of each
/// operation, for both ways in (a syscall awaits a [`Blocked`] one at
/// once; the ring keeps it in flight and polls it on later turns).
pub enum Started {
    /// Done: the result.
    Done(Result<u64, Error>),
    /// `exit(code)`.
    Exit(i64),
    /// `yield`: done (result 0) once the core's other tasks had a turn.
    Yield,
    /// Waits for something; poll it with [`poll_blocked`].
    Blocked(Blocked),
}

/// The longest a `sleep` or a timer period may be (one day).
const MAX_WAIT_NS: u64 = 86_400 * 1_000_000_000;
/// The shortest timer period (10 µs).
const MIN_PERIOD_NS: u64 = 10_000;

/// Handles the syscall the process's thread just made.
pub async fn dispatch(process: &mut Process) -> Outcome {
    let (number, args) = process.context.syscall();
    let result = match Sys::from_number(number) {
        None => Err(Error::NoSys),
        Some(Sys::RingEnter) => match ring::enter(process, args).await {
            Ok(result) => result,
            Err(outcome) => return outcome,
        },
        Some(sys) => match start(process, sys, args) {
            Started::Done(result) => result,
            Started::Exit(code) => return Outcome::Exit(code),
            Started::Yield => {
                reactor::yield_now().await;
                Ok(0)
            }
            Started::Blocked(mut op) => {
                let shared = process.shared.clone();
                let waiting = poll_fn(|cx| poll_blocked(process, &mut op, cx));
                match blocking(&shared, waiting).await {
                    Some(result) => result,
                    None => return Outcome::Killed,
                }
            }
        },
    };
    note_handles(process);
    Outcome::Return(encode(result))
}

/// Answers the syscall the thread just made if it is quick: it never
/// waits, never prints and leaves the core's timers as they are, so the
/// thread can go straight back to ring 3 (interrupts stay off meanwhile:
/// one that came in is taken as soon as the thread is back in ring 3, and
/// brings it back to its task). The encoded `rax`, or `None` for a call
/// that goes through [`dispatch`]. A `ring_enter` is quick when every
/// submission it takes is ([`ring::enter_quick`]).
pub fn quick(process: &mut Process) -> Option<u64> {
    // The number alone first: the arguments are read only by the calls
    // that use them (under TCG every memory access costs).
    let number = process.context.syscall().0;
    let result = if number == Sys::RingEnter as u64 {
        let args = process.context.syscall().1;
        ring::enter_quick(process, args)?
    } else {
        match quick_op(process, number, |p| p.context.syscall().1) {
            Some(result) => result,
            None if Sys::from_number(number).is_none() => Err(Error::NoSys),
            None => return None,
        }
    };
    note_handles(process);
    Some(encode(result))
}

/// The quick operations (see [`quick`]), by syscall number; `None` for
/// the others and for unknown numbers. The two that are a load are
/// answered here, compared as numbers, inline in the ring's service loop
/// (no call, no jump table: under TCG each indirect jump is a lookup);
/// `args` gives the arguments to the operations that read them.
#[inline]
fn quick_op(
    process: &mut Process,
    number: u64,
    args: impl FnOnce(&Process) -> [u64; 6],
) -> Option<Result<u64, Error>> {
    if number == Sys::GetPid as u64 {
        return Some(Ok(u64::from(process.shared.pid)));
    }
    if number == Sys::Clock as u64 {
        return Some(Ok(time::uptime_ns()));
    }
    quick_call(process, number, args)
}

/// The other quick operations (their arguments are read only for them).
#[inline(never)]
fn quick_call(
    process: &mut Process,
    number: u64,
    args: impl FnOnce(&Process) -> [u64; 6],
) -> Option<Result<u64, Error>> {
    let sys = Sys::from_number(number)?;
    if !matches!(
        sys,
        Sys::Close | Sys::Channel | Sys::Send | Sys::ProcessInfo | Sys::Args
    ) {
        return None;
    }
    let args = args(process);
    Some(match sys {
        Sys::Close => close(process, args[0]),
        Sys::Channel => Channel::new().and_then(|c| insert(process, KernelObject::Channel(c))),
        Sys::Send => send(process, args),
        Sys::ProcessInfo => info(process, args[0]),
        Sys::Args => program_args(process, args[0], args[1]),
        _ => return None,
    })
}

/// Starts operation `sys` with `args` for `process`: checks every
/// argument, and does it unless it has to wait.
pub fn start(process: &mut Process, sys: Sys, args: [u64; 6]) -> Started {
    if let Some(result) = quick_op(process, sys as u64, |_| args) {
        return Started::Done(result);
    }
    let result = match sys {
        Sys::Exit => return Started::Exit(args[0] as i64),
        Sys::Write => write(process, args[0], args[1]),
        Sys::Yield => return Started::Yield,
        Sys::Sleep if args[0] > MAX_WAIT_NS => Err(Error::InvalidArgument),
        Sys::Sleep => {
            let sleep = reactor::sleep(Duration::from_nanos(args[0]));
            return Started::Blocked(Blocked::Sleep(sleep));
        }
        Sys::Recv => {
            let (handle, ptr, len) = (Handle::from_raw(args[0]), args[1], args[2]);
            match umem::check(&mut process.space, ptr, len, 1, true)
                .and_then(|()| process.handles.get(handle, HandleKind::Channel).map(drop))
            {
                Ok(()) => return Started::Blocked(Blocked::Recv { handle, ptr, len }),
                Err(error) => Err(error),
            }
        }
        // Not quick: its first deadline may come before the end of the
        // slice the core's timer is armed for.
        Sys::Timer if !(MIN_PERIOD_NS..=MAX_WAIT_NS).contains(&args[0]) => {
            Err(Error::InvalidArgument)
        }
        Sys::Timer => {
            let timer = reactor::interval(Duration::from_nanos(args[0]));
            insert(process, KernelObject::Timer(timer))
        }
        Sys::Wait => {
            let handle = Handle::from_raw(args[0]);
            match process.handles.get(handle, HandleKind::Timer) {
                Ok(_) => return Started::Blocked(Blocked::Wait(handle)),
                Err(error) => Err(error),
            }
        }
        Sys::WriteVectored => write_vectored(process, args[0], args[1]),
        Sys::RingSetup => ring::setup(process, args[0]),
        // Only as a syscall: through the ring it would wait on itself.
        Sys::RingEnter => Err(Error::InvalidArgument),
        Sys::GetPid
        | Sys::Clock
        | Sys::Close
        | Sys::Channel
        | Sys::Send
        | Sys::ProcessInfo
        | Sys::Args => unreachable_quick(),
        Sys::TcpListen
        | Sys::TcpAccept
        | Sys::TcpConnect
        | Sys::SockRead
        | Sys::SockWrite
        | Sys::TcpShutdown
        | Sys::UdpBind
        | Sys::UdpSendTo
        | Sys::UdpRecvFrom
        | Sys::TcpSetNodelay
        | Sys::SockLocalAddr
        | Sys::SockPeerAddr
        | Sys::PollRegister
        | Sys::PollDeregister
        | Sys::PollWait => return net::start(process, sys, args),
        Sys::DlogOpen | Sys::DlogAppend | Sys::DlogFlush | Sys::DlogRead | Sys::DlogInfo => {
            return disk::start(process, sys, args);
        }
    };
    Started::Done(result)
}

/// The result of a quick operation [`start`] did not answer through
/// [`quick_op`]: cannot happen (both lists are written side by side); an
/// error rather than a panic if they ever disagree.
fn unreachable_quick() -> Result<u64, Error> {
    debug_assert!(false, "a quick syscall missed quick_op");
    Err(Error::NoSys)
}

/// Publishes the process's handle count (for `ps`).
fn note_handles(process: &Process) {
    let handles = process.handles.len();
    process
        .shared
        .handles
        .store(handles, core::sync::atomic::Ordering::Relaxed);
}

/// `args(ptr, len)`: the program's arguments; their whole length.
fn program_args(process: &mut Process, ptr: u64, len: u64) -> Result<u64, Error> {
    umem::check(&mut process.space, ptr, len, 1, true)?;
    let bytes = process.args.clone().into_bytes();
    let copied = (bytes.len() as u64).min(len) as usize;
    umem::write(&mut process.space, ptr, &bytes[..copied], 1).map(|()| bytes.len() as u64)
}

/// Polls a waiting operation of `process`: its result once it is done.
pub fn poll_blocked(
    process: &mut Process,
    op: &mut Blocked,
    cx: &mut Context<'_>,
) -> Poll<Result<u64, Error>> {
    match op {
        Blocked::Sleep(sleep) => core::pin::Pin::new(sleep).poll(cx).map(|()| Ok(0)),
        Blocked::Recv { handle, ptr, len } => poll_recv(process, *handle, *ptr, *len, cx),
        Blocked::Wait(handle) => match process.handles.get(*handle, HandleKind::Timer) {
            Ok(KernelObject::Timer(timer)) => timer.poll_tick(cx).map(|_| Ok(1)),
            Ok(_) => Poll::Ready(Err(Error::WrongType)),
            Err(error) => Poll::Ready(Err(error)),
        },
        Blocked::PollWait {
            ptr,
            capacity,
            timeout,
        } => net::poll_wait_blocked(process, *ptr, *capacity, timeout, cx),
    }
}

/// `close(handle)`; closing the ring handle unmaps the rings.
fn close(process: &mut Process, handle: u64) -> Result<u64, Error> {
    if let KernelObject::Ring = process.handles.remove(Handle::from_raw(handle))? {
        ring::teardown(process);
    }
    Ok(0)
}

fn insert(process: &mut Process, object: KernelObject) -> Result<u64, Error> {
    process
        .handles
        .insert(object)
        .map(Handle::raw)
        .map_err(|(error, _)| error)
}

/// `write(ptr, len)`: to the console.
fn write(process: &mut Process, ptr: u64, len: u64) -> Result<u64, Error> {
    umem::check(&mut process.space, ptr, len, 1, false)?;
    if len > Sys::MAX_WRITE {
        return Err(Error::InvalidArgument);
    }
    let bytes = umem::read_vec(&mut process.space, ptr, len)?;
    crate::print!("{}", alloc::string::String::from_utf8_lossy(&bytes));
    Ok(len)
}

/// `writev(iov, count)`: the buffers of `count` [`IoVec`]s, in order.
fn write_vectored(process: &mut Process, iov: u64, count: u64) -> Result<u64, Error> {
    let size = umem::array_len(count, core::mem::size_of::<IoVec>() as u64)?;
    umem::check(&mut process.space, iov, size, 8, false)?;
    if count > Sys::MAX_IOVECS {
        return Err(Error::InvalidArgument);
    }
    let mut raw = vec![0u8; size as usize];
    umem::read(&mut process.space, iov, &mut raw, 8)?;
    let mut text: Vec<u8> = Vec::new();
    for entry in raw.as_chunks::<16>().0 {
        let (base, len) = entry.split_at(8);
        let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        let (base, len) = (word(base), word(len));
        umem::check(&mut process.space, base, len, 1, false)?;
        if (text.len() as u64).saturating_add(len) > Sys::MAX_WRITE {
            return Err(Error::InvalidArgument);
        }
        text.extend(umem::read_vec(&mut process.space, base, len)?);
    }
    crate::print!("{}", alloc::string::String::from_utf8_lossy(&text));
    Ok(text.len() as u64)
}

/// `info(ptr)`: a [`ProcessInfo`] for the caller.
fn info(process: &mut Process, ptr: u64) -> Result<u64, Error> {
    use core::sync::atomic::Ordering::Relaxed;
    let shared = &process.shared;
    let info = ProcessInfo {
        pid: u64::from(shared.pid),
        core: u64::from(shared.core.0),
        syscalls: shared.syscalls.load(Relaxed),
        handles: process.handles.len() as u64,
        cpu_ns: shared.cpu_ns.load(Relaxed),
        args_len: process.args.len() as u64,
    };
    let words = [
        info.pid,
        info.core,
        info.syscalls,
        info.handles,
        info.cpu_ns,
        info.args_len,
    ];
    let mut bytes = [0u8; core::mem::size_of::<ProcessInfo>()];
    for (chunk, word) in bytes.as_chunks_mut::<8>().0.iter_mut().zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    umem::write(&mut process.space, ptr, &bytes, 8).map(|()| 0)
}

/// `send(handle, ptr, len)`.
fn send(process: &mut Process, args: [u64; 6]) -> Result<u64, Error> {
    let handle = Handle::from_raw(args[0]);
    process.handles.get(handle, HandleKind::Channel)?;
    umem::check(&mut process.space, args[1], args[2], 1, false)?;
    if args[2] > Sys::MAX_MESSAGE as u64 {
        return Err(Error::InvalidArgument);
    }
    let message = umem::read_vec(&mut process.space, args[1], args[2])?;
    match process.handles.get(handle, HandleKind::Channel)? {
        KernelObject::Channel(channel) => channel.send(message).map(|()| 0),
        _ => Err(Error::WrongType),
    }
}

/// `recv(handle, ptr, len)`: the oldest message once there is one.
fn poll_recv(
    process: &mut Process,
    handle: Handle,
    ptr: u64,
    len: u64,
    cx: &mut Context<'_>,
) -> Poll<Result<u64, Error>> {
    let channel = match process.handles.get(handle, HandleKind::Channel) {
        Ok(KernelObject::Channel(channel)) => channel,
        Ok(_) => return Poll::Ready(Err(Error::WrongType)),
        Err(error) => return Poll::Ready(Err(error)),
    };
    let Poll::Ready(message) = channel.poll_next(cx) else {
        return Poll::Pending;
    };
    if message.len() as u64 > len {
        channel.put_back(message);
        return Poll::Ready(Err(Error::TooSmall));
    }
    let result = umem::write(&mut process.space, ptr, &message, 1).map(|()| message.len() as u64);
    if result.is_err()
        && let Ok(KernelObject::Channel(channel)) = process.handles.get(handle, HandleKind::Channel)
    {
        // The buffer went away meanwhile: the message is not lost.
        channel.put_back(message);
    }
    Poll::Ready(result)
}
