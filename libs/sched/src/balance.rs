//! Load balancing between cores: how much ready work each priority level
//! holds, taking a movable task out ([`TaskTree::steal`]) and taking a
//! foreign one in ([`TaskTree::adopt`]). Pinned tasks never leave.

use crate::{Discipline, Migrant, Priority, SpawnError, TaskId, TaskTree};

impl<D: Discipline> TaskTree<D> {
    /// Number of Ready tasks at `priority` (the load balancer's view).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// tree.spawn(TaskParams::new(Priority::MAX)).unwrap();
    /// assert_eq!(tree.ready_at(Priority::MAX), 1);
    /// assert_eq!(tree.ready_at(Priority::MIN), 0);
    /// ```
    pub fn ready_at(&self, priority: Priority) -> usize {
        self.ready.at[priority.get() as usize] as usize
    }

    /// Number of Ready tasks that are not pinned: what another core could
    /// take ([`steal`](Self::steal)).
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// tree.spawn(TaskParams::new(Priority::MAX).pinned()).unwrap();
    /// tree.spawn(TaskParams::new(Priority::MIN)).unwrap();
    /// assert_eq!((tree.ready_len(), tree.movable_len()), (2, 1));
    /// ```
    pub fn movable_len(&self) -> usize {
        self.ready.movable as usize
    }

    /// Takes one ready, unpinned task of `priority` out of this core (least
    /// urgent first), for the load balancer to move elsewhere. Its slot here is
    /// freed. Call repeatedly to take several.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let p = Priority::DEFAULT;
    /// let _pinned = tree.spawn(TaskParams::new(p).pinned()).unwrap();
    /// let free = tree.spawn(TaskParams::new(p)).unwrap();
    /// assert_eq!(tree.steal(p).map(|m| m.from()), Some(free));
    /// assert!(tree.steal(p).is_none()); // only the pinned one is left
    /// ```
    pub fn steal(&mut self, priority: Priority) -> Option<Migrant> {
        if self.ready.at[priority.get() as usize] == 0 || self.ready.movable == 0 {
            return None;
        }
        let mut victim = None;
        let tasks = &self.tasks;
        self.discipline.visit_ready(priority, &mut |id| {
            let movable = tasks.get(id).is_some_and(|t| !t.is_pinned());
            if movable {
                victim = Some(id);
            }
            !movable
        });
        let id = victim?;
        self.unqueue(id);
        let clock = self.discipline.virtual_clock();
        let task = self.tasks.remove(id)?;
        Some(Migrant {
            from: id,
            params: task.params,
            vlag: task.vruntime.saturating_sub(clock),
            runtime: task.runtime,
        })
    }

    /// Inserts a task stolen from another core as Ready; on a full tree the
    /// migrant is handed back.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, SpawnError, TaskParams, TaskTree};
    /// let mut a = TaskTree::new(RoundRobin::new());
    /// let mut b = TaskTree::with_capacity(RoundRobin::new(), 0);
    /// a.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// let m = a.steal(Priority::DEFAULT).unwrap();
    /// assert_eq!(b.adopt(m), Err(SpawnError::Full(m)));
    /// ```
    pub fn adopt(&mut self, migrant: Migrant) -> Result<TaskId, SpawnError<Migrant>> {
        let clock = self.discipline.virtual_clock();
        let Some(task) = self.tasks.insert(migrant.params) else {
            return Err(SpawnError::Full(migrant));
        };
        task.vruntime = clock.saturating_add(migrant.vlag);
        task.runtime = migrant.runtime;
        let id = task.id;
        self.discipline.enqueue(task);
        self.ready.add(&migrant.params);
        Ok(id)
    }
}
