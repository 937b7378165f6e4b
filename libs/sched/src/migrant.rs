//! A task in transit between cores, as produced by
//! [`TaskTree::steal`](crate::TaskTree::steal) and consumed by
//! [`TaskTree::adopt`](crate::TaskTree::adopt).

use crate::{TaskId, TaskParams};

/// A ready task that left one core's tree and will join another's.
///
/// It carries its parameters and its accounting. Virtual runtime travels as
/// *lag* behind the source core's virtual clock, because the two cores' clocks
/// are unrelated; the destination adds its own clock back.
///
/// ```
/// use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
///
/// let mut here = TaskTree::new(RoundRobin::new());
/// let mut there = TaskTree::new(RoundRobin::new());
/// let id = here.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// let migrant = here.steal(Priority::DEFAULT).unwrap();
/// assert_eq!(migrant.from(), id);
/// assert!(here.task(id).is_none());
/// let new_id = there.adopt(migrant).unwrap();
/// assert_eq!(there.state(new_id), Some(TaskState::Ready));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Migrant {
    pub(crate) from: TaskId,
    pub(crate) params: TaskParams,
    pub(crate) vlag: u64,
    pub(crate) runtime: u64,
}

impl Migrant {
    /// The task's id on the core it left (now freed there): the kernel uses it
    /// to move the future from its old slab slot.
    pub const fn from(&self) -> TaskId {
        self.from
    }

    /// The parameters the task keeps.
    pub const fn params(&self) -> TaskParams {
        self.params
    }

    /// CPU nanoseconds the task was charged so far.
    pub const fn runtime(&self) -> u64 {
        self.runtime
    }
}
