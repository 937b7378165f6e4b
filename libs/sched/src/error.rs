//! Error values of the task tree. Every error hands back what the caller
//! passed in, so nothing is lost on a refusal.

use core::fmt;

use crate::{TaskId, TaskState};

/// The tree is at its task limit; the rejected value is returned.
///
/// ```
/// use percore_sched::{Priority, RoundRobin, SpawnError, TaskParams, TaskTree};
///
/// let mut tree = TaskTree::with_capacity(RoundRobin::new(), 1);
/// let p = TaskParams::new(Priority::DEFAULT);
/// tree.spawn(p).unwrap();
/// assert_eq!(tree.spawn(p), Err(SpawnError::Full(p)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SpawnError<T> {
    /// No free slot; here is your value back.
    Full(T),
}

/// A transition was asked for a task that cannot make it.
///
/// ```
/// use percore_sched::{Priority, RoundRobin, StateError, TaskParams, TaskState, TaskTree};
///
/// let mut tree = TaskTree::new(RoundRobin::new());
/// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// // Only a running task can yield.
/// assert_eq!(
///     tree.yield_now(id),
///     Err(StateError::InvalidTransition { id, from: TaskState::Ready })
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StateError {
    /// The id was never issued, or its task was reaped (generation mismatch).
    NoSuchTask(TaskId),
    /// The task exists but its state does not allow this transition.
    InvalidTransition {
        /// The task.
        id: TaskId,
        /// Its current state.
        from: TaskState,
    },
}

impl<T> fmt::Display for SpawnError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task tree is full")
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchTask(id) => write!(f, "no such task: {id:?}"),
            Self::InvalidTransition { id, from } => {
                write!(f, "task {id:?} cannot do that while {from:?}")
            }
        }
    }
}

impl<T: fmt::Debug> core::error::Error for SpawnError<T> {}
impl core::error::Error for StateError {}
