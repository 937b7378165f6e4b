//! UDP sockets with mio's names: [`UdpSocket`] (`bind`, `send_to`,
//! `recv_from`, `local_addr`), on the core that bound them (another core
//! gets [`Error::WrongCore`]). A full send buffer is
//! [`Error::NoBufferSpace`] (the datagram was not queued); a datagram
//! longer than the receiving buffer is cut to it (as `recv_from` does on
//! Linux). Buffers: 64 datagrams and 32 KiB each way.

use alloc::vec;
use core::future::poll_fn;
use core::net::{SocketAddr, SocketAddrV4};
use core::sync::atomic::Ordering;
use core::task::{Context, Poll};

use percore_poll::{Interest, Ready, Registration, Registry, Source, Token};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use super::shard::{self, Kind, Meta};
use super::tcp::without;
use super::{Error, Result};
use crate::arch::{CoreId, cpu};

/// Datagrams each buffer holds, and their bytes.
pub const DATAGRAMS: usize = 64;
pub const BUFFER_BYTES: usize = 32 * 1024;

/// A bound UDP port on one core.
pub struct UdpSocket {
    core: CoreId,
    handle: SocketHandle,
    port: u16,
    registration: Registration,
}

impl UdpSocket {
    /// Binds `addr`'s port on this core (bound twice on one core:
    /// [`Error::AddrInUse`]).
    pub fn bind(addr: SocketAddr) -> Result<UdpSocket> {
        let SocketAddr::V4(addr) = addr else {
            return Err(Error::InvalidInput);
        };
        let port = addr.port();
        if port == 0 {
            return Err(Error::InvalidInput);
        }
        let core = cpu::core_id();
        let handle = shard::with(core, |s, stats| {
            if !addr.ip().is_unspecified() && s.ipv4() != Some(*addr.ip()) {
                return Err(Error::AddrNotAvailable);
            }
            let taken = s.metas.iter().any(|(&h, m)| {
                m.kind == Kind::Udp && s.sockets.get::<udp::Socket>(h).endpoint().port == port
            });
            if taken {
                return Err(Error::AddrInUse);
            }
            let mut socket = udp::Socket::new(
                udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; DATAGRAMS],
                    vec![0; BUFFER_BYTES],
                ),
                udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; DATAGRAMS],
                    vec![0; BUFFER_BYTES],
                ),
            );
            socket
                .bind(IpListenEndpoint { addr: None, port })
                .map_err(|_| Error::InvalidInput)?;
            let handle = s.sockets.add(socket);
            s.metas.insert(handle, Meta::new(Kind::Udp));
            stats.udp_open.fetch_add(1, Ordering::Relaxed);
            Ok(handle)
        })??;
        Ok(UdpSocket {
            core,
            handle,
            port,
            registration: Registration::new(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(SocketAddr::V4(SocketAddrV4::new(
            core::net::Ipv4Addr::UNSPECIFIED,
            self.port,
        )))
    }

    /// The core this socket belongs to.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// Runs `f` on this socket and its meta (on its core); `f` sets the
    /// flag when smoltcp has work to do.
    fn with<R>(
        &self,
        f: impl FnOnce(&mut udp::Socket<'static>, &mut Meta, &mut bool) -> R,
    ) -> Result<R> {
        let handle = self.handle;
        shard::with(self.core, |s, _| {
            let meta = s.metas.get_mut(&handle).ok_or(Error::NotConnected)?;
            let socket = s.sockets.get_mut::<udp::Socket>(handle);
            Ok(f(socket, meta, &mut s.dirty))
        })?
    }

    /// Queues one datagram to `target`: [`Error::NoBufferSpace`] when the
    /// send buffer is full.
    pub fn send_to(&self, buf: &[u8], target: SocketAddr) -> Result<usize> {
        match self.poll_send_to(None, buf, target) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::NoBufferSpace),
        }
    }

    /// Sends, waiting for room in the send buffer.
    pub async fn send_to_async(&self, buf: &[u8], target: SocketAddr) -> Result<usize> {
        poll_fn(|cx| self.poll_send_to(Some(cx), buf, target)).await
    }

    fn poll_send_to(
        &self,
        cx: Option<&mut Context<'_>>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<Result<usize>> {
        let SocketAddr::V4(target) = target else {
            return Poll::Ready(Err(Error::InvalidInput));
        };
        let result = self.with(|socket, m, dirty| {
            match socket.send_slice(buf, (*target.ip(), target.port())) {
                Ok(()) => {
                    *dirty = true;
                    m.seen.1 = socket.send_queue();
                    Poll::Ready(Ok(buf.len()))
                }
                Err(udp::SendError::BufferFull) => {
                    m.last = without(m.last, Ready::WRITABLE);
                    m.seen.1 = socket.send_queue();
                    match cx {
                        Some(cx) => {
                            m.writers = Some(cx.waker().clone());
                            Poll::Pending
                        }
                        None => Poll::Ready(Err(Error::NoBufferSpace)),
                    }
                }
                Err(udp::SendError::Unaddressable) => Poll::Ready(Err(Error::InvalidInput)),
            }
        });
        result.unwrap_or_else(|e| Poll::Ready(Err(e)))
    }

    /// One received datagram (cut to `buf`) and its sender, or
    /// [`Error::WouldBlock`].
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
        match self.poll_recv_from(None, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::WouldBlock),
        }
    }

    /// Waits for a datagram.
    pub async fn recv_from_async(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(Some(cx), buf)).await
    }

    fn poll_recv_from(
        &self,
        cx: Option<&mut Context<'_>>,
        buf: &mut [u8],
    ) -> Poll<Result<(usize, SocketAddr)>> {
        let result = self.with(|socket, m, dirty| {
            let result = match socket.recv() {
                Ok((data, meta)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    let IpAddress::Ipv4(ip) = meta.endpoint.addr;
                    *dirty = true;
                    Poll::Ready(Ok((
                        n,
                        SocketAddr::V4(SocketAddrV4::new(ip, meta.endpoint.port)),
                    )))
                }
                Err(_) => {
                    m.last = without(m.last, Ready::READABLE);
                    match cx {
                        Some(cx) => {
                            m.readers = Some(cx.waker().clone());
                            Poll::Pending
                        }
                        None => Poll::Ready(Err(Error::WouldBlock)),
                    }
                }
            };
            m.seen.0 = socket.recv_queue();
            result
        });
        result.unwrap_or_else(|e| Poll::Ready(Err(e)))
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        shard::close(self.core, shard::Dropped::Socket(self.handle));
    }
}

impl Source for UdpSocket {
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
