//! The socket calls: TCP listeners, TCP streams and UDP sockets of the
//! kernel's network stack (`crate::net`) behind a process's handles, and
//! readiness for them (`poll_register`, `poll_wait`; disk-log handles,
//! `super::disk`, register the same way).
//!
//! A user thread is pinned to its core, so every socket it makes lives on
//! that core, as the stack requires. Calls never wait: nothing to read,
//! no room, nothing to accept is [`Error::WouldBlock`]; readiness comes
//! from the process's `percore_poll::Poll` ([`Readiness`]): each socket
//! registered there reports edges (mio's semantics: readable, writable,
//! read/write closed, error) as its token, and `poll_wait` takes them —
//! at once if some are queued, else it waits (a [`Blocked::PollWait`])
//! until the queue's `Park::unpark` wakes the thread's task or the
//! timeout passes. Closing a handle (or the process ending) drops the
//! socket, which closes it on its core and frees its registration.
//!
//! Order of checks: the handle first (bad/stale/wrong type), then flags
//! and ranges, then user memory (`umem`), then the network.

use alloc::boxed::Box;
use alloc::vec;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::task::{Context, Poll};
use core::time::Duration;

use percore_abi::{Error, Handle, HandleKind, PollEvent, SockAddr, Sys};
use percore_poll::{Events, Interest, Source, Token};

use super::Blocked;
use super::{MAX_WAIT_NS, Started, insert};
use crate::net::{self, Shutdown, TcpListener, TcpStream, UdpSocket};
use crate::process::handle::HandleTable;
use crate::process::object::{Extension, KernelObject, Readiness};
use crate::process::{Process, umem};
use crate::reactor;

/// The largest UDP datagram `udp_send_to` takes (one Ethernet frame's
/// payload: no IP fragments).
pub const MAX_DATAGRAM: u64 = 1472;

/// A socket behind a handle.
pub enum Socket {
    Listener(TcpListener),
    Stream(TcpStream),
    Udp(UdpSocket),
}

impl Extension for Socket {
    fn kind(&self) -> HandleKind {
        match self {
            Socket::Listener(_) => HandleKind::TcpListener,
            Socket::Stream(_) => HandleKind::TcpStream,
            Socket::Udp(_) => HandleKind::UdpSocket,
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Socket {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Socket::Listener(l) => l,
            Socket::Stream(s) => s,
            Socket::Udp(u) => u,
        }
    }
}

/// The network's error as the ABI's.
pub fn error(e: net::Error) -> Error {
    match e {
        net::Error::WouldBlock => Error::WouldBlock,
        net::Error::WrongCore { .. } => Error::WrongCore,
        net::Error::AddrInUse => Error::AddrInUse,
        net::Error::AddrNotAvailable => Error::AddrNotAvailable,
        net::Error::ConnectionRefused => Error::ConnectionRefused,
        net::Error::ConnectionReset => Error::ConnectionReset,
        net::Error::TimedOut => Error::TimedOut,
        net::Error::NoBufferSpace => Error::Full,
        net::Error::NotConnected => Error::NotConnected,
        net::Error::BrokenPipe => Error::BrokenPipe,
        net::Error::InvalidInput => Error::InvalidArgument,
        net::Error::NoNetwork => Error::NoNetwork,
    }
}

fn word(addr: SocketAddr) -> u64 {
    match addr {
        SocketAddr::V4(a) => SockAddr::new(a.ip().octets(), a.port()).raw(),
        SocketAddr::V6(_) => 0,
    }
}

fn socket_addr(raw: u64) -> Result<SocketAddr, Error> {
    let addr = SockAddr::from_raw(raw).ok_or(Error::InvalidArgument)?;
    if addr.port() == 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(addr.ip()),
        addr.port(),
    )))
}

/// A port argument: 1 to 65535.
fn port(raw: u64) -> Result<SocketAddr, Error> {
    match u16::try_from(raw) {
        Ok(port) if port != 0 => Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::UNSPECIFIED,
            port,
        ))),
        _ => Err(Error::InvalidArgument),
    }
}

/// The socket a handle table entry holds.
fn as_socket(object: &mut KernelObject) -> Result<&mut Socket, Error> {
    match object {
        KernelObject::Ext(ext) => ext
            .as_any_mut()
            .downcast_mut::<Socket>()
            .ok_or(Error::WrongType),
        _ => Err(Error::WrongType),
    }
}

/// The socket `handle` names, if it is of kind `kind`.
fn socket(process: &mut Process, handle: u64, kind: HandleKind) -> Result<&mut Socket, Error> {
    as_socket(process.handles.get(Handle::from_raw(handle), kind)?)
}

/// The socket `handle` names, whatever its kind.
fn any_socket(process: &mut Process, handle: u64) -> Result<&mut Socket, Error> {
    as_socket(process.handles.get_any(Handle::from_raw(handle))?)
}

fn stream(process: &mut Process, handle: u64) -> Result<&mut TcpStream, Error> {
    match socket(process, handle, HandleKind::TcpStream)? {
        Socket::Stream(s) => Ok(s),
        _ => Err(Error::WrongType),
    }
}

fn udp(process: &mut Process, handle: u64) -> Result<&mut UdpSocket, Error> {
    match socket(process, handle, HandleKind::UdpSocket)? {
        Socket::Udp(u) => Ok(u),
        _ => Err(Error::WrongType),
    }
}

fn insert_socket(process: &mut Process, socket: Socket) -> Result<u64, Error> {
    insert(process, KernelObject::Ext(Box::new(socket)))
}

fn network() -> Result<(), Error> {
    net::init().map_err(error)
}

/// Starts socket call `sys` (one of the socket numbers) with `args`.
pub fn start(process: &mut Process, sys: Sys, args: [u64; 6]) -> Started {
    let result = match sys {
        Sys::TcpListen => listen(args[0], args[1]).and_then(|s| insert_socket(process, s)),
        Sys::TcpAccept => accept(process, args[0]),
        Sys::TcpConnect => socket_addr(args[0])
            .and_then(|addr| {
                network()?;
                TcpStream::connect(addr).map_err(error)
            })
            .and_then(|s| insert_socket(process, Socket::Stream(s))),
        Sys::SockRead => read(process, args[0], args[1], args[2]),
        Sys::SockWrite => write(process, args[0], args[1], args[2]),
        Sys::TcpShutdown => {
            let how = match args[1] {
                1 => Ok(Shutdown::Read),
                2 => Ok(Shutdown::Write),
                3 => Ok(Shutdown::Both),
                _ => Err(Error::InvalidArgument),
            };
            stream(process, args[0])
                .and_then(|s| how.and_then(|how| s.shutdown(how).map_err(error)))
                .map(|()| 0)
        }
        Sys::UdpBind => bind(args[0], args[1]).and_then(|s| insert_socket(process, s)),
        Sys::UdpSendTo => send_to(process, args),
        Sys::UdpRecvFrom => recv_from(process, args),
        Sys::TcpSetNodelay => stream(process, args[0]).and_then(|s| match args[1] {
            0 | 1 => s.set_nodelay(args[1] == 1).map(|()| 0).map_err(error),
            _ => Err(Error::InvalidArgument),
        }),
        Sys::SockLocalAddr => any_socket(process, args[0]).and_then(|s| {
            let addr = match s {
                Socket::Listener(l) => l.local_addr(),
                Socket::Stream(s) => s.local_addr(),
                Socket::Udp(u) => u.local_addr(),
            };
            addr.map(word).map_err(error)
        }),
        Sys::SockPeerAddr => {
            stream(process, args[0]).and_then(|s| s.peer_addr().map(word).map_err(error))
        }
        Sys::PollRegister => register(process, args[0], args[1], args[2]),
        Sys::PollDeregister => deregister(process, args[0]),
        Sys::PollWait => return poll_wait(process, args[0], args[1], args[2]),
        _ => Err(Error::NoSys),
    };
    Started::Done(result)
}

fn listen(port_arg: u64, flags: u64) -> Result<Socket, Error> {
    if flags != 0 {
        return Err(Error::InvalidArgument);
    }
    let addr = port(port_arg)?;
    network()?;
    TcpListener::bind(addr).map(Socket::Listener).map_err(error)
}

fn bind(port_arg: u64, flags: u64) -> Result<Socket, Error> {
    if flags != 0 {
        return Err(Error::InvalidArgument);
    }
    let addr = port(port_arg)?;
    network()?;
    UdpSocket::bind(addr).map(Socket::Udp).map_err(error)
}

fn accept(process: &mut Process, handle: u64) -> Result<u64, Error> {
    let Socket::Listener(listener) = socket(process, handle, HandleKind::TcpListener)? else {
        return Err(Error::WrongType);
    };
    let (stream, _) = listener.accept().map_err(error)?;
    insert_socket(process, Socket::Stream(stream))
}

/// `sock_read(stream, ptr, len)`.
fn read(process: &mut Process, handle: u64, ptr: u64, len: u64) -> Result<u64, Error> {
    stream(process, handle)?;
    umem::check(&mut process.space, ptr, len, 1, true)?;
    let mut buffer = vec![0u8; len.min(Sys::MAX_IO) as usize];
    let n = embedded_io::Read::read(stream(process, handle)?, &mut buffer).map_err(error)?;
    umem::write(&mut process.space, ptr, &buffer[..n], 1)?;
    Ok(n as u64)
}

/// `sock_write(stream, ptr, len)`.
fn write(process: &mut Process, handle: u64, ptr: u64, len: u64) -> Result<u64, Error> {
    stream(process, handle)?;
    umem::check(&mut process.space, ptr, len, 1, false)?;
    let bytes = umem::read_vec(&mut process.space, ptr, len.min(Sys::MAX_IO))?;
    let n = embedded_io::Write::write(stream(process, handle)?, &bytes).map_err(error)?;
    Ok(n as u64)
}

/// `udp_send_to(socket, ptr, len, addr)`.
fn send_to(process: &mut Process, args: [u64; 6]) -> Result<u64, Error> {
    let (handle, ptr, len) = (args[0], args[1], args[2]);
    udp(process, handle)?;
    let target = socket_addr(args[3])?;
    umem::check(&mut process.space, ptr, len, 1, false)?;
    if len > MAX_DATAGRAM {
        return Err(Error::InvalidArgument);
    }
    let bytes = umem::read_vec(&mut process.space, ptr, len)?;
    let n = udp(process, handle)?
        .send_to(&bytes, target)
        .map_err(error)?;
    Ok(n as u64)
}

/// `udp_recv_from(socket, ptr, len, addr_ptr)`.
fn recv_from(process: &mut Process, args: [u64; 6]) -> Result<u64, Error> {
    let (handle, ptr, len, addr_ptr) = (args[0], args[1], args[2], args[3]);
    udp(process, handle)?;
    umem::check(&mut process.space, ptr, len, 1, true)?;
    umem::check(&mut process.space, addr_ptr, 8, 8, true)?;
    let mut buffer = vec![0u8; len.min(Sys::MAX_IO) as usize];
    let (n, from) = udp(process, handle)?
        .recv_from(&mut buffer)
        .map_err(error)?;
    umem::write(&mut process.space, ptr, &buffer[..n], 1)?;
    umem::write(&mut process.space, addr_ptr, &word(from).to_le_bytes(), 8)?;
    Ok(n as u64)
}

fn readiness(process: &mut Process) -> Result<&mut Readiness, Error> {
    if process.readiness.is_none() {
        process.readiness = Some(Readiness::new()?);
    }
    process.readiness.as_mut().ok_or(Error::NoMemory)
}

fn poll_error(e: percore_poll::Error) -> Error {
    match e {
        percore_poll::Error::Full => Error::NoHandles,
        percore_poll::Error::ForeignRegistry => Error::WrongCore,
        _ => Error::InvalidArgument,
    }
}

/// What `handle` names as a readiness source: a socket, or a disk log
/// (`super::disk`).
fn source(handles: &mut HandleTable<KernelObject>, handle: u64) -> Result<&mut dyn Source, Error> {
    let object = handles.get_any(Handle::from_raw(handle))?;
    if matches!(object, KernelObject::Ext(ext) if ext.kind() == HandleKind::DiskLog) {
        return super::disk::as_source(object).ok_or(Error::WrongType);
    }
    as_socket(object).map(Socket::source)
}

/// `poll_register(handle, token, interest)`.
fn register(process: &mut Process, handle: u64, token: u64, interest: u64) -> Result<u64, Error> {
    source(&mut process.handles, handle)?;
    let interest = match interest {
        1 => Interest::READABLE,
        2 => Interest::WRITABLE,
        3 => Interest::READABLE | Interest::WRITABLE,
        _ => return Err(Error::InvalidArgument),
    };
    let token = Token(token as usize);
    readiness(process)?;
    let Some(readiness) = process.readiness.as_ref() else {
        return Err(Error::NoMemory);
    };
    let registry = readiness.poll.registry();
    let source = source(&mut process.handles, handle)?;
    match source.register(registry, token, interest) {
        Err(percore_poll::Error::AlreadyRegistered) => source
            .reregister(registry, token, interest)
            .map_err(poll_error),
        other => other.map_err(poll_error),
    }
    .map(|()| 0)
}

/// `poll_deregister(handle)`.
fn deregister(process: &mut Process, handle: u64) -> Result<u64, Error> {
    source(&mut process.handles, handle)?;
    let Some(readiness) = process.readiness.as_ref() else {
        return Err(Error::InvalidArgument);
    };
    let registry = readiness.poll.registry();
    let source = source(&mut process.handles, handle)?;
    source.deregister(registry).map_err(poll_error).map(|()| 0)
}

/// `poll_wait(ptr, capacity, timeout_ns)`: checks its arguments, takes
/// queued events at once, else waits ([`poll_wait_blocked`]).
fn poll_wait(process: &mut Process, ptr: u64, capacity: u64, timeout: u64) -> Started {
    let checked = (|| {
        if capacity == 0 || capacity > Sys::MAX_EVENTS {
            return Err(Error::InvalidArgument);
        }
        if timeout != u64::MAX && timeout > MAX_WAIT_NS {
            return Err(Error::InvalidArgument);
        }
        let size = umem::array_len(capacity, core::mem::size_of::<PollEvent>() as u64)?;
        umem::check(&mut process.space, ptr, size, 8, true)?;
        readiness(process).map(drop)
    })();
    if let Err(e) = checked {
        return Started::Done(Err(e));
    }
    match take(process, ptr, capacity) {
        Ok(0) if timeout != 0 => {
            let timeout =
                (timeout != u64::MAX).then(|| reactor::sleep(Duration::from_nanos(timeout)));
            Started::Blocked(Blocked::PollWait {
                ptr,
                capacity,
                timeout,
            })
        }
        result => Started::Done(result),
    }
}

/// Moves up to `capacity` queued events to user memory at `ptr`.
fn take(process: &mut Process, ptr: u64, capacity: u64) -> Result<u64, Error> {
    let readiness = readiness(process)?;
    let mut events = Events::with_capacity(capacity as usize);
    readiness
        .poll
        .poll(&mut events, Some(Duration::ZERO))
        .map_err(poll_error)?;
    let mut bytes = vec![];
    for event in events.iter() {
        bytes.extend_from_slice(&(event.token().0 as u64).to_le_bytes());
        bytes.extend_from_slice(&u64::from(event.readiness().bits()).to_le_bytes());
    }
    umem::write(&mut process.space, ptr, &bytes, 8)?;
    Ok((bytes.len() / 16) as u64)
}

/// Polls a waiting `poll_wait`: its events once some are queued, 0 once
/// the timeout passed.
pub fn poll_wait_blocked(
    process: &mut Process,
    ptr: u64,
    capacity: u64,
    timeout: &mut Option<reactor::Sleep>,
    cx: &mut Context<'_>,
) -> Poll<Result<u64, Error>> {
    let readiness = match readiness(process) {
        Ok(r) => r,
        Err(e) => return Poll::Ready(Err(e)),
    };
    readiness.poll.end_sleep();
    *readiness.waker.lock() = Some(cx.waker().clone());
    match take(process, ptr, capacity) {
        Ok(0) => {}
        result => return Poll::Ready(result),
    }
    if let Some(sleep) = timeout
        && core::pin::Pin::new(sleep).poll(cx).is_ready()
    {
        return Poll::Ready(Ok(0));
    }
    let Some(readiness) = process.readiness.as_ref() else {
        return Poll::Ready(Err(Error::NoMemory));
    };
    if !readiness.poll.prepare_sleep() {
        // Readiness came between the look and the announcement (or a
        // signaller is half-way through queueing it): look again after
        // the core's other tasks had a turn, never in a loop here.
        readiness.poll.end_sleep();
        cx.waker().wake_by_ref();
    }
    Poll::Pending
}
