//! The [`Discipline`] trait: the ready structure of a task tree, and the
//! run-time choice between flavours ([`AnyDiscipline`]).
//!
//! A discipline only orders **Ready** tasks; states, ids and the transitions
//! between states belong to [`TaskTree`](crate::TaskTree), which calls the
//! discipline when a task enters or leaves the Ready state. That split keeps
//! each flavour a small data structure that can be tested on its own.

use crate::{Deadline, Fair, Priority, RoundRobin, Task, TaskId};

/// An ordering of ready tasks: what runs next.
///
/// Contract (upheld by [`TaskTree`](crate::TaskTree), relied on by
/// implementations): `enqueue` is only called for a task that is not queued,
/// `dequeue` only for one that is, and a queued task's priority, deadline and
/// virtual runtime do not change while it is queued.
///
/// ```
/// use percore_sched::{Discipline, Priority, RoundRobin, TaskParams, TaskTree};
///
/// fn next<D: Discipline>(tree: &mut TaskTree<D>) -> Option<percore_sched::TaskId> {
///     tree.select()
/// }
/// let mut tree = TaskTree::new(RoundRobin::new());
/// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// assert_eq!(next(&mut tree), Some(id));
/// ```
pub trait Discipline {
    /// Short name of the flavour, for logs and benchmark tables.
    fn name(&self) -> &'static str;

    /// Makes a ready task selectable. May adjust its accounting (the fair
    /// flavour lifts a returning sleeper's virtual runtime to the clock).
    fn enqueue(&mut self, task: &mut Task);

    /// Removes a queued task that leaves the Ready state without being selected.
    fn dequeue(&mut self, task: &Task);

    /// Removes and returns the task to run next.
    fn select(&mut self) -> Option<TaskId>;

    /// The task [`select`](Discipline::select) would return, left queued.
    fn peek(&self) -> Option<TaskId>;

    /// Number of queued tasks.
    fn len(&self) -> usize;

    /// Whether no task is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Accounts `ran_ns` nanoseconds of CPU to a running task.
    fn charge(&mut self, task: &mut Task, ran_ns: u64) {
        let _ = (task, ran_ns);
    }

    /// How long `running` may run before the reactor should preempt it.
    fn time_slice(&self, running: &Task) -> u64;

    /// Whether a queued task should preempt `running` right away.
    fn preempts(&self, running: &Task) -> bool;

    /// The discipline's notion of "now" in virtual time. Migration stores a
    /// task's virtual runtime relative to it, so a task keeps its lag, not its
    /// absolute value, when it moves between cores. Zero unless virtual time
    /// matters.
    fn virtual_clock(&self) -> u64 {
        0
    }

    /// Visits queued tasks of `priority`, least urgent first (best effort),
    /// until `visit` returns `false`. Used to pick migration victims.
    fn visit_ready(&self, priority: Priority, visit: &mut dyn FnMut(TaskId) -> bool);

    /// Preallocates room for task slots `0..slots`.
    fn reserve(&mut self, slots: usize) {
        let _ = slots;
    }
}

/// Which discipline a core runs, chosen at boot.
///
/// ```
/// use percore_sched::{AnyDiscipline, Discipline, Flavour};
///
/// assert_eq!(AnyDiscipline::new(Flavour::Fair).name(), "fair");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Flavour {
    /// Strict priority, round-robin within a level: [`RoundRobin`].
    RoundRobin,
    /// Earliest deadline first: [`Deadline`].
    Deadline,
    /// Weighted virtual runtime: [`Fair`].
    Fair,
}

/// One of the built-in disciplines, chosen at run time; dispatch is a `match`
/// (no indirect call), so it costs almost nothing over the concrete type.
///
/// ```
/// use percore_sched::{AnyDiscipline, Flavour, Priority, TaskParams, TaskTree};
///
/// let mut tree = TaskTree::new(AnyDiscipline::new(Flavour::Deadline));
/// let late = tree.spawn(TaskParams::new(Priority::MAX).with_deadline(900)).unwrap();
/// let soon = tree.spawn(TaskParams::new(Priority::MIN).with_deadline(100)).unwrap();
/// assert_eq!(tree.select(), Some(soon));
/// assert_eq!(tree.select(), Some(late));
/// ```
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per core, lives inline; boxing would add a pointer chase to every select"
)]
pub enum AnyDiscipline {
    /// See [`RoundRobin`].
    RoundRobin(RoundRobin),
    /// See [`Deadline`].
    Deadline(Deadline),
    /// See [`Fair`].
    Fair(Fair),
}

impl AnyDiscipline {
    /// The flavour with its default parameters.
    ///
    /// ```
    /// # use percore_sched::{AnyDiscipline, Flavour};
    /// assert_eq!(AnyDiscipline::new(Flavour::RoundRobin).flavour(), Flavour::RoundRobin);
    /// ```
    pub fn new(flavour: Flavour) -> Self {
        match flavour {
            Flavour::RoundRobin => Self::RoundRobin(RoundRobin::new()),
            Flavour::Deadline => Self::Deadline(Deadline::new()),
            Flavour::Fair => Self::Fair(Fair::new()),
        }
    }

    /// Which flavour this is.
    pub fn flavour(&self) -> Flavour {
        match self {
            Self::RoundRobin(_) => Flavour::RoundRobin,
            Self::Deadline(_) => Flavour::Deadline,
            Self::Fair(_) => Flavour::Fair,
        }
    }
}

/// Forwards a call to whichever discipline is inside.
macro_rules! dispatch {
    ($self:expr, $d:ident => $call:expr) => {
        match $self {
            AnyDiscipline::RoundRobin($d) => $call,
            AnyDiscipline::Deadline($d) => $call,
            AnyDiscipline::Fair($d) => $call,
        }
    };
}

impl Discipline for AnyDiscipline {
    fn name(&self) -> &'static str {
        dispatch!(self, d => d.name())
    }
    fn enqueue(&mut self, task: &mut Task) {
        dispatch!(self, d => d.enqueue(task))
    }
    fn dequeue(&mut self, task: &Task) {
        dispatch!(self, d => d.dequeue(task))
    }
    fn select(&mut self) -> Option<TaskId> {
        dispatch!(self, d => d.select())
    }
    fn peek(&self) -> Option<TaskId> {
        dispatch!(self, d => d.peek())
    }
    fn len(&self) -> usize {
        dispatch!(self, d => d.len())
    }
    fn charge(&mut self, task: &mut Task, ran_ns: u64) {
        dispatch!(self, d => d.charge(task, ran_ns))
    }
    fn time_slice(&self, running: &Task) -> u64 {
        dispatch!(self, d => d.time_slice(running))
    }
    fn preempts(&self, running: &Task) -> bool {
        dispatch!(self, d => d.preempts(running))
    }
    fn virtual_clock(&self) -> u64 {
        dispatch!(self, d => d.virtual_clock())
    }
    fn visit_ready(&self, priority: Priority, visit: &mut dyn FnMut(TaskId) -> bool) {
        dispatch!(self, d => d.visit_ready(priority, visit))
    }
    fn reserve(&mut self, slots: usize) {
        dispatch!(self, d => d.reserve(slots))
    }
}
