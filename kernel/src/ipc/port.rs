//! Ports: kernel message endpoints addressed by `(core, number)`, carried
//! by the protocol's `Send { channel, value }` message.
//!
//! A task opens port `n` on its core ([`open`]); any task on any core can
//! then send it `u64` values knowing only the core and the number
//! ([`send`], [`try_send`]) — a service address, where a [`channel`](super::channel)
//! needs its sender handle passed around. Each core's ports are that core's
//! table (senders on other cores read it to check that a port exists and
//! reserve room in it). A value from another core travels
//! through the ring towards the port's core and is queued by that core's
//! reactor; values from one core arrive in the order they were sent.
//!
//! Backpressure without loss: a sender reserves room in the port *before*
//! the value leaves (an atomic counter the sender checks), so a full port
//! refuses at the sender ([`PortError::Full`] hands the value back) and the
//! receiving reactor never has to drop a value it was sent. The one way a
//! sent value is not received is when the receiver closes the port while
//! the value is in flight (like a datagram to a socket that was just
//! closed): the reactor counts it in `ReactorStats::undeliverable` and logs
//! it. A port object is kept once made, so re-opening a number reuses it
//! and reservations stay consistent.
//!
//! A [`PortReceiver`] is a `futures_core::Stream` of the values (it never
//! ends: a port is open while its receiver lives).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use core::future::poll_fn;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use futures_core::Stream;
use percore_proto::Message;
use percore_wake::{WaitList, WakerSlot};

use crate::arch::{CoreId, cpu};
use crate::reactor::{self, PerCore, Reactor};

/// The most values one port holds.
pub const MAX_PORT_CAPACITY: usize = 1 << 16;

/// Why a port operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortError {
    /// There is no such core (or it has no reactor).
    NoSuchCore(CoreId),
    /// Nobody has port `number` open on `core`.
    NoSuchPort { core: CoreId, number: u32 },
    /// Port `number` is already open on this core.
    InUse(u32),
    /// Capacity 0 or above [`MAX_PORT_CAPACITY`].
    BadCapacity(usize),
    /// The port holds `capacity` values already; the value comes back.
    Full(u64),
    /// The core that owns the port has stopped.
    Stopped(CoreId),
}

/// One port; shared by its core's table, its receiver and its senders.
pub struct Port {
    number: u32,
    open: AtomicBool,
    capacity: AtomicUsize,
    /// Values sent and not yet taken (in flight or queued); never above
    /// `capacity` because senders reserve before sending.
    reserved: AtomicUsize,
    queue: spin::Mutex<VecDeque<u64>>,
    reader: WakerSlot,
    senders_waiting: WaitList,
}

/// One core's ports, by number.
type Table = spin::RwLock<BTreeMap<u32, Arc<Port>>>;

static PORTS: PerCore<Table> = PerCore::new();

impl Port {
    fn new(number: u32) -> Port {
        Port {
            number,
            open: AtomicBool::new(false),
            capacity: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            queue: spin::Mutex::new(VecDeque::new()),
            reader: WakerSlot::new(),
            senders_waiting: WaitList::new(),
        }
    }

    /// Reserves room for one value, or says why not.
    fn reserve(&self, core: CoreId, value: u64) -> Result<(), PortError> {
        if !self.open.load(Ordering::Acquire) {
            return Err(PortError::NoSuchPort {
                core,
                number: self.number,
            });
        }
        let capacity = self.capacity.load(Ordering::Acquire);
        let mut reserved = self.reserved.load(Ordering::Acquire);
        loop {
            if reserved >= capacity {
                return Err(PortError::Full(value));
            }
            match self.reserved.compare_exchange_weak(
                reserved,
                reserved + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => reserved = now,
            }
        }
    }

    /// Gives back `n` reserved places and wakes the senders waiting for room.
    fn release(&self, n: usize) {
        self.reserved.fetch_sub(n, Ordering::AcqRel);
        self.wake_senders();
    }

    /// Wakes the senders waiting for room (they retry and see why not).
    fn wake_senders(&self) {
        self.senders_waiting.wake_all();
    }

    /// Queues a value that arrived (its place was reserved by the sender).
    fn deliver(&self, value: u64) -> bool {
        // `open` is checked and cleared under the queue lock, so a value is
        // either queued before the close (and counted by it) or refused.
        let mut queue = self.queue.lock();
        if !self.open.load(Ordering::Acquire) {
            drop(queue);
            self.release(1);
            return false;
        }
        queue.push_back(value);
        drop(queue);
        self.reader.wake();
        true
    }
}

/// The receiving end of an open port. Dropping it closes the port; values
/// still queued are counted as undeliverable.
pub struct PortReceiver {
    core: CoreId,
    port: Arc<Port>,
}

/// Opens port `number` on this core, holding up to `capacity` values.
pub fn open(number: u32, capacity: usize) -> Result<PortReceiver, PortError> {
    if capacity == 0 || capacity > MAX_PORT_CAPACITY {
        return Err(PortError::BadCapacity(capacity));
    }
    let core = cpu::core_id();
    let mut ports = table(core).ok_or(PortError::NoSuchCore(core))?.write();
    let port = ports
        .entry(number)
        .or_insert_with(|| Arc::new(Port::new(number)))
        .clone();
    if port.open.load(Ordering::Acquire) {
        return Err(PortError::InUse(number));
    }
    port.queue.lock().reserve(capacity);
    port.capacity.store(capacity, Ordering::Release);
    port.open.store(true, Ordering::Release);
    Ok(PortReceiver { core, port })
}

fn table(core: CoreId) -> Option<&'static Table> {
    PORTS.get(core)
}

/// Sends `value` to port `number` on `core` if the port has room.
pub fn try_send(core: CoreId, number: u32, value: u64) -> Result<(), PortError> {
    let (owner, port) = find(core, number)?;
    send_to(owner, &port, value)
}

/// Sends `value` to port `number` on `core`, waiting while the port is
/// full. Fails only if the port or core does not exist (or closes or halts
/// while waiting).
pub async fn send(core: CoreId, number: u32, value: u64) -> Result<(), PortError> {
    let (owner, port) = find(core, number)?;
    poll_fn(|cx| match send_to(owner, &port, value) {
        Err(PortError::Full(_)) => {
            port.senders_waiting.register(cx.waker());
            // Re-try: room may have appeared before we registered.
            match send_to(owner, &port, value) {
                Err(PortError::Full(_)) => Poll::Pending,
                other => Poll::Ready(other),
            }
        }
        other => Poll::Ready(other),
    })
    .await
}

/// The reactor of `core` and its port `number` (a port object, once made,
/// stays in the table: closing and re-opening reuse it).
fn find(core: CoreId, number: u32) -> Result<(&'static Reactor, Arc<Port>), PortError> {
    let owner = reactor::reactor(core).ok_or(PortError::NoSuchCore(core))?;
    if owner.is_stopped() {
        return Err(PortError::Stopped(core));
    }
    let port = lookup(core, number).ok_or(PortError::NoSuchPort { core, number })?;
    Ok((owner, port))
}

/// Reserves room in `port` of `owner` and sends it `value`.
fn send_to(owner: &Reactor, port: &Port, value: u64) -> Result<(), PortError> {
    let core = owner.core();
    if owner.is_stopped() {
        return Err(PortError::Stopped(core));
    }
    port.reserve(core, value)?;
    let here = reactor::this();
    if core == here.core() {
        // The receiver (on any core) may have closed the port since `reserve`.
        if !port.deliver(value) {
            return Err(PortError::NoSuchPort {
                core,
                number: port.number,
            });
        }
    } else {
        here.send(
            core,
            Message::Send {
                port: port.number,
                value,
            },
        );
    }
    Ok(())
}

fn lookup(core: CoreId, number: u32) -> Option<Arc<Port>> {
    table(core)?.read().get(&number).cloned()
}

impl PortReceiver {
    /// The port's number.
    pub fn number(&self) -> u32 {
        self.port.number
    }

    /// The core that owns the port (where its values arrive).
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// Takes a value without waiting.
    pub fn try_recv(&mut self) -> Option<u64> {
        let value = self.port.queue.lock().pop_front()?;
        self.port.release(1);
        Some(value)
    }

    /// The next value, waiting for one.
    pub async fn recv(&mut self) -> u64 {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll: the stream's step.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<u64> {
        if let Some(value) = self.try_recv() {
            return Poll::Ready(value);
        }
        self.port.reader.register(cx.waker());
        // Re-check: a value queued before we registered is not missed.
        match self.try_recv() {
            Some(value) => Poll::Ready(value),
            None => Poll::Pending,
        }
    }
}

/// The port's values, in arrival order; endless while the port is open.
impl Stream for PortReceiver {
    type Item = u64;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u64>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}

impl Drop for PortReceiver {
    fn drop(&mut self) {
        let left = {
            let mut queue = self.port.queue.lock();
            self.port.open.store(false, Ordering::Release);
            core::mem::take(&mut *queue)
        };
        if !left.is_empty() {
            log::warn!(
                "port {} on core {} closed with {} values unread",
                self.port.number,
                self.core,
                left.len()
            );
            if let Some(owner) = reactor::reactor(self.core) {
                owner
                    .stats
                    .undeliverable
                    .fetch_add(left.len() as u64, Ordering::Relaxed);
            }
            self.port.release(left.len());
        }
        // Senders waiting for room learn that the port is gone.
        self.port.release(0);
    }
}

/// The reactor's handling of an arriving `Send`.
pub(super) fn on_message(from: CoreId, message: Message) {
    let Message::Send {
        port: number,
        value,
    } = message
    else {
        return;
    };
    let me = reactor::this();
    let delivered = lookup(me.core(), number).is_some_and(|port| port.deliver(value));
    if !delivered {
        me.stats.undeliverable.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "port {number} on core {}: closed while a value from core {from} was in flight",
            me.core()
        );
    }
}

/// Core `core` stopped: senders waiting for room in its ports retry and
/// learn that it stopped.
pub(super) fn on_core_stopped(core: CoreId) {
    if let Some(table) = table(core) {
        for port in table.read().values() {
            port.wake_senders();
        }
    }
}
