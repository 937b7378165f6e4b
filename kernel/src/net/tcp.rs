//! TCP sockets with mio's names: [`TcpListener`] and [`TcpStream`].
//!
//! A socket belongs to the core that created it: every call checks the
//! core and returns [`Error::WrongCore`] elsewhere (nothing is forwarded;
//! dropping one on another core asks its core to close it). Calls never
//! wait: [`Error::WouldBlock`] says to wait for readiness, which comes as
//! `percore_poll` events (register the socket with a `Registry` under a
//! `Token`) or through the async wrappers (`embedded_io_async::Read` /
//! `Write`, [`TcpListener::accept_async`], [`TcpListener::incoming`],
//! [`TcpStream::connect_async`]).
//!
//! A listening port is open on one core per [`TcpListener::bind`]; a
//! server listens on every core (one listener per core, like
//! `SO_REUSEPORT`), since each connection is steered to the core its flow
//! hashes to. [`TcpStream::connect`] picks a local port whose replies hash
//! back to this core.
//!
//! Defaults ([`Options::default`]), chosen for request/response traffic:
//! Nagle off (`nodelay`), no delayed ACK (smoltcp's default 10 ms delay
//! capped request rates), 8 KiB receive and 8 KiB send buffers per
//! connection while data flows. Buffers are lent on demand
//! ([`super::buffers`]): an idle connection holds a 1 KiB receive buffer
//! and no send buffer (a vendored smoltcp lets a running socket's buffers
//! be replaced). An idle connection costs that buffer, about 1.3 KB of
//! smoltcp state, bookkeeping and its task: the echo sample holds no read
//! buffer while idle ([`TcpStream::readable`]), about 2.9 KB per idle echo
//! connection in all (`bench net`'s `idle_conn` row; the tests
//! `net_idle_echo_connection_bytes` and
//! `net_streamed_connections_give_buffers_back` bound it). A
//! backlog of 16 listening sockets per listener
//! and core, kept topped up by the net task (so a burst of SYNs finds
//! listening sockets rather than resets) with at most 32 connections
//! waiting to be accepted.

use alloc::vec;
use core::future::poll_fn;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll};
use core::time::Duration;

use futures_core::Stream;
use percore_poll::{Interest, Ready, Registration, Registry, Source, Token};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::buffers::Demand;
use super::shard::{self, Kind, Listener, Meta, Shard, Stats, acceptable};
use super::steer::port_for;
use super::{Error, Result};
use crate::arch::{CoreId, cpu};
use crate::time::Clock;

/// A connection request not answered within this long fails with
/// [`Error::TimedOut`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const CONNECT_TIMEOUT_NS: u64 = CONNECT_TIMEOUT.as_nanos() as u64;
/// A connection request a listener took and the peer did not complete
/// within this long is given up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-socket settings, given at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub recv_buffer: usize,
    pub send_buffer: usize,
    /// Nagle's algorithm off.
    pub nodelay: bool,
    /// Delayed ACK (`None`: every segment acknowledged at once).
    pub ack_delay: Option<Duration>,
    /// Listening sockets per listener (connections that can be waiting
    /// to be accepted, on this core).
    pub backlog: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            recv_buffer: 8 * 1024,
            send_buffer: 8 * 1024,
            nodelay: true,
            ack_delay: None,
            backlog: 16,
        }
    }
}

/// How to shut a connection down ([`TcpStream::shutdown`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// No more reads (what arrives is discarded).
    Read,
    /// No more writes: sends FIN after the queued data.
    Write,
    Both,
}

fn v4(addr: SocketAddr) -> Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(Error::InvalidInput),
    }
}

fn endpoint_addr(e: IpEndpoint) -> SocketAddr {
    let IpAddress::Ipv4(ip) = e.addr;
    SocketAddr::V4(SocketAddrV4::new(ip, e.port))
}

/// `ready` without the bits of `bits`.
pub(super) fn without(ready: Ready, bits: Ready) -> Ready {
    Ready::from_bits(ready.bits() & !bits.bits())
}

fn smol(d: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(d.as_micros() as u64)
}

fn new_socket(options: &Options) -> tcp::Socket<'static> {
    // Small buffers until data flows (`buffers`).
    let (rx, tx) = super::buffers::new_socket_buffers(options);
    let mut socket = tcp::Socket::new(rx, tx);
    socket.set_nagle_enabled(!options.nodelay);
    socket.set_ack_delay(options.ack_delay.map(smol));
    socket
}

/// Whether a socket call that found smoltcp's socket in an invalid state
/// came too early (the handshake is under way: wait) rather than too late.
fn connecting(socket: &tcp::Socket<'static>) -> bool {
    matches!(
        socket.state(),
        tcp::State::SynSent | tcp::State::SynReceived
    )
}

/// Why a connection can no longer be read or written: the failure it
/// ended with, else [`Error::NotConnected`].
fn connection_error(m: &Meta) -> Error {
    m.error
        .filter(|e| *e != Error::NotConnected)
        .unwrap_or(Error::NotConnected)
}

/// A socket call's outcome (the shard's, then the call's) as a poll:
/// [`Error::WouldBlock`] is pending (the waker was registered), anything
/// else is ready.
fn pending_if_would_block<T>(result: Result<Result<T>>) -> Poll<Result<T>> {
    match result {
        Ok(Err(Error::WouldBlock)) => Poll::Pending,
        Ok(r) => Poll::Ready(r),
        Err(e) => Poll::Ready(Err(e)),
    }
}

/// A listening TCP port on one core.
pub struct TcpListener {
    core: CoreId,
    port: u16,
    registration: Registration,
}

impl TcpListener {
    /// Listens on `addr`'s port on this core (the address must be
    /// unspecified or this interface's: 0.0.0.0 is the usual). A port
    /// already listened on on this core is [`Error::AddrInUse`].
    pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
        Self::bind_with(addr, Options::default())
    }

    /// [`bind`](Self::bind) with settings for the accepted connections.
    pub fn bind_with(addr: SocketAddr, options: Options) -> Result<TcpListener> {
        let addr = v4(addr)?;
        let port = addr.port();
        if port == 0 || options.backlog == 0 {
            return Err(Error::InvalidInput);
        }
        let core = cpu::core_id();
        shard::with(core, |s, stats| {
            if !addr.ip().is_unspecified() && s.ipv4() != Some(*addr.ip()) {
                return Err(Error::AddrNotAvailable);
            }
            if s.tcp_port_in_use(port) {
                return Err(Error::AddrInUse);
            }
            let mut backlog = vec![];
            for _ in 0..options.backlog {
                backlog.push(listen(s, port, &options)?);
            }
            s.listeners.insert(
                port,
                Listener {
                    backlog,
                    options,
                    signal: None,
                    waker: None,
                },
            );
            stats.listeners.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })??;
        Ok(TcpListener {
            core,
            port,
            registration: Registration::new(),
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::UNSPECIFIED,
            self.port,
        )))
    }

    /// The core this listener belongs to.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// A connection that has arrived, or [`Error::WouldBlock`].
    pub fn accept(&mut self) -> Result<(TcpStream, SocketAddr)> {
        let port = self.port;
        shard::with(self.core, |s, stats| accept(s, port, stats, None))?
    }

    /// Waits for the next connection.
    pub async fn accept_async(&mut self) -> Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// [`accept`](Self::accept), registering `cx` to hear of the next one.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Result<(TcpStream, SocketAddr)>> {
        let port = self.port;
        pending_if_would_block(shard::with(self.core, |s, stats| {
            accept(s, port, stats, Some(cx))
        }))
    }

    /// The incoming connections as a stream (endless; errors are items).
    pub fn incoming(&mut self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

/// A listening socket on `port` (the backlog's).
fn listen(s: &mut Shard, port: u16, options: &Options) -> Result<SocketHandle> {
    listen_in(&mut s.sockets, port, options)
}

/// A listening socket on `port` in `sockets`.
pub(super) fn listen_in(
    sockets: &mut smoltcp::iface::SocketSet<'static>,
    port: u16,
    options: &Options,
) -> Result<SocketHandle> {
    let mut socket = new_socket(options);
    // A handshake the peer does not complete ends (a SYN flood's
    // half-open connections do not hold the backlog).
    socket.set_timeout(Some(smol(HANDSHAKE_TIMEOUT)));
    socket
        .listen(IpListenEndpoint { addr: None, port })
        .map_err(|_| Error::InvalidInput)?;
    Ok(sockets.add(socket))
}

fn accept(
    s: &mut Shard,
    port: u16,
    stats: &Stats,
    cx: Option<&mut Context<'_>>,
) -> Result<(TcpStream, SocketAddr)> {
    let core = s.core;
    let Some(listener) = s.listeners.get_mut(&port) else {
        return Err(Error::NotConnected);
    };
    let found = listener
        .backlog
        .iter()
        .position(|&h| acceptable(s.sockets.get::<tcp::Socket>(h)));
    let Some(index) = found else {
        if let Some(cx) = cx {
            listener.waker = Some(cx.waker().clone());
        }
        return Err(Error::WouldBlock);
    };
    // The net task's turn keeps the backlog's listening sockets topped up.
    let handle = listener.backlog.swap_remove(index);
    let options = listener.options;
    let peer = s
        .sockets
        .get::<tcp::Socket>(handle)
        .remote_endpoint()
        .map(endpoint_addr)
        .ok_or(Error::NotConnected)?;
    // The handshake's timeout ends with it.
    s.sockets.get_mut::<tcp::Socket>(handle).set_timeout(None);
    let mut meta = Meta::new(Kind::Tcp);
    meta.demand = Demand::new(&options);
    meta.established = true;
    s.metas.insert(handle, meta);
    stats.tcp_open.fetch_add(1, Ordering::Relaxed);
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    s.dirty = true;
    Ok((TcpStream::new(core, handle), peer))
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        shard::close(self.core, shard::Dropped::Listener(self.port));
    }
}

impl Source for TcpListener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> percore_poll::Result<()> {
        shard::check_core(self.core)?;
        self.registration.register(registry, token, interests)?;
        let signal = self.registration.signal().cloned();
        let port = self.port;
        let _ = shard::with(self.core, |s, _| {
            if let Some(listener) = s.listeners.get_mut(&port) {
                listener.signal = signal;
            }
            // Like epoll: a listener already holding a connection reports it.
            s.dirty = true;
        });
        Ok(())
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> percore_poll::Result<()> {
        shard::check_core(self.core)?;
        self.registration.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> percore_poll::Result<()> {
        shard::check_core(self.core)?;
        let port = self.port;
        let _ = shard::with(self.core, |s, _| {
            if let Some(listener) = s.listeners.get_mut(&port) {
                listener.signal = None;
            }
        });
        self.registration.deregister(registry)
    }
}

/// The stream of a listener's connections ([`TcpListener::incoming`]).
pub struct Incoming<'a> {
    listener: &'a mut TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<TcpStream>>> {
        self.get_mut()
            .listener
            .poll_accept(cx)
            .map(|r| Some(r.map(|(stream, _)| stream)))
    }
}

/// A TCP connection on one core.
pub struct TcpStream {
    core: CoreId,
    handle: SocketHandle,
    registration: Registration,
}

impl TcpStream {
    fn new(core: CoreId, handle: SocketHandle) -> TcpStream {
        TcpStream {
            core,
            handle,
            registration: Registration::new(),
        }
    }

    /// Starts connecting to `addr` from this core (mio's non-blocking
    /// connect: the stream becomes writable once connected; a refusal is
    /// an error event and [`take_error`](Self::take_error)).
    pub fn connect(addr: SocketAddr) -> Result<TcpStream> {
        Self::connect_with(addr, Options::default())
    }

    /// [`connect`](Self::connect) with settings.
    pub fn connect_with(addr: SocketAddr, options: Options) -> Result<TcpStream> {
        let addr = v4(addr)?;
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return Err(Error::InvalidInput);
        }
        let core = cpu::core_id();
        let cores = shard::slots().len();
        let handle = shard::with(core, |s, stats| {
            let local = s.ipv4().ok_or(Error::AddrNotAvailable)?;
            let port = port_for(
                addr.ip().octets(),
                addr.port(),
                local.octets(),
                core.index(),
                cores,
                s.next_port,
                |p| s.tcp_port_in_use(p),
            )
            .ok_or(Error::AddrNotAvailable)?;
            s.next_port = port.wrapping_add(1);
            let mut socket = new_socket(&options);
            socket.set_timeout(Some(smol(CONNECT_TIMEOUT)));
            socket
                .connect(s.iface.context(), (*addr.ip(), addr.port()), (local, port))
                .map_err(|_| Error::InvalidInput)?;
            let handle = s.sockets.add(socket);
            let mut meta = Meta::new(Kind::Tcp);
            meta.demand = Demand::new(&options);
            meta.connecting_since = Some(Clock::now());
            s.metas.insert(handle, meta);
            stats.tcp_open.fetch_add(1, Ordering::Relaxed);
            stats.connected.fetch_add(1, Ordering::Relaxed);
            s.dirty = true;
            Ok(handle)
        })??;
        Ok(TcpStream::new(core, handle))
    }

    /// Connects and waits until the connection is established (or fails).
    pub async fn connect_async(addr: SocketAddr) -> Result<TcpStream> {
        let stream = Self::connect(addr)?;
        poll_fn(|cx| stream.poll_connected(cx)).await?;
        Ok(stream)
    }

    fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.with(|socket, m, _| {
            if let Some(error) = m.error {
                return Poll::Ready(Err(error));
            }
            match socket.state() {
                tcp::State::SynSent | tcp::State::SynReceived => {
                    m.writers = Some(cx.waker().clone());
                    Poll::Pending
                }
                tcp::State::Closed => Poll::Ready(Err(Error::ConnectionRefused)),
                // Established (the net task clears the request's timeout).
                _ => Poll::Ready(Ok(())),
            }
        }) {
            Ok(poll) => poll,
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    /// The core this connection belongs to.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// Runs `f` on this connection's socket and meta (on its core); `f`
    /// sets the flag when smoltcp has work to do.
    fn with<R>(
        &self,
        f: impl FnOnce(&mut tcp::Socket<'static>, &mut Meta, &mut bool) -> R,
    ) -> Result<R> {
        let handle = self.handle;
        shard::with(self.core, |s, _| {
            let meta = s.metas.get_mut(&handle).ok_or(Error::NotConnected)?;
            let socket = s.sockets.get_mut::<tcp::Socket>(handle);
            Ok(f(socket, meta, &mut s.dirty))
        })?
    }

    /// [`with`](Self::with), the socket lent a send buffer first if it
    /// holds none (an idle connection holds none: [`super::buffers`]).
    fn with_send_buffer<R>(
        &self,
        f: impl FnOnce(&mut tcp::Socket<'static>, &mut Meta, &mut bool) -> R,
    ) -> Result<R> {
        let handle = self.handle;
        shard::with(self.core, |s, stats| {
            s.attach_send(handle, stats);
            let meta = s.metas.get_mut(&handle).ok_or(Error::NotConnected)?;
            let socket = s.sockets.get_mut::<tcp::Socket>(handle);
            Ok(f(socket, meta, &mut s.dirty))
        })?
    }

    fn socket<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> Result<R> {
        self.with(|socket, _, _| f(socket))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        self.socket(|s| s.remote_endpoint().map(endpoint_addr))?
            .ok_or(Error::NotConnected)
    }

    /// This side's address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket(|s| s.local_endpoint().map(endpoint_addr))?
            .ok_or(Error::NotConnected)
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.with(|socket, m, dirty| {
            if matches!(how, Shutdown::Read | Shutdown::Both) {
                m.read_shut = true;
            }
            if matches!(how, Shutdown::Write | Shutdown::Both) {
                m.closed_by_us = true;
                socket.close();
                *dirty = true;
            }
        })
    }

    /// Nagle's algorithm off (`true`, the default) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        self.socket(|s| s.set_nagle_enabled(!nodelay))
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> Result<bool> {
        self.socket(|s| !s.nagle_enabled())
    }

    /// Delayed ACK: `None` acknowledges every segment at once (the default).
    pub fn set_ack_delay(&self, delay: Option<Duration>) -> Result<()> {
        self.socket(|s| s.set_ack_delay(delay.map(smol)))
    }

    /// The delayed-ACK time.
    pub fn ack_delay(&self) -> Result<Option<Duration>> {
        self.socket(|s| {
            s.ack_delay()
                .map(|d| Duration::from_micros(d.total_micros()))
        })
    }

    /// TCP keep-alive probes every `interval` (`None`: off, the default).
    pub fn set_keepalive(&self, interval: Option<Duration>) -> Result<()> {
        self.socket(|s| s.set_keep_alive(interval.map(smol)))
    }

    /// The connection's error, once (like `SO_ERROR`).
    pub fn take_error(&self) -> Result<Option<Error>> {
        self.with(|_, m, _| m.error.take().filter(|e| *e != Error::NotConnected))
    }

    /// Reads what has arrived, registering `cx` if nothing has.
    pub fn poll_read(
        &mut self,
        cx: Option<&mut Context<'_>>,
        buf: &mut [u8],
    ) -> Poll<Result<usize>> {
        let result = self.with(|socket, m, dirty| {
            if m.read_shut || buf.is_empty() {
                return Ok(0);
            }
            let result = match socket.recv_slice(buf) {
                Ok(0) if socket.may_recv() => Err(Error::WouldBlock),
                Ok(0) => Ok(0),
                Ok(n) => {
                    // The window opened: smoltcp may have an update to send.
                    *dirty = true;
                    Ok(n)
                }
                Err(tcp::RecvError::Finished) => Ok(0),
                Err(tcp::RecvError::InvalidState) if connecting(socket) => Err(Error::WouldBlock),
                Err(tcp::RecvError::InvalidState) => Err(connection_error(m)),
            };
            // The next arrival is news to report (edge-triggered).
            m.seen.0 = socket.recv_queue();
            if result == Err(Error::WouldBlock) {
                m.last = without(m.last, Ready::READABLE);
                if let Some(cx) = cx {
                    m.readers = Some(cx.waker().clone());
                }
            }
            result
        });
        pending_if_would_block(result)
    }

    /// Ready once a read would not block: data arrived, the peer closed,
    /// the read half was shut down, or the connection failed. Lets a task
    /// wait without holding a buffer (an idle connection then costs no
    /// read buffer).
    pub async fn readable(&self) -> Result<()> {
        poll_fn(|cx| {
            let ready = self.with(|socket, m, _| {
                let ready = socket.can_recv()
                    || m.read_shut
                    || m.error.is_some()
                    || (m.established && !socket.may_recv());
                if !ready {
                    m.last = without(m.last, Ready::READABLE);
                    m.readers = Some(cx.waker().clone());
                }
                ready
            });
            match ready {
                Ok(true) => Poll::Ready(Ok(())),
                Ok(false) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// Queues what fits of `buf`, registering `cx` if nothing does.
    pub fn poll_write(&mut self, cx: Option<&mut Context<'_>>, buf: &[u8]) -> Poll<Result<usize>> {
        let result = self.with_send_buffer(|socket, m, dirty| {
            if buf.is_empty() {
                return Ok(0);
            }
            let result = match socket.send_slice(buf) {
                Ok(0) => Err(Error::WouldBlock),
                Ok(n) => {
                    *dirty = true;
                    Ok(n)
                }
                Err(tcp::SendError::InvalidState) if connecting(socket) => Err(Error::WouldBlock),
                Err(tcp::SendError::InvalidState) if m.closed_by_us => Err(Error::BrokenPipe),
                Err(tcp::SendError::InvalidState) => Err(connection_error(m)),
            };
            m.seen.1 = socket.send_queue();
            if result == Err(Error::WouldBlock) {
                m.last = without(m.last, Ready::WRITABLE);
                if let Some(cx) = cx {
                    m.writers = Some(cx.waker().clone());
                }
            }
            result
        });
        pending_if_would_block(result)
    }

    /// Ready once everything written was acknowledged by the peer.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.with(|socket, m, _| {
            if socket.send_queue() == 0 || !socket.is_active() {
                Poll::Ready(Ok(()))
            } else {
                m.writers = Some(cx.waker().clone());
                Poll::Pending
            }
        }) {
            Ok(poll) => poll,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        shard::close(self.core, shard::Dropped::Socket(self.handle));
    }
}

impl embedded_io::ErrorType for TcpStream {
    type Error = Error;
}

impl embedded_io::Read for TcpStream {
    /// Reads what has arrived: `Ok(0)` at the end of the stream,
    /// [`Error::WouldBlock`] if nothing has arrived yet.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self.poll_read(None, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::WouldBlock),
        }
    }
}

impl embedded_io::Write for TcpStream {
    /// Queues what fits; [`Error::WouldBlock`] if nothing does.
    fn write(&mut self, buf: &[u8]) -> Result<usize> {
        match self.poll_write(None, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::WouldBlock),
        }
    }

    /// Written data is with the stack already; nothing to do.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

impl embedded_io_async::Read for TcpStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_read(Some(cx), buf)).await
    }
}

impl embedded_io_async::Write for TcpStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_write(Some(cx), buf)).await
    }

    /// Waits until the peer acknowledged everything written.
    async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }
}

impl Source for TcpStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> percore_poll::Result<()> {
        let registration = &mut self.registration;
        shard::register_socket(
            self.core,
            self.handle,
            registration,
            registry,
            token,
            interests,
        )
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> percore_poll::Result<()> {
        shard::reregister_socket(
            self.core,
            &mut self.registration,
            registry,
            token,
            interests,
        )
    }

    fn deregister(&mut self, registry: &Registry) -> percore_poll::Result<()> {
        shard::deregister_socket(self.core, self.handle, &mut self.registration, registry)
    }
}
