//! Services on the engine (ports, barriers, topics, probes: `ipc`) own their
//! protocol messages and their per-core state. A service registers one
//! handler; the reactor hands it every message of its kind ([`dispatch`]),
//! and tells it when a core stops ([`core_stopped`]). The reactor knows no
//! service by name: adding a message is a change to the protocol and to the
//! one service that sends and handles it.

use alloc::boxed::Box;

use percore_proto::Message;

use crate::arch::{CoreId, cpu};

/// The services that own protocol messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `Send`: values for ports.
    Port,
    /// `Sync`: barrier arrivals and releases.
    Barrier,
    /// `Cursor`: joining a topic.
    Topic,
    /// `Ping`/`Pong`: latency probes.
    Probe,
}

const SERVICES: usize = 4;

impl Service {
    /// The service that owns `message`, if a service does.
    fn of(message: &Message) -> Option<Service> {
        match message {
            Message::Send { .. } => Some(Service::Port),
            Message::Sync { .. } => Some(Service::Barrier),
            Message::Cursor { .. } => Some(Service::Topic),
            Message::Ping { .. } | Message::Pong { .. } => Some(Service::Probe),
            _ => None,
        }
    }
}

/// What a service does with its messages and when a core stops.
#[derive(Clone, Copy)]
pub struct Handlers {
    /// A message of the service's kind arrived from core `from`.
    pub on_message: fn(from: CoreId, message: Message),
    /// Core `core` stopped for good (called on that core, before it halts).
    pub on_core_stopped: fn(core: CoreId),
}

static HANDLERS: [spin::Once<Handlers>; SERVICES] = [const { spin::Once::new() }; SERVICES];

/// Registers `service`'s handlers (once; later calls are ignored).
pub fn register(service: Service, handlers: Handlers) {
    HANDLERS[service as usize].call_once(|| handlers);
}

/// Hands `message` to its service; false if no service takes it.
pub(super) fn dispatch(from: CoreId, message: Message) -> bool {
    match Service::of(&message).and_then(|s| HANDLERS[s as usize].get()) {
        Some(handlers) => {
            (handlers.on_message)(from, message);
            true
        }
        None => false,
    }
}

/// Tells every service that `core` stopped.
pub(super) fn core_stopped(core: CoreId) {
    for handlers in HANDLERS.iter().filter_map(spin::Once::get) {
        (handlers.on_core_stopped)(core);
    }
}

/// One `T` per online core, made on first use (after the cores are up):
/// the per-core state of a service, reachable from any core by core id.
pub struct PerCore<T> {
    cells: spin::Once<Box<[T]>>,
}

impl<T: Default> PerCore<T> {
    /// An empty table (filled on first use).
    pub const fn new() -> PerCore<T> {
        PerCore {
            cells: spin::Once::new(),
        }
    }

    /// Core `core`'s `T`, or `None` if there is no such core.
    pub fn get(&self, core: CoreId) -> Option<&T> {
        self.cells
            .call_once(|| (0..cpu::online_cores()).map(|_| T::default()).collect())
            .get(core.index())
    }
}

impl<T: Default> Default for PerCore<T> {
    fn default() -> Self {
        Self::new()
    }
}
