//! [`Endpoint`]: one core's handle on the bus. It owns the producer ends of
//! the rings towards every peer, the consumer ends of the rings from every
//! peer, this core's broadcast publisher and its subscriptions to every
//! peer's broadcasts, plus the overflow queues. It is `Send` (moved to its
//! core once) and used only by that core, hence `&mut self` everywhere.
//!
//! # Sleeping without losing a wake-up
//!
//! Every core has a [`Doorbell`] (a "sleeping" flag) that its peers can see.
//! The receiver, about to halt, calls [`Endpoint::prepare_sleep`]: *store
//! flag; SeqCst fence; look at every inbound ring*. A sender, after
//! publishing a message, does *store ring tail; SeqCst fence; load flag*.
//! With a SeqCst fence between each side's store and load, at least one side
//! sees the other's store: either the receiver sees the message and does not
//! halt, or the sender sees the flag and is told to ring
//! ([`Delivery::RingDoorbell`]). The flag is cleared by the sender that sees
//! it (a swap), so one sleep costs at most one IPI.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use percore_ring::spmc::broadcast::Publisher;
use percore_ring::spsc::Producer;
use percore_ring::wait::Doorbell;

use crate::core_set::CoreSet;
use crate::delivery::{Batch, Delivery};
use crate::error::{RouteError, SendError};
use crate::id::CoreId;
use crate::inbound::Inbound;
use crate::message::Message;
use crate::stats::Stats;

/// One core's end of the bus; see the [module doc](self) and [`Bus::new`](crate::Bus::new).
pub struct Endpoint {
    id: CoreId,
    /// One doorbell per core of the bus, indexed by core.
    doorbells: Arc<[Doorbell]>,
    /// Ring towards each core, indexed by core (`None` for this core).
    outbound: Vec<Option<Producer<Message>>>,
    /// Messages waiting for room in the ring towards each core. The only
    /// memory on the bus that grows after creation.
    overflow: Vec<VecDeque<Message>>,
    publisher: Publisher<Message>,
    inbound: Inbound,
    stats: Stats,
}

/// The parts [`Bus::new`](crate::Bus::new) assembles an endpoint from.
pub(crate) struct Parts {
    pub(crate) id: CoreId,
    pub(crate) doorbells: Arc<[Doorbell]>,
    pub(crate) outbound: Vec<Option<Producer<Message>>>,
    pub(crate) publisher: Publisher<Message>,
    pub(crate) inbound: Inbound,
}

impl Endpoint {
    pub(crate) fn new(p: Parts) -> Self {
        let overflow = p.outbound.iter().map(|_| VecDeque::new()).collect();
        Endpoint {
            id: p.id,
            doorbells: p.doorbells,
            outbound: p.outbound,
            overflow,
            publisher: p.publisher,
            inbound: p.inbound,
            stats: Stats::default(),
        }
    }

    /// This endpoint's core.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId};
    /// let eps = Bus::new(3, 4).unwrap();
    /// assert_eq!(eps[2].id(), CoreId(2));
    /// ```
    pub fn id(&self) -> CoreId {
        self.id
    }

    /// Number of cores on the bus.
    ///
    /// ```
    /// use percore_proto::Bus;
    /// assert_eq!(Bus::new(3, 4).unwrap()[0].cores(), 3);
    /// ```
    pub fn cores(&self) -> usize {
        self.outbound.len()
    }

    /// The index of `to`'s ring, or why there is none.
    fn route(&self, to: CoreId) -> Result<usize, RouteError> {
        match self.outbound.get(to.index()) {
            None => Err(RouteError::NoSuchCore(to)),
            Some(None) => Err(RouteError::ToSelf),
            Some(Some(_)) => Ok(to.index()),
        }
    }

    /// The doorbell verdict after publishing into `to`'s ring.
    fn ring_if_asleep(&mut self, to: usize) -> Delivery {
        if self.doorbells[to].should_ring() {
            self.stats.doorbells += 1;
            Delivery::RingDoorbell
        } else {
            Delivery::Delivered
        }
    }

    /// Sends `msg` to core `to`, or hands it back: [`SendError::Full`] when
    /// the ring is full (backpressure) *or* while older messages to `to`
    /// still wait in the overflow queue (so they keep their order; see
    /// [`send_or_queue`](Self::send_or_queue)).
    ///
    /// If the result [`must_ring`](Delivery::must_ring), the caller sends
    /// `to` an IPI.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message, SendError};
    /// let mut eps = Bus::new(2, 1).unwrap();
    /// assert!(eps[0].send(CoreId(1), Message::Stop).is_ok());
    /// assert_eq!(eps[0].send(CoreId(1), Message::StealDenied), Err(SendError::Full(Message::StealDenied)));
    /// assert_eq!(eps[0].send(CoreId(0), Message::Stop), Err(SendError::ToSelf(Message::Stop)));
    /// ```
    pub fn send(&mut self, to: CoreId, msg: Message) -> Result<Delivery, SendError> {
        let i = match self.route(to) {
            Ok(i) => i,
            Err(RouteError::NoSuchCore(_)) => return Err(SendError::NoSuchCore(msg)),
            Err(RouteError::ToSelf) => return Err(SendError::ToSelf(msg)),
        };
        let pushed = match (&mut self.outbound[i], self.overflow[i].is_empty()) {
            (Some(tx), true) => tx.try_push(msg).is_ok(),
            _ => false,
        };
        if !pushed {
            self.stats.full += 1;
            return Err(SendError::Full(msg));
        }
        self.stats.sent += 1;
        Ok(self.ring_if_asleep(i))
    }

    /// Sends `msg` to `to` and never loses it: if the ring is full (or older
    /// messages already wait), `msg` is appended to this core's overflow
    /// queue for `to` and [`Delivery::Queued`] is returned; a later
    /// [`flush`](Self::flush) moves it into the ring, in order.
    ///
    /// The overflow queues are the **one place where the bus allocates after
    /// creation**: use this only for messages that must not be refused
    /// (wakes, joins), and watch [`Stats::overflow_peak`].
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Delivery, Message};
    /// let mut eps = Bus::new(2, 1).unwrap();
    /// assert_eq!(eps[0].send_or_queue(CoreId(1), Message::Stop), Ok(Delivery::Delivered));
    /// assert_eq!(eps[0].send_or_queue(CoreId(1), Message::StealDenied), Ok(Delivery::Queued));
    /// assert_eq!(eps[0].stats().overflow_pending, 1);
    /// ```
    pub fn send_or_queue(&mut self, to: CoreId, msg: Message) -> Result<Delivery, SendError> {
        match self.send(to, msg) {
            Err(SendError::Full(msg)) => {
                self.stats.full -= 1;
                self.overflow[to.index()].push_back(msg);
                self.stats.overflow_queued += 1;
                self.stats.overflow_pending += 1;
                self.stats.overflow_peak =
                    self.stats.overflow_peak.max(self.stats.overflow_pending);
                Ok(Delivery::Queued)
            }
            other => other,
        }
    }

    /// Moves queued overflow messages into their rings as far as there is
    /// room, oldest first. Returns the cores that must be sent an IPI. Call
    /// it once per reactor loop iteration.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message};
    /// let mut eps = Bus::new(2, 1).unwrap();
    /// let _ = eps[0].send_or_queue(CoreId(1), Message::Stop);
    /// let _ = eps[0].send_or_queue(CoreId(1), Message::StealDenied); // queued
    /// eps[1].drain(1, |_, _| {});
    /// assert!(eps[0].flush().is_empty()); // core 1 is awake
    /// assert_eq!(eps[0].stats().overflow_pending, 0);
    /// ```
    pub fn flush(&mut self) -> CoreSet {
        let mut ring = CoreSet::new();
        for i in 0..self.outbound.len() {
            let (Some(tx), queue) = (&mut self.outbound[i], &mut self.overflow[i]) else {
                continue;
            };
            let n = tx.slots().min(queue.len());
            if n == 0 {
                continue;
            }
            let Ok(chunk) = tx.write_chunk_uninit(n) else {
                continue;
            };
            let moved = chunk.fill_from_iter(queue.drain(..n));
            self.stats.overflow_pending -= moved as u64;
            self.stats.sent += moved as u64;
            if self.ring_if_asleep(i).must_ring() {
                ring.insert(CoreId(i as u16));
            }
        }
        ring
    }

    /// Drops the messages waiting in the overflow queue towards `to` and
    /// returns how many: for a receiver that will never drain its ring again
    /// (a core that has stopped), so that this core's
    /// [`prepare_sleep`](Self::prepare_sleep) is not held up by them forever.
    /// The caller reports the loss.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message};
    /// let mut eps = Bus::new(2, 1).unwrap();
    /// let _ = eps[0].send_or_queue(CoreId(1), Message::Stop);
    /// let _ = eps[0].send_or_queue(CoreId(1), Message::StealDenied); // queued
    /// assert_eq!(eps[0].discard_overflow(CoreId(1)), 1);
    /// assert_eq!(eps[0].stats().overflow_pending, 0);
    /// ```
    pub fn discard_overflow(&mut self, to: CoreId) -> usize {
        let Some(queue) = self.overflow.get_mut(to.index()) else {
            return 0;
        };
        let n = queue.len();
        queue.clear();
        self.stats.overflow_pending -= n as u64;
        n
    }

    /// Sends a prefix of `msgs` to `to`, as many as fit, written in place
    /// into the ring and published with one cursor store and one doorbell
    /// check. Nothing is sent while overflow messages to `to` wait.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message, TaskRef};
    /// let mut eps = Bus::new(2, 8).unwrap();
    /// let wakes = [1, 2, 3].map(|t| Message::Wake { task: TaskRef(t) });
    /// assert_eq!(eps[0].send_batch(CoreId(1), &wakes).unwrap().sent, 3);
    /// let mut got = Vec::new();
    /// eps[1].drain(8, |_, m| got.push(m));
    /// assert_eq!(got, wakes);
    /// ```
    pub fn send_batch(&mut self, to: CoreId, msgs: &[Message]) -> Result<Batch, RouteError> {
        let i = self.route(to)?;
        let sent = match (&mut self.outbound[i], self.overflow[i].is_empty()) {
            (Some(tx), true) => {
                let n = tx.slots().min(msgs.len());
                match tx.write_chunk_uninit(n) {
                    Ok(chunk) => chunk.fill_from_iter(msgs[..n].iter().copied()),
                    Err(_) => 0,
                }
            }
            _ => 0,
        };
        self.stats.sent += sent as u64;
        self.stats.full += (msgs.len() - sent) as u64;
        let delivery = match sent {
            0 => Delivery::Delivered,
            _ => self.ring_if_asleep(i),
        };
        Ok(Batch { sent, delivery })
    }

    /// Sends `msg` to every other core through this core's broadcast ring
    /// (written once, read in place by each peer; each peer receives it
    /// exactly once through [`drain`](Self::drain)). Returns the cores that
    /// must be sent an IPI, or [`SendError::Full`] if the slowest peer is a
    /// whole ring behind.
    ///
    /// ```
    /// use percore_proto::{Bus, Message};
    /// let mut eps = Bus::new(3, 4).unwrap();
    /// assert!(eps[0].broadcast(Message::Stop).unwrap().is_empty());
    /// assert_eq!(eps[1].drain(8, |_, _| {}), 1);
    /// assert_eq!(eps[2].drain(8, |_, _| {}), 1);
    /// ```
    pub fn broadcast(&mut self, msg: Message) -> Result<CoreSet, SendError> {
        if self.publisher.try_publish(msg).is_err() {
            self.stats.full += 1;
            return Err(SendError::Full(msg));
        }
        self.stats.sent += 1;
        self.stats.broadcast += 1;
        let mut ring = CoreSet::new();
        for i in 0..self.outbound.len() {
            if i != self.id.index() && self.ring_if_asleep(i).must_ring() {
                ring.insert(CoreId(i as u16));
            }
        }
        Ok(ring)
    }

    /// Takes up to `max` messages from the inbound rings and broadcast
    /// subscriptions and calls `f(sender, message)` for each; returns how
    /// many. Peers are served round-robin (at most 32 messages per peer per
    /// turn, resuming where the last call stopped), each peer's messages in
    /// the order it sent them.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message};
    /// let mut eps = Bus::new(2, 4).unwrap();
    /// let _ = eps[1].send(CoreId(0), Message::Ping { seq: 1, sent_at: 0 }).unwrap();
    /// let mut got = Vec::new();
    /// assert_eq!(eps[0].drain(16, |from, m| got.push((from, m))), 1);
    /// assert_eq!(got, [(CoreId(1), Message::Ping { seq: 1, sent_at: 0 })]);
    /// ```
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(CoreId, Message)) -> usize {
        let n = self.inbound.drain(max, &mut f);
        self.stats.received += n as u64;
        n
    }

    /// How many messages wait in this core's inbound rings and broadcast
    /// subscriptions right now (all peers together): the depth a
    /// [`drain`](Self::drain) would find.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message};
    /// let mut eps = Bus::new(3, 4).unwrap();
    /// let _ = eps[1].send(CoreId(0), Message::StealDenied).unwrap();
    /// let _ = eps[2].send(CoreId(0), Message::StealDenied).unwrap();
    /// let _ = eps[1].broadcast(Message::Stop).unwrap();
    /// assert_eq!(eps[0].inbound_depth(), 3);
    /// eps[0].drain(8, |_, _| {});
    /// assert_eq!(eps[0].inbound_depth(), 0);
    /// ```
    pub fn inbound_depth(&mut self) -> usize {
        self.inbound.depth()
    }

    /// Whether a message waits in this core's inbound rings (or overflow
    /// messages wait to be flushed), without taking it or announcing a
    /// sleep: what a core spinning before it halts (halt polling) checks.
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message};
    /// let mut eps = Bus::new(2, 4).unwrap();
    /// assert!(!eps[1].has_inbound());
    /// eps[0].send(CoreId(1), Message::Stop).unwrap();
    /// assert!(eps[1].has_inbound());
    /// ```
    pub fn has_inbound(&mut self) -> bool {
        self.inbound.has_message() || self.stats.overflow_pending > 0
    }

    /// Announces that this core is about to halt, then checks its inbound
    /// rings once more. Returns `true` if the core may halt now (a sender
    /// that publishes from here on is told to ring the doorbell), `false` if
    /// a message arrived meanwhile or overflow messages wait to be flushed
    /// (the mark is cleared; do not halt, go round the loop again).
    ///
    /// In the kernel, call it with interrupts disabled and halt with
    /// `sti; hlt`, so an IPI sent between this call and the halt stays
    /// pending and ends the halt. After waking, call [`end_sleep`](Self::woke).
    ///
    /// ```
    /// use percore_proto::{Bus, CoreId, Message};
    /// let mut eps = Bus::new(2, 4).unwrap();
    /// assert!(eps[1].prepare_sleep()); // nothing pending: may halt
    /// let d = eps[0].send(CoreId(1), Message::Stop).unwrap();
    /// assert!(d.must_ring()); // core 1 sleeps: send it an IPI
    /// eps[1].end_sleep();
    /// assert!(!eps[1].prepare_sleep()); // the message is waiting: do not halt
    /// ```
    pub fn prepare_sleep(&mut self) -> bool {
        self.doorbells[self.id.index()].prepare_sleep();
        if self.has_inbound() {
            self.doorbells[self.id.index()].wake();
            return false;
        }
        true
    }

    /// Announces that this core is awake and polling again (after a halt).
    ///
    /// ```
    /// use percore_proto::Bus;
    /// let mut eps = Bus::new(1, 4).unwrap();
    /// assert!(eps[0].prepare_sleep());
    /// eps[0].end_sleep();
    /// ```
    pub fn end_sleep(&self) {
        self.doorbells[self.id.index()].wake();
    }

    /// This endpoint's counters.
    ///
    /// ```
    /// use percore_proto::Bus;
    /// assert_eq!(Bus::new(1, 4).unwrap()[0].stats().sent, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        self.stats
    }
}
