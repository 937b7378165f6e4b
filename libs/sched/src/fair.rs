//! Weighted fair share by virtual runtime, kept in an ordered tree (a
//! `BTreeMap`), in the manner of Linux CFS.
//!
//! A task's virtual runtime grows by `ran_ns * DEFAULT_WEIGHT / weight` when
//! it is charged (the weight is the task's own, [`TaskParams::with_weight`](crate::TaskParams::with_weight),
//! or its priority's), so a task of twice the weight ages half as fast and gets
//! twice the CPU. The tree is keyed by `(vruntime, slot)`; the leftmost task
//! runs next. `min_vruntime` is a monotonic clock that follows the leftmost
//! key: a task that slept is lifted to it on wake-up, so sleeping does not
//! bank credit to monopolise the core later.

use alloc::collections::BTreeMap;

use crate::{Discipline, Priority, Task, TaskId};

/// Virtual-runtime fair scheduling with time-slice accounting.
///
/// ```
/// use percore_sched::{Fair, Priority, TaskParams, TaskTree};
///
/// let mut tree = TaskTree::new(Fair::new());
/// let heavy = tree.spawn(TaskParams::new(Priority::new(40).unwrap())).unwrap();
/// let light = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// // Run for a while, charging each selected task 100 µs.
/// for _ in 0..1000 {
///     let id = tree.select().unwrap();
///     tree.charge(id, 100_000).unwrap();
///     tree.yield_now(id).unwrap();
/// }
/// let (h, l) = (tree.task(heavy).unwrap().runtime(), tree.task(light).unwrap().runtime());
/// // Eight levels up weighs 1.25^8 ~ 5.96x: the CPU split follows.
/// assert!(h > 5 * l && h < 7 * l);
/// ```
#[derive(Debug)]
pub struct Fair {
    /// `(vruntime, slot) -> (generation, priority, weight)`.
    tree: BTreeMap<(u64, u32), (u32, Priority, u64)>,
    min_vruntime: u64,
    total_weight: u64,
    latency: u64,
    min_granularity: u64,
}

impl Fair {
    /// Period in which every ready task should run once: 6 ms (CFS default).
    pub const DEFAULT_LATENCY_NS: u64 = 6_000_000;
    /// Shortest slice, and the virtual-runtime lead a waking task needs to
    /// preempt: 0.75 ms (CFS default).
    pub const DEFAULT_MIN_GRANULARITY_NS: u64 = 750_000;

    /// An empty discipline with CFS's default latency and granularity.
    ///
    /// ```
    /// # use percore_sched::{Discipline, Fair};
    /// assert!(Fair::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self::with_latency(Self::DEFAULT_LATENCY_NS, Self::DEFAULT_MIN_GRANULARITY_NS)
    }

    /// An empty discipline that shares `latency_ns` among the ready tasks by
    /// weight, never handing out less than `min_granularity_ns`.
    ///
    /// ```
    /// # use percore_sched::{Fair, Priority, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(Fair::with_latency(4_000, 1_000));
    /// let a = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// let _b = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// let run = tree.select().unwrap();
    /// assert_eq!(run, a);
    /// // Two equal weights share 4 µs: 2 µs each.
    /// assert_eq!(tree.time_slice(run), Some(2_000));
    /// ```
    pub const fn with_latency(latency_ns: u64, min_granularity_ns: u64) -> Self {
        Self {
            tree: BTreeMap::new(),
            min_vruntime: 0,
            total_weight: 0,
            latency: latency_ns,
            min_granularity: min_granularity_ns,
        }
    }
}

impl Default for Fair {
    fn default() -> Self {
        Self::new()
    }
}

impl Discipline for Fair {
    fn name(&self) -> &'static str {
        "fair"
    }

    fn enqueue(&mut self, task: &mut Task) {
        task.vruntime = task.vruntime.max(self.min_vruntime);
        let id = task.id();
        self.tree.insert(
            (task.vruntime, id.slot()),
            (id.generation(), task.priority(), task.weight()),
        );
        self.total_weight += task.weight();
    }

    fn dequeue(&mut self, task: &Task) {
        if self
            .tree
            .remove(&(task.vruntime, task.id().slot()))
            .is_some()
        {
            self.total_weight -= task.weight();
        }
    }

    fn select(&mut self) -> Option<TaskId> {
        let ((vruntime, slot), (generation, _, weight)) = self.tree.pop_first()?;
        self.total_weight -= weight;
        self.min_vruntime = self.min_vruntime.max(vruntime);
        Some(TaskId::new(slot, generation))
    }

    fn peek(&self) -> Option<TaskId> {
        let (&(_, slot), &(generation, _, _)) = self.tree.first_key_value()?;
        Some(TaskId::new(slot, generation))
    }

    fn len(&self) -> usize {
        self.tree.len()
    }

    fn charge(&mut self, task: &mut Task, ran_ns: u64) {
        // Widen to u128: ran_ns (up to 2^64) times a weight (up to 2^30).
        let delta =
            u128::from(ran_ns) * u128::from(Priority::DEFAULT_WEIGHT) / u128::from(task.weight());
        let delta = u64::try_from(delta).unwrap_or(u64::MAX);
        task.vruntime = task.vruntime.saturating_add(delta);
    }

    fn time_slice(&self, running: &Task) -> u64 {
        // The running task is not in the tree; count it in the total.
        let weight = running.weight();
        let share =
            u128::from(self.latency) * u128::from(weight) / u128::from(self.total_weight + weight);
        (share as u64).max(self.min_granularity)
    }

    fn preempts(&self, running: &Task) -> bool {
        self.tree
            .first_key_value()
            .is_some_and(|(&(v, _), _)| v.saturating_add(self.min_granularity) < running.vruntime())
    }

    fn virtual_clock(&self) -> u64 {
        self.min_vruntime
    }

    fn visit_ready(&self, priority: Priority, visit: &mut dyn FnMut(TaskId) -> bool) {
        // Rightmost first: the most virtual runtime, the least owed.
        for (&(_, slot), &(generation, p, _)) in self.tree.iter().rev() {
            if p == priority && !visit(TaskId::new(slot, generation)) {
                return;
            }
        }
    }
}
