//! FSM actors: an [`Actor`] is a state plus a transition
//! `send(message) -> Result<State, Error>`, run as a task that drains its
//! mailbox (a bounded channel, so senders feel backpressure).
//!
//! For tasks that are message handlers rather than futures: the actor
//! owns its state, messages arrive in order per sender, and an `Err`
//! transition stops the actor and hands the error to whoever joins it.

use core::fmt::Debug;

use percore_sched::Priority;

use super::channel::{self, Receiver, Sender, TrySendError};
use crate::arch::CoreId;
use crate::reactor::{JoinHandle, spawn_on};

/// A state machine driven by messages.
pub trait Actor: Sized + Send + 'static {
    type Message: Send + 'static;
    type Error: Debug + Send + 'static;

    /// Consumes one message; returns the next state, or stops with an error.
    fn send(self, message: Self::Message) -> Result<Self, Self::Error>;
}

/// The address of an actor: send it messages from any core. Clone it for
/// more senders; the actor ends (returning its state) when every mailbox
/// handle is dropped and its queue is empty.
pub struct Mailbox<M> {
    sender: Sender<M>,
}

impl<M> Clone for Mailbox<M> {
    fn clone(&self) -> Self {
        Mailbox {
            sender: self.sender.clone(),
        }
    }
}

impl<M: Send> Mailbox<M> {
    /// Delivers `message`, waiting while the mailbox is full.
    pub async fn send(&mut self, message: M) {
        self.sender.send(message).await
    }

    /// Delivers `message` if there is room; otherwise hands it back.
    pub fn try_send(&mut self, message: M) -> Result<(), TrySendError<M>> {
        self.sender.try_send(message)
    }
}

/// Why an actor could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorError {
    /// The mailbox capacity is zero or too large.
    BadCapacity,
}

/// Starts `initial` on core `core` with a mailbox of `capacity` messages.
/// The join handle yields the final state, or the error that stopped it.
#[allow(clippy::type_complexity)]
pub fn spawn_actor<P: Actor>(
    core: CoreId,
    priority: Priority,
    initial: P,
    capacity: usize,
) -> Result<(Mailbox<P::Message>, JoinHandle<Result<P, P::Error>>), ActorError> {
    let (sender, receiver) = channel::channel(capacity).map_err(|_| ActorError::BadCapacity)?;
    let handle = spawn_on(core, priority, run(initial, receiver));
    Ok((Mailbox { sender }, handle))
}

async fn run<P: Actor>(mut state: P, mut mailbox: Receiver<P::Message>) -> Result<P, P::Error> {
    while let Some(message) = mailbox.recv().await {
        state = state.send(message)?;
    }
    Ok(state)
}
