//! The intercore bus as the reactor uses it: an N x N matrix of SPSC rings
//! (`percore_ring::spsc`), ring i->j written only by core i and read only by
//! core j, plus one doorbell per core.
//!
//! A message is one machine word plus a tag, written in place into a
//! preallocated ring slot; a task travels as its `Arc<TaskCell>` pointer.
//! A full ring is backpressure: the message goes to a per-destination
//! overflow queue, in order, flushed every turn of the loop — task spawns,
//! wakes and migrations are never dropped. That queue is the one place the
//! bus may allocate (counted in `overflowed`).
//!
//! Doorbell (see `percore_ring::wait::Doorbell`): a core about to halt marks
//! itself sleeping and re-checks its rings; a sender that publishes and then
//! finds the mark set rings an IPI. Busy receivers are never interrupted.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use percore_ring::spsc;
use percore_ring::wait::Doorbell;
use percore_ring::PushError;

use super::task::TaskCell;
use crate::arch::x86_64::cpu_local::CoreId;

/// Slots per ring (per ordered core pair).
pub const RING_CAPACITY: usize = 256;

/// What travels in a ring slot.
#[derive(Clone, Copy, Debug)]
pub enum Wire {
    Spawn(u64),
    Wake(u64),
    Migrate(u64),
    StealRequest(u8),
    StealDenied,
}

/// A message to send (owning any task reference it carries).
pub enum Outgoing {
    Spawn(Arc<TaskCell>),
    Wake(Arc<TaskCell>),
    Migrate(Arc<TaskCell>),
    StealRequest { priority: u8 },
    StealDenied,
}

/// A message received (owning any task reference it carries).
pub enum Incoming {
    Spawn(Arc<TaskCell>),
    Wake(Arc<TaskCell>),
    Migrate(Arc<TaskCell>),
    StealRequest { priority: u8 },
    StealDenied,
    #[allow(dead_code)]
    Other(Wire),
}

impl Outgoing {
    fn into_wire(self) -> Wire {
        match self {
            Outgoing::Spawn(cell) => Wire::Spawn(TaskCell::into_word(cell)),
            Outgoing::Wake(cell) => Wire::Wake(TaskCell::into_word(cell)),
            Outgoing::Migrate(cell) => Wire::Migrate(TaskCell::into_word(cell)),
            Outgoing::StealRequest { priority } => Wire::StealRequest(priority),
            Outgoing::StealDenied => Wire::StealDenied,
        }
    }
}

impl Incoming {
    fn from_wire(wire: Wire) -> Incoming {
        // SAFETY: every task word on a ring was made by `into_wire` from an
        // owned Arc and is popped (so unpacked) exactly once.
        unsafe {
            match wire {
                Wire::Spawn(word) => Incoming::Spawn(TaskCell::from_word(word)),
                Wire::Wake(word) => Incoming::Wake(TaskCell::from_word(word)),
                Wire::Migrate(word) => Incoming::Migrate(TaskCell::from_word(word)),
                Wire::StealRequest(priority) => Incoming::StealRequest { priority },
                Wire::StealDenied => Incoming::StealDenied,
            }
        }
    }
}

/// Counters of one endpoint.
#[derive(Default)]
pub struct BusStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Messages that found their ring full and waited in the overflow queue.
    pub overflowed: AtomicU64,
    pub doorbells: AtomicU64,
}

/// One core's end of the bus.
pub struct Bus {
    me: usize,
    outbox: Vec<Option<spsc::Producer<Wire>>>,
    inbox: Vec<Option<spsc::Consumer<Wire>>>,
    overflow: Vec<VecDeque<Wire>>,
    doorbells: Arc<[Doorbell]>,
    next_peer: usize,
    pub stats: Arc<BusStats>,
}

/// Builds the ring matrix for `cores` cores; element i goes to core i.
pub fn create(cores: usize) -> Vec<Bus> {
    let doorbells: Arc<[Doorbell]> = (0..cores).map(|_| Doorbell::new()).collect();
    let mut buses: Vec<Bus> = (0..cores)
        .map(|me| Bus {
            me,
            outbox: (0..cores).map(|_| None).collect(),
            inbox: (0..cores).map(|_| None).collect(),
            overflow: (0..cores).map(|_| VecDeque::new()).collect(),
            doorbells: doorbells.clone(),
            next_peer: 0,
            stats: Arc::new(BusStats::default()),
        })
        .collect();
    for from in 0..cores {
        for to in (0..cores).filter(|&to| to != from) {
            let (producer, consumer) = spsc::channel(RING_CAPACITY).expect("ring capacity is a valid power of two");
            buses[from].outbox[to] = Some(producer);
            buses[to].inbox[from] = Some(consumer);
        }
    }
    buses
}

impl Bus {
    /// Sends `message` to core `to`; returns whether to ring its doorbell.
    /// Never loses the message: a full ring queues it for [`Bus::flush`].
    pub fn send(&mut self, to: CoreId, message: Outgoing) -> bool {
        let wire = message.into_wire();
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        let to = to.index();
        let Some(Some(ring)) = self.outbox.get_mut(to) else {
            // Not a peer (self or unknown): keep it for flush, which logs it.
            log::error!("bus: no ring from core {} to core {to}; message {wire:?} kept back", self.me);
            self.overflow.get_mut(self.me).map(|q| q.push_back(wire));
            return false;
        };
        // Keep order: behind anything already waiting for this ring.
        if !self.overflow[to].is_empty() {
            self.overflow[to].push_back(wire);
            self.stats.overflowed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match ring.try_push(wire) {
            Ok(()) => self.ring_if_asleep(to),
            Err(PushError::Full(wire)) => {
                self.overflow[to].push_back(wire);
                self.stats.overflowed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    fn ring_if_asleep(&self, to: usize) -> bool {
        let ring = self.doorbells[to].should_ring();
        if ring {
            self.stats.doorbells.fetch_add(1, Ordering::Relaxed);
        }
        ring
    }

    /// Moves queued overflow into rings that have room; returns the cores
    /// whose doorbell must be rung.
    pub fn flush(&mut self) -> Vec<CoreId> {
        let mut ring_these = Vec::new();
        for to in 0..self.overflow.len() {
            if self.overflow[to].is_empty() {
                continue;
            }
            let Some(Some(ring)) = self.outbox.get_mut(to) else { continue };
            let mut pushed = false;
            while let Some(wire) = self.overflow[to].pop_front() {
                if let Err(PushError::Full(wire)) = ring.try_push(wire) {
                    self.overflow[to].push_front(wire);
                    break;
                }
                pushed = true;
            }
            if pushed && self.ring_if_asleep(to) {
                ring_these.push(CoreId(to as u32));
            }
        }
        ring_these
    }

    /// Takes up to `max` messages, round-robin over the peers so that a
    /// flooding peer cannot starve the others; per-peer order is kept.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(CoreId, Incoming)) -> usize {
        let peers = self.inbox.len();
        let per_peer = (max / peers.max(1)).max(1);
        let mut taken = 0;
        for step in 0..peers {
            let from = (self.next_peer + step) % peers;
            let Some(ring) = self.inbox[from].as_mut() else { continue };
            for _ in 0..per_peer {
                match ring.try_pop() {
                    Ok(wire) => {
                        taken += 1;
                        f(CoreId(from as u32), Incoming::from_wire(wire));
                    }
                    Err(_) => break,
                }
            }
        }
        self.next_peer = (self.next_peer + 1) % peers.max(1);
        self.stats.received.fetch_add(taken as u64, Ordering::Relaxed);
        taken
    }

    /// About to halt: mark this core asleep and re-check the rings. Returns
    /// false (and clears the mark) if a message is waiting: do not halt.
    pub fn prepare_sleep(&mut self) -> bool {
        self.doorbells[self.me].prepare_sleep();
        let waiting = self.inbox.iter_mut().flatten().any(|ring| !ring.is_empty());
        if waiting {
            self.doorbells[self.me].wake();
        }
        !waiting
    }

    /// Awake again after a halt.
    pub fn woke(&mut self) {
        self.doorbells[self.me].wake();
    }

    /// Messages waiting in overflow queues.
    pub fn overflow_len(&self) -> usize {
        self.overflow.iter().map(VecDeque::len).sum()
    }

    /// Messages waiting in this core's inbound rings.
    pub fn inbound_len(&mut self) -> usize {
        self.inbox.iter_mut().flatten().map(|ring| ring.slots()).sum()
    }
}
