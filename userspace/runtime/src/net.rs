//! Sockets with mio's names over the socket calls: [`TcpListener`],
//! [`TcpStream`], [`UdpSocket`]. Every call is non-blocking
//! ([`Error::WouldBlock`]: wait for the next event); register a socket
//! with the runtime's [`Registry`](crate::poll::Registry) to hear of
//! readiness. Dropping a socket closes its handle. The kernel makes each
//! socket on the caller's core (a server on every core is one process per
//! core).
//!
//! ```ignore
//! let mut listener = TcpListener::bind(7)?;
//! poll.registry().register(&mut listener, Token(0), Interest::READABLE)?;
//! ```

use percore_abi::{Error, Handle, SockAddr, Sys, decode};

use crate::sys::{self, call, syscall3, syscall4};

fn close(handle: Handle) {
    let _ = sys::close(handle);
}

/// A listening TCP port on this core.
#[derive(Debug)]
pub struct TcpListener(Handle);

impl TcpListener {
    /// Listens on `port` (on every address of the interface).
    pub fn bind(port: u16) -> Result<TcpListener, Error> {
        call(Sys::TcpListen, u64::from(port), 0, 0).map(|h| TcpListener(Handle::from_raw(h)))
    }

    /// A connection that arrived, with its peer's address.
    pub fn accept(&self) -> Result<(TcpStream, SockAddr), Error> {
        let stream =
            call(Sys::TcpAccept, self.0.raw(), 0, 0).map(|h| TcpStream(Handle::from_raw(h)))?;
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    pub fn local_addr(&self) -> Result<SockAddr, Error> {
        addr(call(Sys::SockLocalAddr, self.0.raw(), 0, 0)?)
    }

    pub fn handle(&self) -> Handle {
        self.0
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        close(self.0);
    }
}

fn addr(raw: u64) -> Result<SockAddr, Error> {
    SockAddr::from_raw(raw).ok_or(Error::Unknown)
}

/// How to shut a connection down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Read = 1,
    Write = 2,
    Both = 3,
}

/// A TCP connection.
#[derive(Debug)]
pub struct TcpStream(Handle);

impl TcpStream {
    /// Starts connecting to `addr`: the stream is writable once connected
    /// (a refusal is an error event, then the error of the next call).
    pub fn connect(addr: SockAddr) -> Result<TcpStream, Error> {
        call(Sys::TcpConnect, addr.raw(), 0, 0).map(|h| TcpStream(Handle::from_raw(h)))
    }

    /// What arrived (0: the peer closed its side).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        decode(unsafe {
            syscall3(
                Sys::SockRead as u64,
                self.0.raw(),
                buf.as_mut_ptr() as u64,
                buf.len() as u64,
            )
        })
        .map(|n| n as usize)
    }

    /// Queues what fits of `buf`.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        call(
            Sys::SockWrite,
            self.0.raw(),
            buf.as_ptr() as u64,
            buf.len() as u64,
        )
        .map(|n| n as usize)
    }

    pub fn shutdown(&self, how: Shutdown) -> Result<(), Error> {
        call(Sys::TcpShutdown, self.0.raw(), how as u64, 0).map(drop)
    }

    pub fn set_nodelay(&self, nodelay: bool) -> Result<(), Error> {
        call(Sys::TcpSetNodelay, self.0.raw(), u64::from(nodelay), 0).map(drop)
    }

    pub fn peer_addr(&self) -> Result<SockAddr, Error> {
        addr(call(Sys::SockPeerAddr, self.0.raw(), 0, 0)?)
    }

    pub fn local_addr(&self) -> Result<SockAddr, Error> {
        addr(call(Sys::SockLocalAddr, self.0.raw(), 0, 0)?)
    }

    pub fn handle(&self) -> Handle {
        self.0
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        close(self.0);
    }
}

/// A bound UDP port on this core.
#[derive(Debug)]
pub struct UdpSocket(Handle);

impl UdpSocket {
    pub fn bind(port: u16) -> Result<UdpSocket, Error> {
        call(Sys::UdpBind, u64::from(port), 0, 0).map(|h| UdpSocket(Handle::from_raw(h)))
    }

    /// Queues one datagram to `target` ([`Error::Full`]: no room now).
    pub fn send_to(&self, buf: &[u8], target: SockAddr) -> Result<usize, Error> {
        // SAFETY: the kernel only reads `buf`.
        decode(unsafe {
            syscall4(
                Sys::UdpSendTo as u64,
                self.0.raw(),
                buf.as_ptr() as u64,
                buf.len() as u64,
                target.raw(),
            )
        })
        .map(|n| n as usize)
    }

    /// One datagram (cut to `buf`) and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SockAddr), Error> {
        let mut from = 0u64;
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`
        // and one word into `from`.
        let n = decode(unsafe {
            syscall4(
                Sys::UdpRecvFrom as u64,
                self.0.raw(),
                buf.as_mut_ptr() as u64,
                buf.len() as u64,
                &raw mut from as u64,
            )
        })?;
        Ok((n as usize, addr(from)?))
    }

    pub fn local_addr(&self) -> Result<SockAddr, Error> {
        addr(call(Sys::SockLocalAddr, self.0.raw(), 0, 0)?)
    }

    pub fn handle(&self) -> Handle {
        self.0
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        close(self.0);
    }
}
