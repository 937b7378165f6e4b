//! Step 3 of the reactor loop: each core's readiness queue (a
//! `percore_poll::Poll`) and the protocol's `Register` message.
//!
//! An event source (a device's interrupt line or queue: the UART's receive
//! line, a virtio queue) is *owned* by one core: the one its interrupt goes to. A task on any core
//! that wants to hear about it creates a [`Readiness`]: the registration is
//! made in the owner's poll, by the owner, on a `Register` message (a poll's
//! registry is core-local). The device raises readiness with [`raise`] —
//! lock-free `Signal::set`s into the owner's queue, safe in its interrupt
//! handler. The owner's reactor drains the queue every turn and wakes each
//! registered task by its token, through the bus when the task lives on
//! another core.
//!
//! Edge-triggered like mio: read the device until it has nothing, then wait
//! for the next edge. A new registration reports one event as soon as it
//! is in place (possibly spurious), so an edge that came before it cannot
//! be missed by a task that checks the device after that first event.
//!
//! A [`Readiness`] is a `futures_core::Stream` of its edges (endless while
//! registered).
//!
//! Sleeping: the owner's reactor announces its sleep to the poll
//! (`prepare_sleep`); a signaller on another core that then queues readiness
//! rings the owner's doorbell (the poll's `Park::unpark`).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use core::task::{Context, Poll as TaskPoll};
use core::time::Duration;

use futures_core::Stream;

use percore_poll::{Events, Interest, Park, Poll, Ready, Registration, Signal, Source, Token};
use percore_proto::{Handle, Message};
use percore_wake::WakerSlot;

use super::{Reactor, reactor, this};
use crate::arch::{CoreId, cpu, doorbell};

/// Registrations one core's readiness queue holds.
pub const QUEUE_CAPACITY: usize = 1024;
/// Event sources the kernel can define.
pub const MAX_SOURCES: usize = 64;

/// A kernel event source, by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceId(pub u32);

/// Why a readiness operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessError {
    /// No source with this number has been defined.
    NoSuchSource(SourceId),
    /// All [`MAX_SOURCES`] sources are defined.
    TooManySources,
    /// There is no such core (or it has no reactor).
    NoSuchCore(CoreId),
    /// The owner core has stopped.
    OwnerStopped(CoreId),
}

const NO_OWNER: u32 = u32::MAX;

/// One event source: its owner core and the signals of its registrations.
struct SourceSlot {
    owner: AtomicU32,
    /// Taken in the owner's interrupt handler and, with interrupts off, by
    /// the owner's reactor (register/deregister) and by other raisers.
    signals: spin::Mutex<Vec<(usize, Signal)>>,
}

static SOURCES: [SourceSlot; MAX_SOURCES] = [const {
    SourceSlot {
        owner: AtomicU32::new(NO_OWNER),
        signals: spin::Mutex::new(Vec::new()),
    }
}; MAX_SOURCES];
static NEXT_SOURCE: AtomicU32 = AtomicU32::new(0);

/// Defines a new event source owned by core `owner` (the core its
/// interrupt is routed to).
pub fn define_source(owner: CoreId) -> Result<SourceId, ReadinessError> {
    if !cpu::is_online(owner) {
        return Err(ReadinessError::NoSuchCore(owner));
    }
    let n = NEXT_SOURCE.fetch_add(1, Ordering::AcqRel);
    let slot = SOURCES
        .get(n as usize)
        .ok_or(ReadinessError::TooManySources)?;
    slot.owner.store(u32::from(owner.0), Ordering::Release);
    Ok(SourceId(n))
}

fn owner(source: SourceId) -> Result<CoreId, ReadinessError> {
    let slot = SOURCES
        .get(source.0 as usize)
        .ok_or(ReadinessError::NoSuchSource(source))?;
    match slot.owner.load(Ordering::Acquire) {
        NO_OWNER => Err(ReadinessError::NoSuchSource(source)),
        core => Ok(CoreId(core as u16)),
    }
}

/// Reports readiness of `source` to everyone registered for it. Lock-free
/// towards the pollers; callable from the owner's interrupt handler or from
/// any core. Returns how many registrations were signalled.
pub fn raise(source: SourceId, ready: Ready) -> usize {
    let Some(slot) = SOURCES.get(source.0 as usize) else {
        return 0;
    };
    cpu::without_interrupts(|| {
        let signals = slot.signals.lock();
        signals
            .iter()
            .filter(|(_, signal)| signal.set(ready).is_ok())
            .count()
    })
}

/// What a registered task shares with the owner core's reactor.
struct Watcher {
    /// Readiness reported and not yet taken by [`Readiness::ready`].
    ready: AtomicU8,
    waker: WakerSlot,
    /// Set when the `Readiness` is dropped (a registration that arrives
    /// after its own deregistration is dropped on arrival).
    closed: AtomicBool,
}

/// A task's registration for one event source (on any core).
pub struct Readiness {
    source: SourceId,
    owner: CoreId,
    watcher: Arc<Watcher>,
}

impl Readiness {
    /// Registers for `source` with `interest`. The registration is made by
    /// the owner core (through the bus when that is another core); the first
    /// [`ready`](Self::ready) returns once it is in place.
    pub fn register(source: SourceId, interest: Interest) -> Result<Readiness, ReadinessError> {
        let owner = owner(source)?;
        let owner_reactor = reactor(owner).ok_or(ReadinessError::NoSuchCore(owner))?;
        if owner_reactor.is_stopped() {
            return Err(ReadinessError::OwnerStopped(owner));
        }
        let watcher = Arc::new(Watcher {
            ready: AtomicU8::new(0),
            waker: WakerSlot::new(),
            closed: AtomicBool::new(false),
        });
        send_register(owner, source, Handle::new(watcher.clone()), interest.bits());
        Ok(Readiness {
            source,
            owner,
            watcher,
        })
    }

    /// The source this registration is for.
    pub fn source(&self) -> SourceId {
        self.source
    }

    /// Waits for the next readiness edge and returns (and clears) the bits
    /// reported since the last call.
    pub async fn ready(&mut self) -> Ready {
        poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// [`ready`](Self::ready) as a poll: the stream's step.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> TaskPoll<Ready> {
        let bits = self.watcher.ready.swap(0, Ordering::AcqRel);
        if bits != 0 {
            return TaskPoll::Ready(Ready::from_bits(bits));
        }
        self.watcher.waker.register(cx.waker());
        // Re-check: readiness reported before the waker was stored.
        match self.watcher.ready.swap(0, Ordering::AcqRel) {
            0 => TaskPoll::Pending,
            bits => TaskPoll::Ready(Ready::from_bits(bits)),
        }
    }
}

/// The readiness edges of the source (the bits of each); endless.
impl Stream for Readiness {
    type Item = Ready;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Option<Ready>> {
        self.get_mut().poll_ready(cx).map(Some)
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.watcher.closed.store(true, Ordering::Release);
        // The deregistration owns a reference too, so the watcher's address
        // cannot be reused (and named by a new registration) before the
        // owner core has handled it.
        send_register(
            self.owner,
            self.source,
            Handle::new(self.watcher.clone()),
            0,
        );
    }
}

/// Registers (`interest != 0`) or deregisters `token` at `owner`.
fn send_register(owner: CoreId, source: SourceId, token: Handle, interest: u8) {
    let here = this();
    if owner == here.core {
        on_register(here, source.0, token, interest);
    } else {
        here.send(
            owner,
            Message::Register {
                source: source.0,
                token,
                interest,
            },
        );
    }
}

/// Wakes the owner core when a signaller on another core queues readiness
/// while the owner is about to sleep or sleeps.
struct IpiPark {
    owner: CoreId,
}

impl Park for IpiPark {
    fn park(&self, _timeout: Option<Duration>) {
        // The reactor never parks inside the poll: it sleeps in its own loop
        // (see `Poll::prepare_sleep`).
    }

    fn unpark(&self) {
        // On the owner itself the signal comes from an interrupt handler or
        // a running task: the core is not asleep.
        if cpu::core_id() != self.owner {
            doorbell::ring(self.owner);
        }
    }
}

/// One core's readiness queue and what it needs to dispatch events.
pub(super) struct Queue {
    poll: Poll,
    events: Events,
    /// Registrations made here, by token (the watcher's address).
    registered: BTreeMap<usize, (SourceId, Registration, Arc<Watcher>)>,
    /// The watchers one dispatch wakes, kept between dispatches so that a
    /// device's completion allocates nothing.
    woken: Vec<Arc<Watcher>>,
}

impl Queue {
    pub(super) fn new(owner: CoreId) -> Queue {
        Queue {
            poll: Poll::with_park(QUEUE_CAPACITY, IpiPark { owner })
                .expect("readiness queue capacity is valid"),
            events: Events::with_capacity(256),
            registered: BTreeMap::new(),
            woken: Vec::new(),
        }
    }

    /// About to sleep: false if readiness is queued (see `Poll::prepare_sleep`).
    pub(super) fn prepare_sleep(&self) -> bool {
        self.poll.prepare_sleep()
    }

    pub(super) fn end_sleep(&self) {
        self.poll.end_sleep();
    }

    /// Whether readiness is queued (see `Poll::has_pending`).
    pub(super) fn has_pending(&self) -> bool {
        self.poll.has_pending()
    }

    pub(super) fn len(&self) -> usize {
        self.registered.len()
    }
}

/// The reactor's handling of `Register` (from a bus message or locally).
pub(super) fn on_register(reactor: &Reactor, source: u32, token: Handle, interest: u8) {
    let source = SourceId(source);
    let key = token.0 as usize;
    // SAFETY: `token` came from `Handle::new` of an `Arc<Watcher>` in
    // `Readiness::register` or `Readiness::drop`, and each (de)registration
    // message is received once.
    let watcher: Arc<Watcher> = unsafe { token.take() };
    let mut queue = reactor.readiness.borrow_mut();
    let Some(interest) = Interest::from_bits(interest) else {
        // Deregistration: drop the registration (its signal goes stale and
        // is removed from the source's list), then the message's reference.
        if let Some((source, registration, _)) = queue.registered.remove(&key) {
            forget_signal(source, key);
            drop(registration);
        }
        drop(watcher);
        reactor
            .stats
            .registrations
            .store(queue.len(), Ordering::Relaxed);
        return;
    };
    if watcher.closed.load(Ordering::Acquire) {
        return; // dropped before its registration arrived
    }
    let Some(slot) = SOURCES.get(source.0 as usize) else {
        log::error!("readiness: registration for unknown {source:?} dropped");
        return;
    };
    let mut registration = Registration::new();
    if let Err(error) = registration.register(queue.poll.registry(), Token(key), interest) {
        // The queue is full: report an error event so the task does not wait forever.
        log::warn!(
            "readiness: core {} cannot register {source:?}: {error:?}",
            reactor.core
        );
        watcher
            .ready
            .fetch_or(Ready::ERROR.bits(), Ordering::AcqRel);
        wake(&watcher);
        return;
    }
    let Some(signal) = registration.signal().cloned() else {
        return;
    };
    cpu::without_interrupts(|| {
        slot.signals.lock().push((key, signal.clone()));
    });
    // The first event: the registration is in place (see the module doc).
    let _ = signal.set(Ready::reported_by(interest));
    queue
        .registered
        .insert(key, (source, registration, watcher));
    reactor
        .stats
        .registrations
        .store(queue.len(), Ordering::Relaxed);
}

fn forget_signal(source: SourceId, key: usize) {
    if let Some(slot) = SOURCES.get(source.0 as usize) {
        cpu::without_interrupts(|| {
            slot.signals.lock().retain(|(k, _)| *k != key);
        });
    }
}

fn wake(watcher: &Watcher) {
    watcher.waker.wake();
}

/// Step 3: takes the queued readiness and wakes the registered tasks.
pub(super) fn dispatch(reactor: &Reactor) {
    let mut woken;
    {
        let mut guard = reactor.readiness.borrow_mut();
        let queue = &mut *guard;
        woken = core::mem::take(&mut queue.woken);
        // Polled even with nothing registered: the poll also reclaims the
        // slots of dropped registrations. An empty queue costs one load.
        if queue
            .poll
            .poll(&mut queue.events, Some(Duration::ZERO))
            .is_err()
        {
            queue.woken = woken;
            return;
        }
        for event in queue.events.iter() {
            if let Some((_, _, watcher)) = queue.registered.get(&event.token().0) {
                watcher
                    .ready
                    .fetch_or(event.readiness().bits(), Ordering::AcqRel);
                woken.push(watcher.clone());
            }
        }
    }
    // Wake outside the borrow: a wake may send a bus message.
    for watcher in woken.drain(..) {
        wake(&watcher);
    }
    reactor.readiness.borrow_mut().woken = woken;
}
