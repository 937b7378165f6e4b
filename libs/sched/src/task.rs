//! One task's scheduling record: its state, its parameters, and the
//! accounting the disciplines keep on it.
//!
//! The scheduler never sees the task's code: the kernel owns the futures and
//! indexes them by [`TaskId::index`](crate::TaskId::index). What lives here is
//! only what a discipline needs to order tasks.

use crate::{Priority, TaskId};

/// Where a task is in its life cycle.
///
/// ```text
///            spawn / adopt
///                 |
///                 v        select          block / sleep
///   +-------->  Ready  ------------> Running --------------> Blocked / Sleeping
///   |             ^   <------------     |                          |
///   |             |    yield_now        | finish                   |
///   |             +---------------------|------------ wake --------+
///   |                                   v
///   |                               Finished --reap--> (slot freed, generation bumped)
/// ```
///
/// `finish` is allowed from every live state (a task can be killed while it
/// waits), `block`/`sleep` from `Running` and `Ready`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum TaskState {
    /// Queued in the discipline, waiting for the CPU.
    Ready,
    /// Returned by `select` and not yet requeued, blocked or finished.
    Running,
    /// Waiting for an event (a readiness token, a message).
    Blocked,
    /// Waiting for a timer.
    Sleeping,
    /// Done; the slot is kept until `reap` so the kernel can collect the result.
    Finished,
}

/// Deadline of a task that has none: it sorts after every real deadline.
pub const NO_DEADLINE: u64 = u64::MAX;

/// How to create a task: priority, optional fair-share weight, optional
/// deadline, pinning.
///
/// ```
/// use percore_sched::{Priority, TaskParams};
///
/// let p = TaskParams::new(Priority::MAX).with_deadline(5_000).pinned();
/// assert_eq!(p.priority(), Priority::MAX);
/// assert_eq!(p.deadline(), 5_000);
/// assert!(p.is_pinned());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TaskParams {
    pub(crate) priority: Priority,
    pub(crate) deadline: u64,
    /// Explicit fair-share weight; 0: the priority's ([`Priority::weight`]).
    weight: u64,
    pinned: bool,
}

impl TaskParams {
    /// A movable task at `priority`, without a deadline.
    ///
    /// ```
    /// # use percore_sched::{Priority, TaskParams, NO_DEADLINE};
    /// let p = TaskParams::new(Priority::DEFAULT);
    /// assert_eq!(p.deadline(), NO_DEADLINE);
    /// assert!(!p.is_pinned());
    /// ```
    pub const fn new(priority: Priority) -> Self {
        Self {
            priority,
            deadline: NO_DEADLINE,
            weight: 0,
            pinned: false,
        }
    }

    /// Sets the fair-share weight, in the units of [`Priority::weight`]
    /// ([`Priority::DEFAULT_WEIGHT`] is an ordinary task's share), instead of
    /// the one the priority implies. A weight of 0 goes back to the priority's.
    ///
    /// ```
    /// # use percore_sched::{Priority, TaskParams};
    /// let w = Priority::DEFAULT_WEIGHT * 3;
    /// assert_eq!(TaskParams::new(Priority::MIN).with_weight(w).weight(), w);
    /// assert_eq!(TaskParams::new(Priority::MIN).weight(), Priority::MIN.weight());
    /// ```
    pub const fn with_weight(mut self, weight: u64) -> Self {
        self.weight = weight;
        self
    }

    /// Sets an absolute deadline, in the core clock's nanoseconds (EDF orders by it).
    ///
    /// ```
    /// # use percore_sched::{Priority, TaskParams};
    /// assert_eq!(TaskParams::new(Priority::MIN).with_deadline(7).deadline(), 7);
    /// ```
    pub const fn with_deadline(mut self, deadline: u64) -> Self {
        self.deadline = deadline;
        self
    }

    /// Forbids migration: [`TaskTree::steal`](crate::TaskTree::steal) skips this task.
    ///
    /// ```
    /// # use percore_sched::{Priority, TaskParams};
    /// assert!(TaskParams::new(Priority::MIN).pinned().is_pinned());
    /// ```
    pub const fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// The priority level.
    pub const fn priority(&self) -> Priority {
        self.priority
    }

    /// The absolute deadline, [`NO_DEADLINE`] when there is none.
    pub const fn deadline(&self) -> u64 {
        self.deadline
    }

    /// Whether the task must stay on this core.
    pub const fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// The fair-share weight: the explicit one, or the priority's.
    pub const fn weight(&self) -> u64 {
        if self.weight == 0 {
            self.priority.weight()
        } else {
            self.weight
        }
    }
}

/// The scheduling record of one live task, as disciplines and callers see it.
///
/// ```
/// use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
///
/// let mut tree = TaskTree::new(RoundRobin::new());
/// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// let task = tree.task(id).unwrap();
/// assert_eq!(task.state(), TaskState::Ready);
/// assert_eq!(task.id(), id);
/// ```
#[derive(Clone, Debug)]
pub struct Task {
    pub(crate) id: TaskId,
    pub(crate) state: TaskState,
    pub(crate) params: TaskParams,
    /// Virtual runtime in weighted nanoseconds (fair discipline).
    pub(crate) vruntime: u64,
    /// Real CPU nanoseconds charged so far.
    pub(crate) runtime: u64,
    /// A wake-up arrived while the task was running: the next `block` or
    /// `sleep` must requeue it instead (no lost wake-up).
    pub(crate) notified: bool,
}

impl Task {
    pub(crate) const fn new(id: TaskId, params: TaskParams) -> Self {
        Self {
            id,
            state: TaskState::Ready,
            params,
            vruntime: 0,
            runtime: 0,
            notified: false,
        }
    }

    /// The task's id.
    pub const fn id(&self) -> TaskId {
        self.id
    }

    /// The current state.
    pub const fn state(&self) -> TaskState {
        self.state
    }

    /// The priority level.
    pub const fn priority(&self) -> Priority {
        self.params.priority
    }

    /// The absolute deadline, [`NO_DEADLINE`] when there is none.
    pub const fn deadline(&self) -> u64 {
        self.params.deadline
    }

    /// Whether the task must stay on this core.
    pub const fn is_pinned(&self) -> bool {
        self.params.pinned
    }

    /// The fair-share weight ([`TaskParams::weight`]).
    pub const fn weight(&self) -> u64 {
        self.params.weight()
    }

    /// Virtual runtime: CPU time scaled by `DEFAULT_WEIGHT / weight`.
    pub const fn vruntime(&self) -> u64 {
        self.vruntime
    }

    /// Total CPU nanoseconds charged with [`TaskTree::charge`](crate::TaskTree::charge).
    pub const fn runtime(&self) -> u64 {
        self.runtime
    }

    /// The parameters the task runs with now.
    pub const fn params(&self) -> TaskParams {
        self.params
    }
}
