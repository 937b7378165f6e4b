//! The intercore bus as the reactor uses it: `percore_proto`'s N x N matrix of
//! SPSC rings (ring i->j written only by core i, read only by core j) and
//! its protocol messages, with task references packed into the messages.
//!
//! A task travels as its `Arc<TaskCell>` pointer inside a `Message`, written
//! in place into a preallocated ring slot. A full ring is backpressure: spawns,
//! wakes and migrations, which must never be lost, go through the endpoint's
//! per-destination overflow queue (`send_or_queue`), flushed every turn of
//! the loop. `prepare_sleep` refuses to sleep while that queue holds anything.
//!
//! Doorbell: a core about to halt marks itself sleeping and re-checks its
//! rings; a sender that publishes and then finds the mark set rings an IPI
//! (see `percore_proto`'s README for why no wake-up is lost). Busy receivers
//! are never interrupted.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::task::Waker;

use percore_proto::{Bus as ProtoBus, CoreId as ProtoCore, Endpoint, Message, TaskRef};

use super::task::TaskCell;
use super::topic::Reply;
use crate::arch::x86_64::cpu_local::CoreId;

/// Slots per ring (per ordered core pair).
pub const RING_CAPACITY: usize = 256;

/// A protocol message as the reactor sends and receives it, owning any
/// task reference it carries (packed into / unpacked from the wire message).
pub enum Letter {
    Spawn(Arc<TaskCell>),
    Wake(Arc<TaskCell>),
    Migrate(Arc<TaskCell>),
    StealRequest {
        priority: u8,
    },
    StealDenied,
    /// Arm a timer on the receiving core that wakes `waker` at `deadline_ns`.
    Timer {
        waker: Box<Waker>,
        deadline_ns: u64,
    },
    /// Barrier traffic: an arrival (to the home core) or a release (from it).
    Sync {
        barrier: u32,
        generation: u32,
    },
    /// A task finished: wake its joiner (`waker`), which waits on the receiver.
    Join(Box<Waker>),
    /// A value for port `port` on the receiver (see `port.rs`).
    Send {
        port: u32,
        value: u64,
    },
    /// Stop taking work and park (see `halt.rs`).
    Halt,
    /// (De)register readiness interest with the receiver (see `readiness.rs`).
    Register {
        source: u32,
        token: u64,
        interest: u8,
    },
    /// A request to join topic `topic` of core `publisher`; the answer goes
    /// back through `reply`. (The kernel never sends leaves: see `topic`.)
    Cursor {
        publisher: CoreId,
        topic: u32,
        reply: Reply,
    },
    /// Any other protocol message, passed through as is (received ones the
    /// reactor does not act on yet).
    Other(Message),
}

fn task_ref(cell: Arc<TaskCell>) -> TaskRef {
    TaskRef(TaskCell::into_word(cell))
}

/// One core's end of the bus.
pub struct Bus {
    endpoint: Endpoint,
}

/// Builds the ring matrix for `cores` cores; element i goes to core i.
pub fn create(cores: usize) -> Vec<Bus> {
    ProtoBus::new(cores, RING_CAPACITY)
        .expect("bus for the online cores")
        .into_iter()
        .map(|endpoint| Bus { endpoint })
        .collect()
}

fn proto(core: CoreId) -> ProtoCore {
    ProtoCore(core.0 as u16)
}

impl Bus {
    /// Sends `message` to core `to`; returns whether to ring its doorbell.
    /// Never loses the message: a full ring queues it for [`Bus::flush`].
    pub fn send(&mut self, to: CoreId, message: Letter) -> bool {
        let me = self.endpoint.id();
        let message = match message {
            Letter::Spawn(cell) => Message::Spawn {
                task: task_ref(cell),
                priority: 0,
            },
            Letter::Wake(cell) => Message::Wake {
                task: task_ref(cell),
            },
            Letter::Migrate(cell) => Message::Migrate {
                task: task_ref(cell),
                priority: 0,
            },
            Letter::StealRequest { priority } => Message::StealRequest {
                thief: me,
                priority,
            },
            Letter::StealDenied => Message::StealDenied,
            // A timer's task is named by a boxed waker (the sender may be any
            // future, not only a whole task).
            Letter::Timer { waker, deadline_ns } => Message::Timer {
                task: TaskRef(Box::into_raw(waker) as u64),
                deadline_ns,
            },
            Letter::Sync {
                barrier,
                generation,
            } => Message::Sync {
                barrier,
                generation,
            },
            Letter::Join(waker) => Message::Join {
                task: TaskRef(Box::into_raw(waker) as u64),
            },
            Letter::Send { port, value } => Message::Send {
                channel: port,
                value,
            },
            Letter::Halt => Message::Halt,
            Letter::Register {
                source,
                token,
                interest,
            } => Message::Register {
                source,
                token,
                interest,
            },
            Letter::Cursor {
                publisher,
                topic,
                reply,
            } => Message::Cursor {
                publisher: proto(publisher),
                topic,
                reply: reply.into_word(),
                subscribe: true,
            },
            Letter::Other(message) => message,
        };
        match self.endpoint.send_or_queue(proto(to), message) {
            Ok(delivery) => delivery.must_ring(),
            Err(error) => {
                // Only a bad destination gets here (a bug): say so loudly.
                // The task reference inside is leaked, not freed twice.
                log::error!("bus: cannot send to core {to}: {error:?}");
                false
            }
        }
    }

    /// Moves queued overflow into rings that have room; returns the cores
    /// whose doorbell must be rung.
    pub fn flush(&mut self) -> Vec<CoreId> {
        self.endpoint
            .flush()
            .iter()
            .map(|c| CoreId(u32::from(c.0)))
            .collect()
    }

    /// Takes up to `max` messages, fairly over the peers, per-peer in order.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(CoreId, Letter)) -> usize {
        self.endpoint.drain(max, |from, message| {
            // SAFETY: every task reference on the bus was made by `task_ref`
            // SAFETY: every task reference on the bus was made by `task_ref`
            // from an owned Arc (for Timer and Join, by Box::into_raw of a
            // Waker; for a Cursor join, by `Reply::into_word`) and is
            // received exactly once.
            let incoming = unsafe {
                match message {
                    Message::Spawn { task, .. } => Letter::Spawn(TaskCell::from_word(task.0)),
                    Message::Wake { task } => Letter::Wake(TaskCell::from_word(task.0)),
                    Message::Migrate { task, .. } => Letter::Migrate(TaskCell::from_word(task.0)),
                    Message::StealRequest { priority, .. } => Letter::StealRequest { priority },
                    Message::StealDenied => Letter::StealDenied,
                    Message::Timer { task, deadline_ns } => Letter::Timer {
                        waker: Box::from_raw(task.0 as *mut Waker),
                        deadline_ns,
                    },
                    Message::Sync {
                        barrier,
                        generation,
                    } => Letter::Sync {
                        barrier,
                        generation,
                    },
                    Message::Join { task } => Letter::Join(Box::from_raw(task.0 as *mut Waker)),
                    Message::Send { channel, value } => Letter::Send {
                        port: channel,
                        value,
                    },
                    Message::Halt => Letter::Halt,
                    Message::Register {
                        source,
                        token,
                        interest,
                    } => Letter::Register {
                        source,
                        token,
                        interest,
                    },
                    Message::Cursor {
                        publisher,
                        topic,
                        reply,
                        subscribe: true,
                    } => Letter::Cursor {
                        publisher: CoreId(u32::from(publisher.0)),
                        topic,
                        reply: Reply::from_word(reply),
                    },
                    other => Letter::Other(other),
                }
            };
            f(CoreId(u32::from(from.0)), incoming)
        })
    }

    /// Sends a payload-free `message` (such as `Halt`) to every other core
    /// through this core's broadcast ring: written once, read in place by
    /// each peer. Returns the cores whose doorbell must be rung, or gives the
    /// message back when the slowest peer is a whole ring behind.
    pub fn broadcast(&mut self, message: Message) -> Result<Vec<CoreId>, Message> {
        match self.endpoint.broadcast(message) {
            Ok(ring) => Ok(ring.iter().map(|c| CoreId(u32::from(c.0))).collect()),
            Err(_) => Err(message),
        }
    }

    /// Drops what waits in the overflow queue towards `to` (a halted core);
    /// returns how many messages. Task references inside are leaked, never
    /// freed twice.
    pub fn discard_overflow(&mut self, to: CoreId) -> usize {
        self.endpoint.discard_overflow(proto(to))
    }

    /// Messages waiting in this core's inbound rings right now.
    pub fn inbound_depth(&mut self) -> usize {
        self.endpoint.inbound_depth()
    }

    /// About to halt: false (do not halt) if a message or own overflow is waiting.
    pub fn prepare_sleep(&mut self) -> bool {
        self.endpoint.prepare_sleep()
    }

    /// Awake again after a halt.
    pub fn woke(&mut self) {
        self.endpoint.woke();
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> percore_proto::Stats {
        self.endpoint.stats()
    }
}
