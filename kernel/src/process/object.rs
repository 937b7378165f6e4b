//! The kernel objects a process reaches through its handles: channels
//! (a bounded message queue on `ipc::channel`) and periodic timers (the
//! reactor's `Interval`), the marker of a process's ring pair (the
//! rings themselves are `Process::ring`), and objects a higher layer
//! defines ([`Extension`]: the syscall layer's sockets), with the
//! process's readiness queue for them ([`Readiness`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::task::{Context, Poll, Waker};

use percore_poll::Park;

use percore_abi::{Error, HandleKind};

use super::handle;
use crate::ipc::channel::{self, Receiver, Sender, TrySendError};
use crate::reactor::Interval;

/// Messages a channel holds before `send` says [`Error::Full`].
pub const CHANNEL_CAPACITY: usize = 16;

/// A kernel object behind a handle.
pub enum KernelObject {
    Channel(Channel),
    Timer(Interval),
    /// The process's submission/completion rings (`close` unmaps them).
    Ring,
    /// An object of a higher layer (a socket).
    Ext(Box<dyn Extension>),
}

/// An object a layer above processes puts in a handle table (the syscall
/// layer's sockets: processes cannot name the network's types).
pub trait Extension: Any + Send {
    fn kind(&self) -> HandleKind;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl handle::Object for KernelObject {
    fn kind(&self) -> HandleKind {
        match self {
            KernelObject::Channel(_) => HandleKind::Channel,
            KernelObject::Timer(_) => HandleKind::Timer,
            KernelObject::Ring => HandleKind::Ring,
            KernelObject::Ext(ext) => ext.kind(),
        }
    }
}

/// A process's readiness queue: a `percore_poll::Poll` its sockets are
/// registered with, whose sleep wakes the task that waits on it (the
/// process's thread, in `poll_wait`).
pub struct Readiness {
    pub poll: percore_poll::Poll,
    /// The waker `Park::unpark` wakes.
    pub waker: Arc<spin::Mutex<Option<Waker>>>,
}

/// Registrations one process's queue holds (one per handle at most).
pub const READINESS_CAPACITY: usize = super::handle::MAX_HANDLES;

struct TaskPark(Arc<spin::Mutex<Option<Waker>>>);

impl Park for TaskPark {
    /// Never called: the process waits by returning to the reactor.
    fn park(&self, _: Option<core::time::Duration>) {}

    fn unpark(&self) {
        // The lock is let go before waking (a wake must not run under it).
        let waker = self.0.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Readiness {
    pub fn new() -> Result<Readiness, Error> {
        let waker = Arc::new(spin::Mutex::new(None));
        let poll = percore_poll::Poll::with_park(READINESS_CAPACITY, TaskPark(waker.clone()))
            .map_err(|_| Error::NoMemory)?;
        Ok(Readiness { poll, waker })
    }
}

/// Both ends of one message queue (what is sent on the handle is received
/// on it; handing ends to other processes comes with process-to-process IPC).
pub struct Channel {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    /// A message taken from the queue that did not fit the receiver's
    /// buffer: delivered first next time.
    pending: Option<Vec<u8>>,
}

impl Channel {
    pub fn new() -> Result<Channel, Error> {
        let (tx, rx) = channel::channel(CHANNEL_CAPACITY).map_err(|_| Error::NoMemory)?;
        Ok(Channel {
            tx,
            rx,
            pending: None,
        })
    }

    /// Two channels crossed: what is sent on one is received on the other
    /// (for two processes, each given one end at start).
    pub fn pair() -> Result<(Channel, Channel), Error> {
        let (a_tx, b_rx) = channel::channel(CHANNEL_CAPACITY).map_err(|_| Error::NoMemory)?;
        let (b_tx, a_rx) = channel::channel(CHANNEL_CAPACITY).map_err(|_| Error::NoMemory)?;
        let end = |tx, rx| Channel {
            tx,
            rx,
            pending: None,
        };
        Ok((end(a_tx, a_rx), end(b_tx, b_rx)))
    }

    /// Queues `message`, or says the queue is full.
    pub fn send(&mut self, message: Vec<u8>) -> Result<(), Error> {
        self.tx
            .try_send(message)
            .map_err(|TrySendError::Full(_)| Error::Full)
    }

    /// The next message, if there is one; else `cx` is woken when one
    /// comes. A pair's end whose peer is gone gives empty messages.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        if let Some(message) = self.pending.take() {
            return Poll::Ready(message);
        }
        self.rx.poll_recv(cx).map(Option::unwrap_or_default)
    }

    /// Puts back a message the receiver's buffer could not take.
    pub fn put_back(&mut self, message: Vec<u8>) {
        self.pending = Some(message);
    }
}
