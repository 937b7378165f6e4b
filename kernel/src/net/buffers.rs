//! TCP socket buffers on demand: an idle connection holds a small receive
//! buffer and no send buffer; full-size buffers are lent to it from its
//! core's pool while data is in flight and taken back when it goes quiet.
//!
//! smoltcp 0.12 fixes a socket's buffers in `tcp::Socket::new`; the
//! vendored copy (`third_party/smoltcp/PERCORE.md`) adds
//! `replace_recv_buffer` / `replace_send_buffer`, which move the queued
//! octets into the new buffer in order. What may change while a
//! connection runs, and what this module does:
//!
//! - *Send buffer.* smoltcp keeps in it what was sent and not yet
//!   acknowledged, then what was not yet sent; its size is never
//!   advertised. An idle connection has none (capacity 0). A write lends
//!   one of the connection's full size ([`Shard::attach_send`]) before
//!   queueing; the net task takes it back ([`Shard::sweep_buffers`]) as
//!   soon as it is empty (everything acknowledged). A connection with no
//!   send buffer still reports writable when it may send (meta's
//!   readiness).
//! - *Receive buffer.* Its free room is the window advertised in every
//!   segment, so it must exist before data arrives: every connection holds
//!   [`IDLE_RECV`] bytes (a request of a request/response protocol fits).
//!   Once a turn finds it at least half full (the peer streams, or the
//!   reader lags), the sweep swaps in a full-size one (`recv_buffer` of
//!   the socket's options, at most 65535: the window scale was fixed at
//!   the handshake from the small buffer), which opens the window (smoltcp
//!   sends the update at once when it doubled). When the buffer is empty
//!   and its queues have not moved for [`QUIET_NS`], the small one comes
//!   back. Shrinking the window that way is what RFC 9293 asks receivers
//!   not to do; a peer that still sends into the old window has what is
//!   beyond the new one trimmed and not acknowledged, and sends it again
//!   (nothing is lost). Not while out-of-order octets wait in the
//!   assembler: smoltcp refuses, and the sweep tries again later.
//! - *Pool.* Each core keeps at most [`POOL_BYTES`] of free buffers
//!   ([`Pool`]), so lending one is a move rather than an allocation; the
//!   rest is freed.
//!
//! Counted per core: `buffers_lent` and `buffers_returned` (full-size
//! buffers, both directions), `pool_bytes` (free buffers kept).

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::meta::Kind;
use super::shard::{Shard, Stats};
use super::tcp::Options;
use crate::time::Instant;

/// The receive buffer every connection holds (its window while idle).
pub const IDLE_RECV: usize = 1024;
/// How long a connection's queues must stay still, its receive buffer
/// empty, before its full-size receive buffer goes back to the pool.
pub const QUIET_NS: u64 = 100_000_000;
/// Free buffers a core keeps for reuse, in bytes.
pub const POOL_BYTES: usize = 128 * 1024;
/// The largest receive buffer lent: the window scale is 0 (chosen from
/// the small buffer at the handshake).
pub const MAX_RECV: usize = 65535;

/// What a connection's buffers should be, and when its queues last moved.
#[derive(Clone, Copy, Debug)]
pub struct Demand {
    /// Full receive and send buffer sizes (the socket's options).
    pub full: (usize, usize),
    /// Receive and send queue lengths at the last sweep, and since when.
    pub last: (usize, usize),
    pub since: Instant,
}

impl Demand {
    pub fn new(options: &Options) -> Demand {
        Demand {
            full: (full_recv(options.recv_buffer), options.send_buffer.max(1)),
            last: (0, 0),
            since: crate::time::Clock::now(),
        }
    }
}

impl Default for Demand {
    fn default() -> Demand {
        Demand::new(&Options::default())
    }
}

/// The full receive buffer for an asked size (at most [`MAX_RECV`]; one
/// no larger than [`IDLE_RECV`] is held from the start and never swapped).
fn full_recv(asked: usize) -> usize {
    asked.clamp(1, MAX_RECV)
}

/// A new socket's buffers: the small receive buffer (or the asked size,
/// if smaller), no send buffer.
pub fn new_socket_buffers(
    options: &Options,
) -> (tcp::SocketBuffer<'static>, tcp::SocketBuffer<'static>) {
    (
        tcp::SocketBuffer::new(vec![0; options.recv_buffer.clamp(1, IDLE_RECV)]),
        tcp::SocketBuffer::new(Vec::new()),
    )
}

/// One core's free buffers.
#[derive(Default)]
pub struct Pool {
    free: Vec<tcp::SocketBuffer<'static>>,
    bytes: usize,
}

impl Pool {
    /// A buffer of `size` bytes: a free one, else a new one.
    pub fn take(&mut self, size: usize) -> tcp::SocketBuffer<'static> {
        if size == 0 {
            return tcp::SocketBuffer::new(Vec::new());
        }
        match self.free.iter().position(|b| b.capacity() == size) {
            Some(index) => {
                self.bytes -= size;
                self.free.swap_remove(index)
            }
            None => tcp::SocketBuffer::new(vec![0; size]),
        }
    }

    /// Keeps `buffer` for reuse if there is room (else frees it).
    pub fn give(&mut self, mut buffer: tcp::SocketBuffer<'static>) {
        let size = buffer.capacity();
        if size == 0 || self.bytes + size > POOL_BYTES {
            return;
        }
        buffer.clear();
        self.bytes += size;
        self.free.push(buffer);
    }

    /// Bytes of free buffers kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Shard {
    /// Lends connection `handle` a full-size send buffer if it holds none
    /// and may send (a write is about to queue data).
    pub fn attach_send(&mut self, handle: SocketHandle, stats: &Stats) {
        let Some(meta) = self.metas.get(&handle) else {
            return;
        };
        let size = meta.demand.full.1;
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if socket.send_capacity() != 0 || !socket.may_send() {
            return;
        }
        match socket.replace_send_buffer(self.pool.take(size)) {
            Ok(old) => {
                self.pool.give(old);
                stats.buffers_lent.fetch_add(1, Ordering::Relaxed);
            }
            Err(refused) => self.pool.give(refused),
        }
        stats.pool_bytes.store(self.pool.bytes(), Ordering::Relaxed);
    }

    /// After a poll: takes back send buffers that emptied, lends full
    /// receive buffers to connections whose small one is half full, takes
    /// back receive buffers quiet for [`QUIET_NS`]. Returns when the next
    /// receive buffer may be taken back (`None`: none is lent).
    pub fn sweep_buffers(&mut self, now: Instant, stats: &Stats) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for (&handle, meta) in self.metas.iter_mut() {
            if meta.kind != Kind::Tcp {
                continue;
            }
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            let demand = &mut meta.demand;
            let queues = (socket.recv_queue(), socket.send_queue());
            if queues != demand.last {
                demand.last = queues;
                demand.since = now;
            }
            if socket.send_capacity() != 0
                && queues.1 == 0
                && let Ok(old) = socket.replace_send_buffer(self.pool.take(0))
            {
                self.pool.give(old);
                stats.buffers_returned.fetch_add(1, Ordering::Relaxed);
            }
            let capacity = socket.recv_capacity();
            let full = demand.full.0;
            if capacity < full && queues.0 * 2 >= capacity && queues.0 > 0 {
                match socket.replace_recv_buffer(self.pool.take(full)) {
                    Ok(old) => {
                        self.pool.give(old);
                        stats.buffers_lent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(refused) => self.pool.give(refused),
                }
            } else if capacity > IDLE_RECV {
                let quiet_at = Instant(demand.since.0 + QUIET_NS);
                if queues.0 == 0 && now.0 >= quiet_at.0 {
                    match socket.replace_recv_buffer(self.pool.take(IDLE_RECV)) {
                        Ok(old) => {
                            self.pool.give(old);
                            stats.buffers_returned.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Err(refused) => self.pool.give(refused),
                    }
                }
                // Looked at again by then (or at the next turn, if it
                // could not be taken back now).
                let at = if now.0 >= quiet_at.0 {
                    Instant(now.0 + QUIET_NS)
                } else {
                    quiet_at
                };
                next = Some(next.map_or(at, |n| if at.0 < n.0 { at } else { n }));
            }
        }
        stats.pool_bytes.store(self.pool.bytes(), Ordering::Relaxed);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_and_caps() {
        let mut pool = Pool::default();
        let a = pool.take(8192);
        assert_eq!(a.capacity(), 8192);
        pool.give(a);
        assert_eq!(pool.bytes(), 8192);
        let b = pool.take(8192);
        assert_eq!(pool.bytes(), 0);
        assert_eq!(b.capacity(), 8192);
        for _ in 0..(POOL_BYTES / 8192 + 4) {
            pool.give(tcp::SocketBuffer::new(vec![0; 8192]));
        }
        assert!(pool.bytes() <= POOL_BYTES);
        assert_eq!(pool.take(0).capacity(), 0);
        pool.give(tcp::SocketBuffer::new(Vec::new()));
        assert!(pool.bytes() <= POOL_BYTES);
    }

    /// Two connected sockets on a loopback interface; `bytes` go from the
    /// client to the server while, between polls, both sockets' buffers
    /// are swapped back and forth between small and large ones (with data
    /// queued in them: in flight, unacknowledged, unread). What arrives
    /// must be exactly what was sent, in order.
    #[test]
    fn data_survives_buffers_swapped_many_times() {
        use smoltcp::iface::{Config, Interface, SocketSet};
        use smoltcp::phy::{Loopback, Medium};
        use smoltcp::time::Instant as Now;
        use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

        let mut device = Loopback::new(Medium::Ethernet);
        let config = Config::new(EthernetAddress([2, 0, 0, 0, 0, 1]).into());
        let mut iface = Interface::new(config, &mut device, Now::from_millis(0));
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap();
        });
        let mut sockets = SocketSet::new(Vec::new());
        let small = || tcp::SocketBuffer::new(vec![0; IDLE_RECV]);
        let large = || tcp::SocketBuffer::new(vec![0; 8192]);
        let server = sockets.add(tcp::Socket::new(
            small(),
            tcp::SocketBuffer::new(Vec::new()),
        ));
        let client = sockets.add(tcp::Socket::new(small(), large()));
        sockets.get_mut::<tcp::Socket>(server).listen(7).unwrap();
        sockets
            .get_mut::<tcp::Socket>(client)
            .connect(iface.context(), (IpAddress::v4(127, 0, 0, 1), 7), 49152)
            .unwrap();
        let total = 1_000_000usize;
        let byte = |i: usize| (i.wrapping_mul(31) ^ (i >> 8)) as u8;
        let (mut sent, mut got) = (0usize, 0usize);
        let (mut swaps, mut refused) = (0u32, 0u32);
        let mut clock = 0;
        for step in 0..200_000u32 {
            clock += 1;
            iface.poll(Now::from_millis(clock), &mut device, &mut sockets);
            let c = sockets.get_mut::<tcp::Socket>(client);
            if c.may_send() && sent < total {
                let chunk: Vec<u8> = (sent..total.min(sent + 3000)).map(byte).collect();
                if c.send_capacity() > 0 {
                    sent += c.send_slice(&chunk).unwrap();
                }
            }
            // Swap the client's send buffer for a new one of another size
            // (or none, when empty), data and all.
            let queued = c.send_queue();
            let size = match step % 3 {
                0 if queued == 0 => 0,
                1 => 4096.max(queued),
                _ => 16384.max(queued),
            };
            match c.replace_send_buffer(tcp::SocketBuffer::new(vec![0; size])) {
                Ok(_) => swaps += 1,
                Err(_) => refused += 1,
            }
            let s = sockets.get_mut::<tcp::Socket>(server);
            // Read a little at a time, so data waits in the buffer.
            let mut buf = [0u8; 700];
            if s.can_recv() {
                let n = s.recv_slice(&mut buf).unwrap();
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, byte(got + k), "byte {} after {swaps} swaps", got + k);
                }
                got += n;
            }
            let next = if step % 2 == 0 { large() } else { small() };
            match s.replace_recv_buffer(next) {
                Ok(_) => swaps += 1,
                Err(_) => refused += 1,
            }
            if got == total {
                break;
            }
        }
        assert_eq!(got, total, "{sent} sent, {got} received");
        assert!(swaps > 1000, "{swaps} swaps, {refused} refused");
    }

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(full_recv(512), 512);
        let small = Options {
            recv_buffer: 512,
            ..Options::default()
        };
        assert_eq!(new_socket_buffers(&small).0.capacity(), 512);
        assert_eq!(full_recv(8192), 8192);
        assert_eq!(full_recv(1 << 20), MAX_RECV);
        let (rx, tx) = new_socket_buffers(&Options::default());
        assert_eq!((rx.capacity(), tx.capacity()), (IDLE_RECV, 0));
    }
}
