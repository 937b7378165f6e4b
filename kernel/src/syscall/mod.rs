//! The syscall layer: the ABI of `percore-abi` on top of processes.
//!
//! A user thread is a task of its core's reactor ([`thread`]): polling it
//! enters ring 3 until the thread traps back; a syscall is then handled
//! here, in the task, as ordinary async kernel code ([`dispatch`]) — a
//! call that blocks (sleep, receive, timer wait) awaits, which returns the
//! task to the reactor, and the core runs its other tasks meanwhile.
//!
//! Every argument is hostile: pointers go through `process::umem`'s
//! checked copies, handles through the process's handle table, lengths
//! and counts are bounded; each bad argument is an `Error` code in `rax`,
//! never a panic.

pub mod thread;

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use percore_abi::{Error, Handle, HandleKind, IoVec, ProcessInfo, Sys, encode};

use crate::process::object::{Channel, KernelObject};
use crate::process::{Process, blocking, umem};
use crate::reactor;
use crate::time;

pub use thread::{spawn, spawn_image};

/// What a syscall left the thread to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go back to user mode with this `rax`.
    Return(u64),
    /// The process called `exit(code)`.
    Exit(i64),
    /// The process was killed while the call blocked.
    Killed,
}

/// The longest a `sleep` or a timer period may be (one day).
const MAX_WAIT_NS: u64 = 86_400 * 1_000_000_000;
/// The shortest timer period (10 µs).
const MIN_PERIOD_NS: u64 = 10_000;

/// Handles the syscall the process's thread just made.
pub async fn dispatch(process: &mut Process) -> Outcome {
    let (number, args) = process.context.syscall();
    let Some(sys) = Sys::from_number(number) else {
        return Outcome::Return(encode(Err(Error::NoSys)));
    };
    let result = match sys {
        Sys::Exit => return Outcome::Exit(args[0] as i64),
        Sys::Write => write(process, args[0], args[1]),
        Sys::Yield => {
            reactor::yield_now().await;
            Ok(0)
        }
        Sys::GetPid => Ok(u64::from(process.shared.pid)),
        Sys::Clock => Ok(time::uptime_ns()),
        Sys::Sleep => {
            if args[0] > MAX_WAIT_NS {
                Err(Error::InvalidArgument)
            } else {
                let shared = process.shared.clone();
                match blocking(&shared, reactor::sleep(Duration::from_nanos(args[0]))).await {
                    Some(()) => Ok(0),
                    None => return Outcome::Killed,
                }
            }
        }
        Sys::Close => process.handles.remove(Handle::from_raw(args[0])).map(|_| 0),
        Sys::Channel => Channel::new().and_then(|c| insert(process, KernelObject::Channel(c))),
        Sys::Send => send(process, args),
        Sys::Recv => match recv(process, args).await {
            Some(result) => result,
            None => return Outcome::Killed,
        },
        Sys::Timer => {
            if !(MIN_PERIOD_NS..=MAX_WAIT_NS).contains(&args[0]) {
                Err(Error::InvalidArgument)
            } else {
                let timer = reactor::interval(Duration::from_nanos(args[0]));
                insert(process, KernelObject::Timer(timer))
            }
        }
        Sys::Wait => match wait(process, args[0]).await {
            Some(result) => result,
            None => return Outcome::Killed,
        },
        Sys::WriteVectored => write_vectored(process, args[0], args[1]),
        Sys::ProcessInfo => info(process, args[0]),
        Sys::Args => umem::check(&mut process.space, args[0], args[1], 1, true).and_then(|()| {
            let bytes = process.args.clone().into_bytes();
            let len = (bytes.len() as u64).min(args[1]) as usize;
            umem::write(&mut process.space, args[0], &bytes[..len], 1).map(|()| bytes.len() as u64)
        }),
        Sys::RingSetup | Sys::RingEnter => Err(Error::Unsupported),
    };
    let handles = process.handles.len();
    process
        .shared
        .handles
        .store(handles, core::sync::atomic::Ordering::Relaxed);
    Outcome::Return(encode(result))
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
        KernelObject::Timer(_) => Err(Error::WrongType),
    }
}

/// `recv(handle, ptr, len)`: blocks until a message comes (`None`: killed).
async fn recv(process: &mut Process, args: [u64; 6]) -> Option<Result<u64, Error>> {
    let handle = Handle::from_raw(args[0]);
    let (ptr, len) = (args[1], args[2]);
    if let Err(error) = umem::check(&mut process.space, ptr, len, 1, true) {
        return Some(Err(error));
    }
    let shared = process.shared.clone();
    let channel = match process.handles.get(handle, HandleKind::Channel) {
        Ok(KernelObject::Channel(channel)) => channel,
        Ok(KernelObject::Timer(_)) => return Some(Err(Error::WrongType)),
        Err(error) => return Some(Err(error)),
    };
    let message = blocking(&shared, channel.next()).await?;
    if message.len() as u64 > len {
        channel.put_back(message);
        return Some(Err(Error::TooSmall));
    }
    let result = umem::write(&mut process.space, ptr, &message, 1).map(|()| message.len() as u64);
    if result.is_err()
        && let Ok(KernelObject::Channel(channel)) = process.handles.get(handle, HandleKind::Channel)
    {
        // The buffer went away meanwhile: the message is not lost.
        channel.put_back(message);
    }
    Some(result)
}

/// `wait(timer)`: blocks until the timer's next expiry (`None`: killed).
async fn wait(process: &mut Process, handle: u64) -> Option<Result<u64, Error>> {
    let shared = process.shared.clone();
    match process
        .handles
        .get(Handle::from_raw(handle), HandleKind::Timer)
    {
        Ok(KernelObject::Timer(timer)) => blocking(&shared, timer.tick()).await.map(|_| Ok(1)),
        Ok(KernelObject::Channel(_)) => Some(Err(Error::WrongType)),
        Err(error) => Some(Err(error)),
    }
}
