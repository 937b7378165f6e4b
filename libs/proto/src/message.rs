//! [`Message`]: everything one core can tell another. Each message is a
//! small `Copy` value (at most 32 bytes, checked at compile time) that is
//! written straight into a preallocated ring slot and read back out of it;
//! nothing is boxed or serialised.
//!
//! "Sender" below is the core that pushes the message, "receiver" the core
//! whose reactor drains it and acts on it.

use crate::id::{CoreId, Handle, TaskRef};

/// One intercore protocol message.
///
/// ```
/// use percore_proto::{Message, TaskRef};
/// let m = Message::Wake { task: TaskRef(42) };
/// assert!(core::mem::size_of::<Message>() <= 32);
/// assert_eq!(m, Message::Wake { task: TaskRef(42) });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// Run a new task on the receiver: it inserts `task` into its task tree
    /// at `priority` (the sender created the task, the receiver owns it now).
    Spawn {
        /// The new task.
        task: TaskRef,
        /// Its scheduling priority (meaning defined by `percore-sched`).
        priority: u8,
    },
    /// Make `task`, which lives on the receiver, ready again (a cross-core
    /// waker). The receiver marks it ready; waking a ready task is a no-op.
    Wake {
        /// The task to wake; it lives on the receiver.
        task: TaskRef,
    },
    /// A one-shot answer (a task's result, a reply) was filled on the
    /// sender; the receiver, where the one waiting for it waits, wakes it.
    Join {
        /// The waiter's waker.
        waker: Handle,
    },
    /// A value for a port (a kernel endpoint addressed by `(core, number)`)
    /// that lives on the receiver; the receiver queues `value` in the port
    /// and wakes its reader.
    Send {
        /// The port's number on the receiver.
        port: u32,
        /// The payload (a small value, or a reference the kernel owns).
        value: u64,
    },
    /// Arm a one-shot timer on the receiver's timer wheel that wakes
    /// `waker` at `deadline_ns` (receiver's monotonic clock).
    Timer {
        /// What to wake at the deadline.
        waker: Handle,
        /// Absolute deadline in nanoseconds.
        deadline_ns: u64,
    },
    /// The sender arrived at barrier `barrier` in round `generation`; the
    /// receiver (the barrier's home core) counts arrivals and releases the
    /// waiters when all have arrived.
    Sync {
        /// The barrier number.
        barrier: u32,
        /// The barrier round, so late arrivals of an old round are ignored.
        generation: u32,
    },
    /// Register interest in event source `source` on the receiver (the core
    /// that owns the device queue); the receiver adds it to its readiness
    /// queue and reports readiness under `token`. With `interest == 0` it is
    /// the deregistration of `token` (like `EPOLL_CTL_DEL`).
    Register {
        /// The event source (device queue, interrupt line) number.
        source: u32,
        /// The registration: the token readiness events will carry (a
        /// `percore-poll` token); the kernel passes an owned reference to
        /// the registration's shared state here, taken back on arrival.
        token: Handle,
        /// `percore-poll` interest bits (readable 1, writable 2, priority
        /// 4); 0 deregisters `token`.
        interest: u8,
    },
    /// The sender joins topic `topic`, a broadcast stream published by
    /// `publisher`. The receiver, normally `publisher` itself, looks the
    /// topic up, creates a new cursor and hands it (or an error) back
    /// through `reply`. Leaving needs no message: a subscriber frees its own
    /// cursor. The bus's own broadcasts need no such message either: every
    /// core is subscribed to every other core from
    /// [`Bus::new`](crate::Bus::new) on.
    ///
    /// ```
    /// use percore_proto::{CoreId, Handle, Message};
    /// let join = Message::Cursor { publisher: CoreId(0), topic: 7, reply: Handle(0x1000) };
    /// assert!(matches!(join, Message::Cursor { topic: 7, .. }));
    /// ```
    Cursor {
        /// The core whose topic is meant (where the topic was created).
        publisher: CoreId,
        /// The topic's number in the publisher core's table.
        topic: u32,
        /// Where the publisher core hands the new cursor, or an error,
        /// back to the subscriber.
        reply: Handle,
    },
    /// Work stealing: `thief` is idle and asks the receiver for a task of at
    /// least `priority`. The receiver answers with [`Message::Migrate`] or
    /// [`Message::StealDenied`].
    StealRequest {
        /// The idle core asking for work.
        thief: CoreId,
        /// The lowest priority worth moving.
        priority: u8,
    },
    /// The answer to a steal: `task` now belongs to the receiver (the thief),
    /// which inserts it at `priority`.
    Migrate {
        /// The migrated task.
        task: TaskRef,
        /// Its priority on the new core.
        priority: u8,
    },
    /// The answer to a steal when the victim has nothing to give; the
    /// receiver (the thief) may halt or ask another core.
    StealDenied,
    /// Latency probe: the receiver answers with [`Message::Pong`] carrying
    /// the same `seq` and `sent_at`.
    Ping {
        /// The prober's tag for the answer: a sequence number, or an owned
        /// reference it takes back from the `Pong` (the kernel's reply cell).
        seq: u64,
        /// Sender's timestamp (TSC or ns) when it sent the probe.
        sent_at: u64,
    },
    /// Answer to [`Message::Ping`]; the receiver (the original prober)
    /// computes the round trip from `sent_at`.
    Pong {
        /// The probe's tag, as sent.
        seq: u64,
        /// The probe's original timestamp.
        sent_at: u64,
    },
    /// Stop: the receiver finishes its current task, stops taking new work
    /// and parks the core (shutdown or CPU offlining).
    Stop,
}

const _: () = assert!(core::mem::size_of::<Message>() <= 32);
