//! [`TaskTree`]: one core's tasks, their states, and the transitions between
//! them, over a pluggable [`Discipline`] that orders the ready ones.

use crate::table::TaskTable;
use crate::{Discipline, Priority, SpawnError, StateError, Task, TaskId, TaskParams, TaskState};

/// The per-core task tree: a generation-checked task table plus a ready
/// structure ([`Discipline`]).
///
/// The reactor drives it like this (the scheduler never sees the futures):
///
/// ```
/// use percore_sched::{AnyDiscipline, Flavour, Priority, TaskParams, TaskState, TaskTree};
///
/// let mut tree = TaskTree::new(AnyDiscipline::new(Flavour::RoundRobin));
/// let net = tree.spawn(TaskParams::new(Priority::new(50).unwrap())).unwrap();
/// let log = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
///
/// let id = tree.select().unwrap(); // highest ready level
/// assert_eq!(id, net);
/// // ... poll the future; it returned Pending after arming a waker:
/// assert_eq!(tree.block(id), Ok(TaskState::Blocked));
/// assert_eq!(tree.select(), Some(log));
/// tree.finish(log).unwrap();
/// tree.reap(log).unwrap();
/// // The device became ready: the readiness token maps to `net`.
/// assert_eq!(tree.wake(net), Ok(true));
/// assert_eq!(tree.select(), Some(net));
/// ```
#[derive(Debug)]
pub struct TaskTree<D> {
    pub(crate) tasks: TaskTable,
    pub(crate) discipline: D,
    /// Ready tasks per priority level and movable ones, for load balancing.
    pub(crate) ready: ReadyCounts,
}

/// What the load balancer reads of the ready set: tasks per priority level,
/// and how many of them are movable (not pinned). Every task entering or
/// leaving the ready set passes through [`add`](Self::add) or
/// [`remove`](Self::remove).
#[derive(Debug, Clone)]
pub(crate) struct ReadyCounts {
    pub(crate) at: [u32; Priority::LEVELS],
    pub(crate) movable: u32,
}

impl ReadyCounts {
    const fn new() -> Self {
        ReadyCounts {
            at: [0; Priority::LEVELS],
            movable: 0,
        }
    }

    pub(crate) fn add(&mut self, params: &TaskParams) {
        self.at[params.priority().get() as usize] += 1;
        self.movable += u32::from(!params.is_pinned());
    }

    pub(crate) fn remove(&mut self, params: &TaskParams) {
        self.at[params.priority().get() as usize] -= 1;
        self.movable -= u32::from(!params.is_pinned());
    }
}

impl<D: Discipline> TaskTree<D> {
    /// An empty tree that grows as tasks are spawned (up to 2^32 - 1 tasks).
    ///
    /// ```
    /// # use percore_sched::{RoundRobin, TaskTree};
    /// let tree = TaskTree::new(RoundRobin::new());
    /// assert!(tree.is_empty());
    /// ```
    pub fn new(discipline: D) -> Self {
        Self::build(discipline, u32::MAX as usize, false)
    }

    /// A tree that holds at most `limit` live tasks, with all memory allocated
    /// now (no allocation after boot).
    ///
    /// ```
    /// # use percore_sched::{Fair, Priority, TaskParams, TaskTree};
    /// let mut tree = TaskTree::with_capacity(Fair::new(), 2);
    /// let p = TaskParams::new(Priority::DEFAULT);
    /// assert!(tree.spawn(p).is_ok() && tree.spawn(p).is_ok());
    /// assert!(tree.spawn(p).is_err());
    /// ```
    pub fn with_capacity(discipline: D, limit: usize) -> Self {
        Self::build(discipline, limit.min(u32::MAX as usize), true)
    }

    fn build(mut discipline: D, limit: usize, prealloc: bool) -> Self {
        if prealloc {
            discipline.reserve(limit);
        }
        Self {
            tasks: TaskTable::with_limit(limit, prealloc),
            discipline,
            ready: ReadyCounts::new(),
        }
    }

    /// Creates a Ready task.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert_eq!(tree.state(id), Some(TaskState::Ready));
    /// ```
    pub fn spawn(&mut self, params: TaskParams) -> Result<TaskId, SpawnError<TaskParams>> {
        let Some(task) = self.tasks.insert(params) else {
            return Err(SpawnError::Full(params));
        };
        let id = task.id;
        self.discipline.enqueue(task);
        self.ready.add(&params);
        Ok(id)
    }

    /// Takes the next task from the discipline and marks it Running.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// assert_eq!(tree.select(), None);
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert_eq!(tree.select(), Some(id));
    /// assert_eq!(tree.state(id), Some(TaskState::Running));
    /// ```
    pub fn select(&mut self) -> Option<TaskId> {
        let id = self.discipline.select()?;
        // The discipline only holds ids of Ready tasks of this table.
        let task = self.tasks.get_mut(id)?;
        task.state = TaskState::Running;
        self.ready.remove(&task.params);
        Some(id)
    }

    /// The task [`select`](Self::select) would return, without taking it.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert_eq!(tree.peek(), Some(id));
    /// assert_eq!(tree.select(), Some(id));
    /// ```
    pub fn peek(&self) -> Option<TaskId> {
        self.discipline.peek()
    }

    /// Running → Ready: the task goes back into the discipline (for
    /// round-robin: to the back of its level).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// tree.select();
    /// tree.yield_now(id).unwrap();
    /// assert_eq!(tree.state(id), Some(TaskState::Ready));
    /// ```
    pub fn yield_now(&mut self, id: TaskId) -> Result<(), StateError> {
        self.expect(id, |s| s == TaskState::Running)?;
        self.make_ready(id);
        Ok(())
    }

    /// Running or Ready → Blocked. If a [`wake`](Self::wake) arrived while
    /// the task was running, it is requeued instead (no lost wake-up); the
    /// state it ends in is returned.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// tree.select();
    /// assert_eq!(tree.wake(id), Ok(false)); // woken while running
    /// assert_eq!(tree.block(id), Ok(TaskState::Ready));
    /// ```
    pub fn block(&mut self, id: TaskId) -> Result<TaskState, StateError> {
        self.park(id, TaskState::Blocked)
    }

    /// Running or Ready → Sleeping (waiting for a timer); like
    /// [`block`](Self::block) otherwise.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert_eq!(tree.sleep(id), Ok(TaskState::Sleeping));
    /// assert_eq!(tree.select(), None);
    /// ```
    pub fn sleep(&mut self, id: TaskId) -> Result<TaskState, StateError> {
        self.park(id, TaskState::Sleeping)
    }

    fn park(&mut self, id: TaskId, to: TaskState) -> Result<TaskState, StateError> {
        let from = self.expect(id, |s| matches!(s, TaskState::Running | TaskState::Ready))?;
        let task = self.tasks.get_mut(id).ok_or(StateError::NoSuchTask(id))?;
        if from == TaskState::Running && task.notified {
            self.make_ready(id);
            return Ok(TaskState::Ready);
        }
        if from == TaskState::Ready {
            self.discipline.dequeue(task);
            self.ready.remove(&task.params);
        }
        task.state = to;
        Ok(to)
    }

    /// Blocked or Sleeping → Ready; returns whether the task was requeued.
    /// Waking a Running task records the wake-up for its next `block`/`sleep`;
    /// waking a Ready or Finished task does nothing (stale wakers are normal).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// tree.block(id).unwrap();
    /// assert_eq!(tree.wake(id), Ok(true));
    /// assert_eq!(tree.wake(id), Ok(false));
    /// ```
    pub fn wake(&mut self, id: TaskId) -> Result<bool, StateError> {
        let task = self.tasks.get_mut(id).ok_or(StateError::NoSuchTask(id))?;
        match task.state {
            TaskState::Blocked | TaskState::Sleeping => {
                self.make_ready(id);
                Ok(true)
            }
            TaskState::Running => {
                task.notified = true;
                Ok(false)
            }
            TaskState::Ready | TaskState::Finished => Ok(false),
        }
    }

    /// Any live state → Finished. The slot stays until [`reap`](Self::reap).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// tree.finish(id).unwrap();
    /// assert_eq!(tree.state(id), Some(TaskState::Finished));
    /// assert!(tree.finish(id).is_err());
    /// ```
    pub fn finish(&mut self, id: TaskId) -> Result<(), StateError> {
        let from = self.expect(id, |s| s != TaskState::Finished)?;
        if from == TaskState::Ready {
            self.unqueue(id);
        }
        if let Some(task) = self.tasks.get_mut(id) {
            task.state = TaskState::Finished;
        }
        Ok(())
    }

    /// Finished → freed: the slot is reused and `id` goes stale.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, StateError, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// tree.finish(id).unwrap();
    /// tree.reap(id).unwrap();
    /// assert_eq!(tree.wake(id), Err(StateError::NoSuchTask(id)));
    /// ```
    pub fn reap(&mut self, id: TaskId) -> Result<(), StateError> {
        self.expect(id, |s| s == TaskState::Finished)?;
        self.tasks.remove(id);
        Ok(())
    }

    /// Accounts `ran_ns` nanoseconds of CPU to a Running task (time-slice
    /// accounting; the fair flavour advances its virtual runtime).
    ///
    /// ```
    /// # use percore_sched::{Fair, Priority, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(Fair::new());
    /// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// tree.select();
    /// tree.charge(id, 1_000).unwrap();
    /// let t = tree.task(id).unwrap();
    /// assert_eq!((t.runtime(), t.vruntime()), (1_000, 1_000));
    /// ```
    pub fn charge(&mut self, id: TaskId, ran_ns: u64) -> Result<(), StateError> {
        self.expect(id, |s| s == TaskState::Running)?;
        let task = self.tasks.get_mut(id).ok_or(StateError::NoSuchTask(id))?;
        task.runtime = task.runtime.saturating_add(ran_ns);
        self.discipline.charge(task, ran_ns);
        Ok(())
    }

    /// How many nanoseconds `id` may run before it should be preempted;
    /// `None` for an unknown id.
    ///
    /// ```
    /// # use percore_sched::{RoundRobin, Priority, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// assert_eq!(tree.time_slice(id), Some(RoundRobin::DEFAULT_QUANTUM_NS));
    /// ```
    pub fn time_slice(&self, id: TaskId) -> Option<u64> {
        Some(self.discipline.time_slice(self.tasks.get(id)?))
    }

    /// Whether a ready task should preempt the running task `id` now (a
    /// higher level, an earlier deadline, or a clear fair-share lead).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let low = tree.spawn(TaskParams::new(Priority::MIN)).unwrap();
    /// tree.select();
    /// assert!(!tree.should_preempt(low));
    /// tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert!(tree.should_preempt(low));
    /// ```
    pub fn should_preempt(&self, id: TaskId) -> bool {
        self.tasks
            .get(id)
            .is_some_and(|t| self.discipline.preempts(t))
    }

    /// Changes a live task's priority; a Ready task is requeued at its new level.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let a = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// let b = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// tree.set_priority(b, Priority::MAX).unwrap();
    /// assert_eq!(tree.select(), Some(b));
    /// # let _ = a;
    /// ```
    pub fn set_priority(&mut self, id: TaskId, priority: Priority) -> Result<(), StateError> {
        self.update(id, |p| p.priority = priority)
    }

    /// Changes a live task's absolute deadline (EDF); a Ready task is requeued.
    ///
    /// ```
    /// # use percore_sched::{Deadline, Priority, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(Deadline::new());
    /// let a = tree.spawn(TaskParams::new(Priority::DEFAULT).with_deadline(10)).unwrap();
    /// let b = tree.spawn(TaskParams::new(Priority::DEFAULT).with_deadline(20)).unwrap();
    /// tree.set_deadline(b, 5).unwrap();
    /// assert_eq!(tree.select(), Some(b));
    /// # let _ = a;
    /// ```
    pub fn set_deadline(&mut self, id: TaskId, deadline: u64) -> Result<(), StateError> {
        self.update(id, |p| p.deadline = deadline)
    }

    fn update(&mut self, id: TaskId, f: impl FnOnce(&mut TaskParams)) -> Result<(), StateError> {
        let from = self.expect(id, |s| s != TaskState::Finished)?;
        if from == TaskState::Ready {
            self.unqueue(id);
        }
        if let Some(task) = self.tasks.get_mut(id) {
            f(&mut task.params);
        }
        if from == TaskState::Ready {
            self.make_ready(id);
        }
        Ok(())
    }

    /// The record of a live (not reaped) task.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert_eq!(tree.task(id).unwrap().priority(), Priority::MAX);
    /// ```
    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(id)
    }

    /// The state of a live task, `None` for an unknown or reaped id.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert_eq!(tree.state(id), Some(TaskState::Ready));
    /// ```
    pub fn state(&self, id: TaskId) -> Option<TaskState> {
        self.tasks.get(id).map(Task::state)
    }

    /// Number of live tasks, in any state (finished ones until reaped).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// tree.block(id).unwrap();
    /// assert_eq!((tree.len(), tree.ready_len()), (1, 0));
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there are no live tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.len() == 0
    }

    /// Number of Ready tasks.
    pub fn ready_len(&self) -> usize {
        self.discipline.len()
    }

    /// Every live task's record, in slot order (for listings).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let a = tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// let b = tree.spawn(TaskParams::new(Priority::MIN)).unwrap();
    /// let ids: Vec<_> = tree.tasks().map(|t| t.id()).collect();
    /// assert_eq!(ids, [a, b]);
    /// ```
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter()
    }

    /// Replaces the discipline, moving every Ready task into the new one (in
    /// the order the old one would have selected them), and returns the old
    /// one, empty. Ids, states, parameters and charged runtime stay; virtual
    /// runtime keeps each task's lag behind the discipline's virtual clock
    /// (as [`adopt`](Self::adopt) does), so no task gains or loses its
    /// fair-share position by the switch. A Running task is not queued
    /// anywhere and simply returns into the new discipline.
    ///
    /// ```
    /// # use percore_sched::{AnyDiscipline, Discipline, Flavour, Priority, TaskParams, TaskState, TaskTree};
    /// let mut tree = TaskTree::new(AnyDiscipline::new(Flavour::RoundRobin));
    /// let p = Priority::DEFAULT;
    /// let late = tree.spawn(TaskParams::new(p).with_deadline(900)).unwrap();
    /// let soon = tree.spawn(TaskParams::new(p).with_deadline(100)).unwrap();
    /// let old = tree.set_discipline(AnyDiscipline::new(Flavour::Deadline));
    /// assert_eq!((old.name(), old.len()), ("round-robin", 0));
    /// assert_eq!(tree.ready_len(), 2);
    /// assert_eq!(tree.select(), Some(soon)); // EDF order from now on
    /// assert_eq!(tree.state(late), Some(TaskState::Ready));
    /// ```
    pub fn set_discipline(&mut self, discipline: D) -> D {
        let old_clock = self.discipline.virtual_clock();
        let mut old = core::mem::replace(&mut self.discipline, discipline);
        let mut ready = alloc::vec::Vec::with_capacity(old.len());
        while let Some(id) = old.select() {
            ready.push(id);
        }
        let new_clock = self.discipline.virtual_clock();
        for task in self.tasks.iter_mut() {
            let lag = task.vruntime.saturating_sub(old_clock);
            task.vruntime = new_clock.saturating_add(lag);
        }
        for id in ready {
            if let Some(task) = self.tasks.get_mut(id) {
                self.discipline.enqueue(task);
            }
        }
        old
    }

    /// The discipline, read-only (its name, its length).
    ///
    /// ```
    /// # use percore_sched::{Discipline, Fair, TaskTree};
    /// assert_eq!(TaskTree::new(Fair::new()).discipline().name(), "fair");
    /// ```
    pub fn discipline(&self) -> &D {
        &self.discipline
    }

    /// Checks that `id` is live and its state passes `allowed`; returns the state.
    fn expect(
        &self,
        id: TaskId,
        allowed: impl Fn(TaskState) -> bool,
    ) -> Result<TaskState, StateError> {
        let from = self.state(id).ok_or(StateError::NoSuchTask(id))?;
        if allowed(from) {
            Ok(from)
        } else {
            Err(StateError::InvalidTransition { id, from })
        }
    }

    /// Puts a live, not-queued task into the discipline as Ready.
    fn make_ready(&mut self, id: TaskId) {
        if let Some(task) = self.tasks.get_mut(id) {
            task.state = TaskState::Ready;
            task.notified = false;
            self.discipline.enqueue(task);
            self.ready.add(&task.params);
        }
    }

    /// Takes a Ready task out of the discipline (its state is the caller's).
    pub(crate) fn unqueue(&mut self, id: TaskId) {
        if let Some(task) = self.tasks.get(id) {
            self.discipline.dequeue(task);
            self.ready.remove(&task.params);
        }
    }
}
