//! Ports: kernel message endpoints addressed by `(core, number)`, carried
//! by the protocol's `Send { channel, value }` message.
//!
//! A task opens port `n` on its core ([`open`]); any task on any core can
//! then send it `u64` values knowing only the core and the number
//! ([`send`], [`try_send`]) — a service address, where a [`channel`](super::channel)
//! needs its sender handle passed around. A value from another core travels
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

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Poll, Waker};

use super::{Reactor, bus, reactor, this};
use crate::arch::x86_64::cpu_local::CoreId;

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
    /// The core that owns the port has halted.
    Halted(CoreId),
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
    reader: spin::Mutex<Option<Waker>>,
    senders_waiting: spin::Mutex<VecDeque<Waker>>,
}

impl Port {
    fn new(number: u32) -> Port {
        Port {
            number,
            open: AtomicBool::new(false),
            capacity: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            queue: spin::Mutex::new(VecDeque::new()),
            reader: spin::Mutex::new(None),
            senders_waiting: spin::Mutex::new(VecDeque::new()),
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
    pub(super) fn wake_senders(&self) {
        let waiting = core::mem::take(&mut *self.senders_waiting.lock());
        for waker in waiting {
            waker.wake();
        }
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
        if let Some(waker) = self.reader.lock().take() {
            waker.wake();
        }
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
    let here = this();
    let mut ports = here.ports.write();
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
    Ok(PortReceiver {
        core: here.core,
        port,
    })
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
            port.senders_waiting.lock().push_back(cx.waker().clone());
            // Re-try once: room may have appeared before the waker was queued.
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
    let owner = reactor(core).ok_or(PortError::NoSuchCore(core))?;
    if owner.is_parked() {
        return Err(PortError::Halted(core));
    }
    let port = lookup(owner, number).ok_or(PortError::NoSuchPort { core, number })?;
    Ok((owner, port))
}

/// Reserves room in `port` of `owner` and sends it `value`.
fn send_to(owner: &Reactor, port: &Port, value: u64) -> Result<(), PortError> {
    let core = owner.core;
    if owner.is_parked() {
        return Err(PortError::Halted(core));
    }
    port.reserve(core, value)?;
    let here = this();
    if core == here.core {
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
            bus::Letter::Send {
                port: port.number,
                value,
            },
        );
    }
    Ok(())
}

fn lookup(owner: &Reactor, number: u32) -> Option<Arc<Port>> {
    owner.ports.read().get(&number).cloned()
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
        poll_fn(|cx| {
            if let Some(value) = self.try_recv() {
                return Poll::Ready(value);
            }
            *self.port.reader.lock() = Some(cx.waker().clone());
            // Re-check: a value queued before the waker was stored is not missed.
            match self.try_recv() {
                Some(value) => Poll::Ready(value),
                None => Poll::Pending,
            }
        })
        .await
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
            if let Some(owner) = reactor(self.core) {
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
pub(super) fn on_message(reactor: &Reactor, from: CoreId, number: u32, value: u64) {
    let delivered = lookup(reactor, number).is_some_and(|port| port.deliver(value));
    if !delivered {
        reactor.stats.undeliverable.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "port {number} on core {}: closed while a value from core {from} was in flight",
            reactor.core
        );
    }
}
