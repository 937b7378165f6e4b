//! One core's share of the stack: its smoltcp interface and sockets, the
//! frames steered to it, its counters, and the pinned net task that drives
//! them.
//!
//! The shard's state sits behind a per-core lock that only its own core
//! takes (a socket used on another core gets [`Error::WrongCore`] before
//! any lock), so the lock is never contended; it is there so that the
//! state can live in a table every core can index. The net task holds it
//! while it polls smoltcp; socket calls from the core's other tasks take
//! it between polls (tasks on one core never run at once).
//!
//! One turn of the net task ([`step`]):
//! 1. on the core that owns the queue pair: take what the other cores on
//!    the pair sent up (spent loans, posted again; transmit requests, put
//!    on the ring), then received frames off the device (a bounded batch)
//!    and steer each ([`super::steer`]), lent in its receive buffer
//!    ([`super::loan`]): to this core's queue or through the ring of the
//!    core that owns its flow (a full ring, or a core holding its share of
//!    the buffers already, drops the frame and counts it), or to every
//!    core (shared loans of the one buffer);
//! 2. take what other cores sent here (frames, closes of sockets dropped
//!    on a foreign core);
//! 3. send the transmit backlog; apply a new address;
//! 4. poll smoltcp (it consumes the queue and transmits), then DHCP on the
//!    owner core;
//! 5. report readiness: sockets whose state changed signal their
//!    `percore_poll` registration and wake their waiting tasks;
//! 6. sleep until a frame, a message, a socket call ([`kick`]), a free
//!    transmit slot, or smoltcp's next deadline (`poll_delay`, a reactor
//!    timer) wakes it.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use percore_poll::{Interest, Ready, Registration, Registry, Source as _, Token};
use percore_wake::WakerSlot;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::wire::{IpAddress, IpCidr, Ipv4Address};

use super::check::{Bad, check, syn_port};
use super::config::{Address, Source};
use super::loan::{Buffer, Held, Up};
pub use super::meta::{Kind, Listener, Meta, acceptable};
use super::meta::{tcp_readiness, touches, udp_readiness};
use super::steer::{Steer, steer};
use super::wire::{self, Wire};
use super::{Error, Result};
use crate::arch::{CoreId, cpu};
use crate::drivers::virtio::net::{Nic, Pair};
use crate::ipc::channel::{Receiver, Sender, TrySendError};
use crate::reactor::{Sleep, sleep_until};
use crate::time::{Clock, Instant};

/// Frames taken off the device per turn before the other steps run.
const RX_BATCH: usize = 64;
/// Messages taken from the inbound ring per turn.
const INBOUND_BATCH: usize = 256;
/// How long a dropped connection may go without progress (a peer that
/// never sends its FIN, or stops acknowledging what is left to send)
/// before it is aborted with a reset.
pub const LINGER_NS: u64 = 30_000_000_000;

/// Whether a dropped connection idle since `since` has lingered too long.
pub fn lingered(since: Instant, now: Instant) -> bool {
    now.0.saturating_sub(since.0) > LINGER_NS
}
/// Frames that may wait for this core's smoltcp (beyond: dropped, counted).
const RX_QUEUE: usize = 512;

/// What other cores send a core.
pub enum Inbound {
    /// A received frame of one of this core's flows (or a broadcast).
    Frame(Buffer),
    /// A socket or listener of this core was dropped on another core.
    Dropped(Dropped),
}

/// A socket handle that was dropped, to be closed on its core.
#[derive(Clone, Copy, Debug)]
pub enum Dropped {
    /// A stream or UDP socket: release it.
    Socket(SocketHandle),
    /// A listener: close its port.
    Listener(u16),
}

/// Counters of one core's share, readable from any core.
#[derive(Default)]
pub struct Stats {
    /// Frames (and bytes) this core's smoltcp received.
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    /// Frames (and bytes) this core put on the device.
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Frames the owner core passed to another core, and frames this core
    /// got that way.
    pub steered_out: AtomicU64,
    pub steered_in: AtomicU64,
    /// Frames smoltcp made that waited for a transmit slot.
    pub tx_backlogged: AtomicU64,
    /// Frames this core handed to its pair's owner to put on the ring, and
    /// (on the owner) frames it put on the ring for other cores.
    pub tx_handed: AtomicU64,
    pub tx_for_others: AtomicU64,
    /// Bytes of payload frames copied on the packet path (0 unless a reply
    /// carrying payload had to wait for a transmit slot, see [`wire`]).
    pub copied_bytes: AtomicU64,
    /// Drops, by reason: the target core's ring was full; the target core
    /// held its share of the receive buffers already; this core's receive
    /// queue was full; the device was out of service.
    pub drop_ring_full: AtomicU64,
    pub drop_held: AtomicU64,
    pub drop_queue_full: AtomicU64,
    pub drop_tx_dead: AtomicU64,
    /// TCP segments dropped on purpose, either way ([`super::loss`]).
    pub drop_injected: AtomicU64,
    /// Received frames dropped as bad input ([`check`]): the IPv4 header,
    /// the TCP header (checksum, flags, cut short), the UDP header.
    pub drop_bad_ip: AtomicU64,
    pub drop_bad_tcp: AtomicU64,
    pub drop_bad_udp: AtomicU64,
    /// SYNs to a listening port with no listening socket left (every one
    /// holds a half-open or unaccepted connection): dropped, not reset.
    pub drop_syn_backlog: AtomicU64,
    /// Frames the stack sent to its own address (looped back, not sent).
    pub looped: AtomicU64,
    /// Open sockets: TCP connections, TCP listeners, UDP sockets.
    pub tcp_open: AtomicUsize,
    pub listeners: AtomicUsize,
    pub udp_open: AtomicUsize,
    /// Connections accepted and opened.
    pub accepted: AtomicU64,
    pub connected: AtomicU64,
    /// Turns of the net task.
    pub turns: AtomicU64,
    /// Full-size TCP buffers lent to connections and taken back
    /// ([`super::buffers`]).
    pub buffers_lent: AtomicU64,
    pub buffers_returned: AtomicU64,
    /// Bytes of free buffers this core's pool keeps.
    pub pool_bytes: AtomicUsize,
    /// Where the net task's turns spend their time (clock nanoseconds):
    /// taking frames and messages (the device, the up and inbound rings,
    /// steering), sending the transmit backlog, smoltcp's poll (receive
    /// processing and every frame it sends), reporting readiness and the
    /// buffer sweep. Read as deltas around a run (`bench net` prints them
    /// for its bulk transfer); no serial output on the packet path.
    pub ns_take: AtomicU64,
    pub ns_flush: AtomicU64,
    pub ns_poll: AtomicU64,
    pub ns_report: AtomicU64,
}

/// One core's share of the stack.
pub struct Shard {
    pub core: CoreId,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub rx: VecDeque<Buffer>,
    pub backlog: VecDeque<Vec<u8>>,
    pub inbound: Receiver<Inbound>,
    /// Senders into every core's ring (used by the pair's owner to steer).
    pub peers: Vec<Sender<Inbound>>,
    /// The up rings to every core that owns a pair, by core (`None` for
    /// this core and cores that own none).
    pub ups: Vec<Option<Sender<Up>>>,
    /// The core that owns this core's pair.
    pub pair_owner: usize,
    /// On a pair's owner: every other core's up ring to it (core, ring),
    /// and the loans out to each core.
    pub downs: Vec<(usize, Receiver<Up>)>,
    pub held: Option<Held>,
    /// Whether the blocked send was counted as a wait already.
    pub tx_waited: bool,
    /// A send found no free transmit slot this turn.
    pub tx_blocked: bool,
    /// Frames smoltcp has read this turn (their buffers go back).
    pub spent: Vec<Buffer>,
    /// Frames this core sent to itself this turn ([`wire::loops`]).
    pub looped: Vec<Vec<u8>>,
    pub metas: BTreeMap<SocketHandle, Meta>,
    pub listeners: BTreeMap<u16, Listener>,
    pub dhcp: Option<SocketHandle>,
    /// The configuration generation this interface has applied.
    pub applied: u64,
    /// Where the next local port search starts.
    pub next_port: u16,
    /// A socket call changed something smoltcp must act on.
    pub dirty: bool,
    /// SYNs queued for smoltcp since its last poll, by listening port
    /// (each takes one of the port's listening sockets).
    pub syns: Vec<(u16, usize)>,
    /// Free TCP buffers of this core, and when a lent receive buffer may
    /// next be taken back ([`super::buffers`]).
    pub pool: super::buffers::Pool,
    pub buffers_due: Option<Instant>,
    /// Injected loss's counts (off unless configured, [`super::loss`]).
    pub loss: super::loss::Dice,
}

/// A core's slot in the table.
pub struct Slot {
    pub state: spin::Mutex<Option<Shard>>,
    pub stats: Stats,
    /// The net task's waker (socket calls and other cores wake it).
    pub kick: WakerSlot,
    /// Senders into this core's ring for other cores' rare messages
    /// (closing a socket dropped on the wrong core).
    pub inbox: spin::Mutex<Option<Sender<Inbound>>>,
}

static SLOTS: spin::Once<Box<[Slot]>> = spin::Once::new();

/// Makes the table (once) from one shard per core.
pub fn install(shards: Vec<(Shard, Sender<Inbound>)>) {
    SLOTS.call_once(|| {
        shards
            .into_iter()
            .map(|(shard, inbox)| Slot {
                state: spin::Mutex::new(Some(shard)),
                stats: Stats::default(),
                kick: WakerSlot::new(),
                inbox: spin::Mutex::new(Some(inbox)),
            })
            .collect()
    });
}

/// Core `core`'s slot, once the stack runs.
pub fn slot(core: CoreId) -> Option<&'static Slot> {
    SLOTS.get()?.get(core.index())
}

/// Every core's slot.
pub fn slots() -> &'static [Slot] {
    SLOTS.get().map_or(&[], |s| &s[..])
}

/// Runs `f` on core `core`'s shard, which must be this core's; wakes the
/// net task if `f` left work for smoltcp.
pub fn with<R>(core: CoreId, f: impl FnOnce(&mut Shard, &Stats) -> R) -> Result<R> {
    let here = cpu::core_id();
    if here != core {
        return Err(Error::WrongCore { owner: core, here });
    }
    let slot = slot(core).ok_or(Error::NoNetwork)?;
    let mut state = slot.state.lock();
    let shard = state.as_mut().ok_or(Error::NoNetwork)?;
    let result = f(shard, &slot.stats);
    if core::mem::take(&mut shard.dirty) {
        drop(state);
        slot.kick.wake();
    }
    Ok(result)
}

/// Wakes core `core`'s net task.
pub fn kick(core: CoreId) {
    if let Some(slot) = slot(core) {
        slot.kick.wake();
    }
}

/// Closes what a dropped socket handle held on core `core`: here, if this
/// is that core; otherwise by a message to it (the handle may be dropped
/// on any core).
pub fn close(core: CoreId, dropped: Dropped) {
    if cpu::core_id() == core {
        let _ = with(core, |s, stats| s.close(dropped, stats));
        return;
    }
    let Some(slot) = slot(core) else { return };
    if let Some(inbox) = slot.inbox.lock().as_mut()
        && inbox.try_send(Inbound::Dropped(dropped)).is_err()
    {
        log::warn!("net: core {core}'s ring is full; a socket dropped on another core stays open");
    }
    slot.kick.wake();
}

/// A socket registered from another core than its own: refused as a
/// registry that is not the socket's.
pub fn check_core(core: CoreId) -> percore_poll::Result<()> {
    if cpu::core_id() == core {
        Ok(())
    } else {
        Err(percore_poll::Error::ForeignRegistry)
    }
}

/// `Source::register` of a socket (TCP stream or UDP) whose meta is
/// `handle` on core `core`: the net task raises `registration`'s signal,
/// and reports the present state at once (epoll does).
pub fn register_socket(
    core: CoreId,
    handle: SocketHandle,
    registration: &mut Registration,
    registry: &Registry,
    token: Token,
    interests: Interest,
) -> percore_poll::Result<()> {
    check_core(core)?;
    registration.register(registry, token, interests)?;
    let signal = registration.signal().cloned();
    let _ = with(core, |s, _| {
        if let Some(meta) = s.metas.get_mut(&handle) {
            meta.signal = signal;
            meta.last = Ready::EMPTY;
            s.dirty = true;
        }
    });
    Ok(())
}

/// `Source::reregister` of a socket on core `core`.
pub fn reregister_socket(
    core: CoreId,
    registration: &mut Registration,
    registry: &Registry,
    token: Token,
    interests: Interest,
) -> percore_poll::Result<()> {
    check_core(core)?;
    registration.reregister(registry, token, interests)
}

/// `Source::deregister` of a socket whose meta is `handle` on core `core`.
pub fn deregister_socket(
    core: CoreId,
    handle: SocketHandle,
    registration: &mut Registration,
    registry: &Registry,
) -> percore_poll::Result<()> {
    check_core(core)?;
    let _ = with(core, |s, _| {
        if let Some(meta) = s.metas.get_mut(&handle) {
            meta.signal = None;
        }
    });
    registration.deregister(registry)
}

/// smoltcp's clock: the kernel's, in microseconds.
pub fn now() -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros((Clock::now().0 / 1000) as i64)
}

/// The net task of core `core` (pinned there): turns forever.
pub async fn run(core: CoreId, nic: &'static Nic) {
    let owner = nic.pairs().iter().any(|p| p.owner == core);
    let pair = nic.pairs().get(nic.pair_of(core));
    let mut timer: Option<(u64, Sleep)> = None;
    poll_fn(|cx| {
        let Some(slot) = slot(core) else {
            return Poll::Ready(());
        };
        slot.kick.register(cx.waker());
        slot.stats.turns.fetch_add(1, Ordering::Relaxed);
        let mut state = slot.state.lock();
        let Some(shard) = state.as_mut() else {
            return Poll::Ready(());
        };
        let mut more = false;
        let started = Clock::now();
        if owner && let Some(pair) = pair {
            shard.take_ups(pair, cx, &slot.stats);
            more |= shard.take_frames(pair, cx, &slot.stats);
        }
        more |= shard.take_inbound(cx, &slot.stats);
        add_ns(&slot.stats.ns_take, started);
        more |= shard.turn(pair, cx, &slot.stats);
        // Frames wait that could not be lent before this turn gave its
        // own loans back: take them now (nothing else would wake us).
        more |= owner && pair.is_some_and(|p| p.lendable());
        let delay = earliest(
            shard.iface.poll_delay(now(), &shard.sockets),
            shard.buffers_due,
        );
        // Frames wait for a transmit slot: the slot's release wakes this
        // task (smoltcp's "poll now" would only spin until then).
        let blocked = shard.tx_blocked;
        drop(state);
        if more {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match delay {
            Some(d) if d.total_micros() == 0 && blocked => timer = None,
            Some(d) if d.total_micros() == 0 => cx.waker().wake_by_ref(),
            Some(d) => {
                let deadline = Clock::now().0 + d.total_micros() * 1000;
                if timer.as_ref().is_none_or(|(at, _)| *at != deadline) {
                    timer = Some((deadline, sleep_until(Instant(deadline))));
                }
                if let Some((_, sleep)) = timer.as_mut()
                    && Pin::new(sleep).poll(cx).is_ready()
                {
                    timer = None;
                    cx.waker().wake_by_ref();
                }
            }
            None => timer = None,
        }
        Poll::Pending
    })
    .await
}

impl Shard {
    /// Step 1, first half: spent loans and transmit requests the other
    /// cores on the pair sent up.
    fn take_ups(&mut self, pair: &'static Pair, cx: &mut Context<'_>, stats: &Stats) {
        for (core, down) in self.downs.iter_mut() {
            while let Poll::Ready(Some(up)) = down.poll_recv(cx) {
                match up {
                    Up::Returned(loan) => {
                        pair.give_back(loan);
                        if let Some(held) = self.held.as_mut() {
                            held.returned(*core);
                        }
                    }
                    Up::Transmit(slot, len) => match pair.submit(slot, usize::from(len)) {
                        Ok(()) => {
                            stats.tx_for_others.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            stats.drop_tx_dead.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                }
            }
        }
    }

    /// Step 1: frames off the device, steered. `true` if the batch was full.
    fn take_frames(&mut self, pair: &'static Pair, cx: &mut Context<'_>, stats: &Stats) -> bool {
        let cores = self.peers.len();
        let here = self.core.index();
        for _ in 0..RX_BATCH {
            let loan = match pair.poll_lend(cx) {
                Poll::Ready(Some(loan)) => loan,
                // Out of service, none waiting, or the reserve reached
                // (loans coming back wake this task).
                Poll::Ready(None) | Poll::Pending => return false,
            };
            let frame = pair.frame(&loan);
            let verdict = check(frame, loan.checksum_valid()).map(|()| steer(frame, cores));
            let buffer = Buffer::Lent { pair, loan };
            match verdict {
                Err(bad) => {
                    let counter = match bad {
                        Bad::Ip => &stats.drop_bad_ip,
                        Bad::Tcp => &stats.drop_bad_tcp,
                        Bad::Udp => &stats.drop_bad_udp,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    self.give_back(buffer);
                }
                Ok(Steer::Core(c)) if c != here => self.lend_to(c, buffer, stats),
                Ok(Steer::Core(_) | Steer::Owner) => self.queue(buffer, stats),
                Ok(Steer::All) => {
                    for c in (0..cores).filter(|&c| c != here) {
                        if let Buffer::Lent { pair, loan } = &buffer {
                            let shared = Buffer::Lent {
                                pair,
                                loan: pair.share(loan),
                            };
                            self.lend_to(c, shared, stats);
                        }
                    }
                    self.queue(buffer, stats);
                }
            }
        }
        true
    }

    /// A lent frame to core `core`'s ring, unless that core holds its
    /// share of the buffers already or its ring is full (dropped, counted,
    /// given back).
    fn lend_to(&mut self, core: usize, frame: Buffer, stats: &Stats) {
        if !self.held.as_mut().is_some_and(|h| h.admit(core)) {
            stats.drop_held.fetch_add(1, Ordering::Relaxed);
            self.give_back(frame);
            return;
        }
        match self.peers[core].try_send(Inbound::Frame(frame)) {
            Ok(()) => {
                stats.steered_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(message)) => {
                stats.drop_ring_full.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = self.held.as_mut() {
                    held.returned(core);
                }
                if let Inbound::Frame(frame) = message {
                    self.give_back(frame);
                }
            }
        }
    }

    fn queue(&mut self, frame: Buffer, stats: &Stats) {
        if let Some(port) = syn_port(frame.data())
            && !self.room_for_syn(port)
        {
            stats.drop_syn_backlog.fetch_add(1, Ordering::Relaxed);
            self.give_back(frame);
            return;
        }
        if self.rx.len() >= RX_QUEUE {
            stats.drop_queue_full.fetch_add(1, Ordering::Relaxed);
            self.give_back(frame);
            return;
        }
        stats.rx_frames.fetch_add(1, Ordering::Relaxed);
        stats
            .rx_bytes
            .fetch_add(frame.data().len() as u64, Ordering::Relaxed);
        self.rx.push_back(frame);
    }

    /// Whether a SYN to `port` finds a listening socket when smoltcp reads
    /// it (counting the SYNs queued before it). With none, the SYN is
    /// dropped, as Linux does when a listen queue is full: smoltcp would
    /// answer it with a reset (refusing a client during a SYN flood),
    /// while a dropped SYN is sent again and finds a socket once the
    /// half-open connections time out. A port without a listener here is
    /// smoltcp's to refuse.
    fn room_for_syn(&mut self, port: u16) -> bool {
        let Some(listener) = self.listeners.get(&port) else {
            return true;
        };
        let listening = listener
            .backlog
            .iter()
            .filter(|&&h| self.sockets.get::<tcp::Socket>(h).state() == tcp::State::Listen)
            .count();
        let queued = match self.syns.iter_mut().find(|(p, _)| *p == port) {
            Some((_, queued)) => queued,
            None => {
                self.syns.push((port, 0));
                &mut self.syns.last_mut().expect("just pushed").1
            }
        };
        if *queued < listening {
            *queued += 1;
            true
        } else {
            false
        }
    }

    /// A spent frame's buffer back to its pair: directly on the pair's
    /// owner core, else over the up ring to the owner (never full: it has
    /// room for every buffer); a heap frame is freed.
    fn give_back(&mut self, frame: Buffer) {
        let Buffer::Lent { pair, loan } = frame else {
            return;
        };
        if pair.owner == self.core {
            pair.give_back(loan);
        } else if let Some(Some(up)) = self.ups.get_mut(pair.owner.index())
            && up.try_send(Up::Returned(loan)).is_err()
        {
            log::warn!("net: the up ring to the pair's owner is full; a receive buffer is lost");
        }
    }

    /// Closes what a dropped socket handle held (see [`close`]).
    fn close(&mut self, dropped: Dropped, stats: &Stats) {
        match dropped {
            Dropped::Socket(handle) => self.release(handle, stats),
            Dropped::Listener(port) => self.unlisten(port, stats),
        }
    }

    /// Step 2: messages from other cores. `true` if the batch was full.
    fn take_inbound(&mut self, cx: &mut Context<'_>, stats: &Stats) -> bool {
        for _ in 0..INBOUND_BATCH {
            match self.inbound.poll_recv(cx) {
                Poll::Ready(Some(Inbound::Frame(frame))) => {
                    stats.steered_in.fetch_add(1, Ordering::Relaxed);
                    self.queue(frame, stats);
                }
                Poll::Ready(Some(Inbound::Dropped(dropped))) => self.close(dropped, stats),
                Poll::Ready(None) | Poll::Pending => return false,
            }
        }
        true
    }

    /// Steps 3 to 5. `true` if frames the stack sent to itself wait.
    fn turn(&mut self, pair: Option<&'static Pair>, cx: &mut Context<'_>, stats: &Stats) -> bool {
        let started = Clock::now();
        self.tx_blocked = !wire::flush(
            &mut self.backlog,
            pair,
            up_to(&mut self.ups, self.pair_owner),
            cx,
            &mut self.tx_waited,
            stats,
        );
        self.apply_config();
        let mac = match self.iface.hardware_addr() {
            smoltcp::wire::HardwareAddress::Ethernet(mac) => mac.0,
        };
        let ip = self.ipv4().map(|ip| ip.octets());
        let mut device = Wire {
            rx: &mut self.rx,
            spent: &mut self.spent,
            backlog: &mut self.backlog,
            pair,
            up: up_to(&mut self.ups, self.pair_owner),
            waker: cx.waker(),
            waited: &mut self.tx_waited,
            blocked: &mut self.tx_blocked,
            stats,
            mac,
            ip,
            looped: &mut self.looped,
            loss: &mut self.loss,
        };
        let polled = Clock::now();
        add_ns(&stats.ns_flush, started);
        self.iface.poll(now(), &mut device, &mut self.sockets);
        let reporting = Clock::now();
        add_ns(&stats.ns_poll, polled);
        self.syns.clear();
        // Spent buffers back to their pools.
        while let Some(buffer) = self.spent.pop() {
            self.give_back(buffer);
        }
        self.dhcp_events();
        self.report(stats);
        self.buffers_due = self.sweep_buffers(Clock::now(), stats);
        add_ns(&stats.ns_report, reporting);
        self.loop_back(stats)
    }

    /// Frames the stack sent to itself, steered as if received (an ARP
    /// request for our own address stays here: this core asked).
    fn loop_back(&mut self, stats: &Stats) -> bool {
        let cores = self.peers.len();
        let here = self.core.index();
        for frame in core::mem::take(&mut self.looped) {
            let arp =
                frame.get(12..14) == Some(&[0x08, 0x06]) && frame.get(20..22) == Some(&[0, 1]);
            match steer(&frame, cores) {
                Steer::Core(c) if c != here && !arp => self.send_to(c, heap(frame), stats),
                Steer::All => {
                    for c in (0..cores).filter(|&c| c != here) {
                        self.send_to(c, heap(frame.clone()), stats);
                    }
                    self.queue(heap(frame), stats);
                }
                _ => self.queue(heap(frame), stats),
            }
        }
        !self.rx.is_empty()
    }

    fn send_to(&mut self, core: usize, frame: Buffer, stats: &Stats) {
        match self.peers[core].try_send(Inbound::Frame(frame)) {
            Ok(()) => {
                stats.steered_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                stats.drop_ring_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn apply_config(&mut self) {
        let generation = super::generation();
        if generation == self.applied {
            return;
        }
        self.applied = generation;
        let Some((address, _)) = super::address() else {
            return;
        };
        let [a, b, c, d] = address.ip;
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::new(
                IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)),
                address.prefix,
            ));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some([a, b, c, d]) = address.gateway {
            let _ = self
                .iface
                .routes_mut()
                .add_default_ipv4_route(Ipv4Address::new(a, b, c, d));
        }
    }

    fn dhcp_events(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let socket = self.sockets.get_mut::<dhcpv4::Socket>(handle);
        match socket.poll() {
            Some(dhcpv4::Event::Configured(config)) => {
                // A server that names no router (QEMU's user network with
                // `restrict=on` sends none): its own address is the gateway.
                let address = Address {
                    ip: config.address.address().octets(),
                    prefix: config.address.prefix_len(),
                    gateway: Some(config.router.unwrap_or(config.server.address).octets()),
                };
                super::publish(address, Source::Dhcp);
            }
            // The socket reports Deconfigured once as it starts.
            Some(dhcpv4::Event::Deconfigured) if super::address().is_some() => {
                log::warn!("net: the DHCP lease was lost")
            }
            Some(dhcpv4::Event::Deconfigured) => {}
            None => {}
        }
    }

    /// Step 5: readiness of every socket and listener, reported on change.
    fn report(&mut self, stats: &Stats) {
        let mut gone = Vec::new();
        for (&handle, meta) in self.metas.iter_mut() {
            let (ready, queues, closed) = match meta.kind {
                Kind::Tcp => tcp_readiness(self.sockets.get::<tcp::Socket>(handle), meta),
                Kind::Udp => udp_readiness(self.sockets.get::<udp::Socket>(handle)),
            };
            if meta.established && meta.connecting_since.take().is_some() {
                // Connected: the request's timeout would also end a
                // connection that is merely quiet.
                self.sockets
                    .get_mut::<tcp::Socket>(handle)
                    .set_timeout(None);
            }
            if let Some(since) = meta.dropped {
                // A closed handle whose send buffer still drains (a slow
                // reader after a half-close) is making progress: its
                // linger counts from the last byte the peer acknowledged.
                let draining = queues.1 < meta.seen.1;
                meta.seen = queues;
                if closed {
                    gone.push(handle);
                } else if draining {
                    meta.dropped = Some(Clock::now());
                } else if lingered(since, Clock::now()) {
                    if meta.kind == Kind::Tcp {
                        self.sockets.get_mut::<tcp::Socket>(handle).abort();
                    }
                    gone.push(handle);
                }
                continue;
            }
            let news = ready != meta.last || queues.0 > meta.seen.0 || queues.1 < meta.seen.1;
            meta.last = ready;
            meta.seen = queues;
            if !news || ready.is_empty() {
                continue;
            }
            if let Some(signal) = &meta.signal {
                let _ = signal.set(ready);
            }
            let read_side = Ready::READABLE | Ready::READ_CLOSED | Ready::ERROR;
            let write_side = Ready::WRITABLE | Ready::WRITE_CLOSED | Ready::ERROR;
            if touches(ready, read_side)
                && let Some(w) = meta.readers.take()
            {
                w.wake();
            }
            if touches(ready, write_side)
                && let Some(w) = meta.writers.take()
            {
                w.wake();
            }
        }
        for handle in gone {
            self.remove(handle, stats);
        }
        self.replenish();
        for listener in self.listeners.values_mut() {
            let acceptable = listener
                .backlog
                .iter()
                .any(|&h| acceptable(self.sockets.get::<tcp::Socket>(h)));
            if acceptable {
                if let Some(signal) = &listener.signal {
                    let _ = signal.set(Ready::READABLE);
                }
                if let Some(w) = listener.waker.take() {
                    w.wake();
                }
            }
        }
    }

    /// Keeps `options.backlog` sockets of every listener in Listen state
    /// (a half-open connection is given up after [`super::tcp::HANDSHAKE_TIMEOUT`]):
    /// a socket that took a SYN is replaced at once (the SYN after it
    /// finds a listening socket, not a reset), up to twice the backlog of
    /// connections waiting to be accepted.
    fn replenish(&mut self) {
        for (&port, listener) in self.listeners.iter_mut() {
            // A half-open connection that timed out (a SYN flood's) or was
            // reset before it was accepted frees its place.
            let sockets = &mut self.sockets;
            listener.backlog.retain(|&h| {
                let closed = sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed;
                if closed {
                    sockets.remove(h);
                }
                !closed
            });
            let listening = listener
                .backlog
                .iter()
                .filter(|&&h| self.sockets.get::<tcp::Socket>(h).state() == tcp::State::Listen)
                .count();
            let room = (2 * listener.options.backlog).saturating_sub(listener.backlog.len());
            for _ in 0..listener.options.backlog.saturating_sub(listening).min(room) {
                if let Ok(handle) =
                    super::tcp::listen_in(&mut self.sockets, port, &listener.options)
                {
                    listener.backlog.push(handle);
                }
            }
        }
    }

    /// Closes listener `port` (its handle was dropped): its sockets not
    /// yet accepted are reset.
    pub fn unlisten(&mut self, port: u16, stats: &Stats) {
        if let Some(listener) = self.listeners.remove(&port) {
            for handle in listener.backlog {
                self.sockets.get_mut::<tcp::Socket>(handle).abort();
                self.sockets.remove(handle);
            }
            stats.listeners.fetch_sub(1, Ordering::Relaxed);
            self.dirty = true;
        }
    }

    /// The handle was dropped: close the socket, remove it once closed.
    pub fn release(&mut self, handle: SocketHandle, stats: &Stats) {
        let Some(meta) = self.metas.get_mut(&handle) else {
            return;
        };
        meta.dropped = Some(Clock::now());
        meta.signal = None;
        meta.readers = None;
        meta.writers = None;
        match meta.kind {
            Kind::Tcp => {
                meta.closed_by_us = true;
                let socket = self.sockets.get_mut::<tcp::Socket>(handle);
                socket.close();
                if socket.state() == tcp::State::Closed {
                    self.remove(handle, stats);
                }
            }
            Kind::Udp => self.remove(handle, stats),
        }
        self.dirty = true;
    }

    fn remove(&mut self, handle: SocketHandle, stats: &Stats) {
        if let Some(meta) = self.metas.remove(&handle) {
            self.sockets.remove(handle);
            let counter = match meta.kind {
                Kind::Tcp => &stats.tcp_open,
                Kind::Udp => &stats.udp_open,
            };
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether a TCP socket here uses local port `port` (or listens on it).
    pub fn tcp_port_in_use(&self, port: u16) -> bool {
        self.listeners.contains_key(&port)
            || self.metas.iter().any(|(&h, m)| {
                m.kind == Kind::Tcp
                    && self
                        .sockets
                        .get::<tcp::Socket>(h)
                        .local_endpoint()
                        .is_some_and(|e| e.port == port)
            })
    }

    /// This interface's IPv4 address, once configured.
    pub fn ipv4(&self) -> Option<Ipv4Address> {
        self.iface.ipv4_addr()
    }
}

/// Adds the time since `since` to `counter`.
fn add_ns(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(Clock::now().0.saturating_sub(since.0), Ordering::Relaxed);
}

/// The sooner of smoltcp's next deadline and `at` (a clock time), as a
/// delay from now.
fn earliest(
    delay: Option<smoltcp::time::Duration>,
    at: Option<Instant>,
) -> Option<smoltcp::time::Duration> {
    let Some(at) = at else { return delay };
    let until = smoltcp::time::Duration::from_micros(at.0.saturating_sub(Clock::now().0) / 1000);
    Some(delay.map_or(until, |d| d.min(until)))
}

/// The up ring to core `owner` (`None` if that is this core).
fn up_to(ups: &mut [Option<Sender<Up>>], owner: usize) -> Option<&mut Sender<Up>> {
    ups.get_mut(owner).and_then(Option::as_mut)
}

/// A frame the stack sent to itself (from the heap; freed when spent).
fn heap(frame: Vec<u8>) -> Buffer {
    Buffer::Heap(frame)
}
