//! Step 4 of the loop: the executor. The task tree (`percore_sched`) picks
//! what runs; the cells hold the futures by the tree's slot index.
//!
//! Each poll is timed on the clock and charged to the task (`charge`: the
//! fair discipline's virtual runtime, every task's runtime). One clock
//! read per poll: a batch reads the clock once before its first task and
//! once after each, so a task is charged from the end of the previous
//! poll (its selection included) to the end of its own. After a poll the
//! tree learns a periodic task's current absolute deadline (it moves at
//! each release), and a one-shot deadline task that completes after its
//! deadline counts a miss.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::task::{Context, Waker};

use percore_sched::{AnyDiscipline, SpawnError, TaskId, TaskTree};

use super::task::{NOT_ADOPTED, TaskCell};
use super::{NO_LEVEL, POLL_BATCH, Reactor};
use crate::arch::clock;
use crate::time::{self, Clock};

/// The executor state: the task tree and the futures' cells by slot.
pub(super) struct Executor {
    pub(super) tree: TaskTree<AnyDiscipline>,
    pub(super) cells: Vec<Option<Arc<TaskCell>>>,
    /// The task being polled now (for `next_period` and `current_task`;
    /// its cell is `cells[id.index()]`).
    pub(super) current: Option<TaskId>,
}

impl Executor {
    pub(super) fn new(tree: TaskTree<AnyDiscipline>) -> Executor {
        Executor {
            tree,
            cells: Vec::new(),
            current: None,
        }
    }

    /// The task being polled now and its cell.
    pub(super) fn current(&self) -> Option<(TaskId, &Arc<TaskCell>)> {
        let id = self.current?;
        let cell = self.cells.get(id.index())?.as_ref()?;
        Some((id, cell))
    }
}

impl Reactor {
    /// Puts a task that arrived from elsewhere (or was just spawned) into the tree.
    /// A migrated task's record comes with it (`TaskTree::adopt` keeps its
    /// parameters, fair lag and runtime); a new one is built from the cell.
    pub(super) fn adopt(&self, cell: Arc<TaskCell>) {
        let mut exec = self.executor.borrow_mut();
        let migrant = cell.migrant.lock().take();
        let adopted = match migrant {
            // A full tree hands the record back: it waits in the cell.
            Some(migrant) => exec
                .tree
                .adopt(migrant)
                .map_err(|SpawnError::Full(m)| *cell.migrant.lock() = Some(m)),
            None => exec.tree.spawn(cell.params()).map_err(drop),
        };
        let Ok(id) = adopted else {
            // The tree has no room: keep the task queued and retry next turn.
            log::warn!("reactor: task tree full; retrying");
            self.spawned.lock().push_back(cell);
            return;
        };
        cell.home.store(self.core.0, Ordering::Release);
        cell.local_id.store(id.to_raw(), Ordering::Release);
        let slot = id.index();
        if exec.cells.len() <= slot {
            exec.cells.resize(slot + 1, None);
        }
        exec.cells[slot] = Some(cell);
        self.stats.tasks.fetch_add(1, Ordering::Relaxed);
        self.publish_ready(&exec);
    }

    /// Adopts locally spawned tasks and applies queued wakes.
    pub(super) fn take_local(&self) {
        let spawned: VecDeque<Arc<TaskCell>> = core::mem::take(&mut *self.spawned.lock());
        for cell in spawned {
            self.adopt(cell);
        }
        // One at a time rather than taking the whole queue: the queue keeps
        // its buffer, so a wake (a device completion) allocates nothing.
        // (The lock is released before the task is looked at.)
        loop {
            let Some(cell) = self.local.lock().pop_front() else {
                break;
            };
            let raw = cell.local_id.load(Ordering::Acquire);
            if raw == NOT_ADOPTED || cell.home() != self.core {
                // In flight to this core (spawn or migration): it arrives
                // ready. Or it moved on meanwhile: follow it.
                if cell.home() != self.core {
                    super::task::send_wake(self, cell);
                }
                continue;
            }
            let mut exec = self.executor.borrow_mut();
            // A stale id (the task finished or moved) is rejected by the tree's generation check.
            let _ = exec.tree.wake(TaskId::from_raw(raw));
            self.publish_ready(&exec);
        }
    }

    /// Polls up to POLL_BATCH ready tasks; returns how many ran and the
    /// highest priority level among them ([`NO_LEVEL`] if none ran).
    pub(super) fn run_batch(&self) -> (usize, u8) {
        let mut ran = 0;
        let mut top = NO_LEVEL;
        let mut mark = clock::cycles();
        while ran < POLL_BATCH {
            let Some((id, cell)) = self.select() else {
                break;
            };
            ran += 1;
            let level = cell.options.priority.get();
            top = if top == NO_LEVEL {
                level
            } else {
                top.max(level)
            };
            self.poll_task(id, cell, &mut mark);
            if self.end_batch.swap(false, Ordering::Relaxed) {
                break;
            }
        }
        (ran, top)
    }

    fn select(&self) -> Option<(TaskId, Arc<TaskCell>)> {
        let mut exec = self.executor.borrow_mut();
        let id = exec.tree.select()?;
        let cell = exec.cells.get(id.index()).and_then(|c| c.clone())?;
        self.publish_ready(&exec);
        Some((id, cell))
    }

    /// Polls one task; `mark` is the clock at the end of the previous poll
    /// (or the batch's start), moved to the end of this one.
    fn poll_task(&self, id: TaskId, cell: Arc<TaskCell>, mark: &mut u64) {
        cell.notified.store(false, Ordering::Release);
        let waker = Waker::from(cell.clone());
        let mut cx = Context::from_waker(&waker);
        self.executor.borrow_mut().current = Some(id);
        self.running
            .store(cell.options.priority.get(), Ordering::Relaxed);
        let mut slot = cell.future.lock();
        let done = match slot.as_mut() {
            Some(future) => future.as_mut().poll(&mut cx).is_ready(),
            None => true,
        };
        if done {
            *slot = None;
        }
        drop(slot);
        let end = clock::cycles();
        let ran_ns = time::cycles_to_ns(end.saturating_sub(*mark));
        *mark = end;
        self.running.store(NO_LEVEL, Ordering::Relaxed);
        self.stats.polls.fetch_add(1, Ordering::Relaxed);
        cell.runtime.fetch_add(ran_ns, Ordering::Relaxed);
        let mut exec = self.executor.borrow_mut();
        exec.current = None;
        let _ = exec.tree.charge(id, ran_ns);
        if done {
            // A one-shot job is the task's whole life (a periodic task's
            // jobs end at `next_period`).
            let one_shot = cell.options.deadline_ns != 0 && cell.options.period_ns == 0;
            if one_shot && Clock::now().0 > cell.deadline.load(Ordering::Acquire) {
                self.count_miss(&cell);
            }
        } else if cell.options.period_ns != 0
            && let deadline = cell.deadline.load(Ordering::Acquire)
            && exec.tree.task(id).is_some_and(|t| t.deadline() != deadline)
        {
            // A periodic task was released again: order it by its new deadline.
            let _ = exec.tree.set_deadline(id, deadline);
        }
        if done {
            let _ = exec.tree.finish(id);
            let _ = exec.tree.reap(id);
            exec.cells[id.index()] = None;
            self.stats.tasks.fetch_sub(1, Ordering::Relaxed);
            self.stats.completed.fetch_add(1, Ordering::Relaxed);
        } else if cell.notified.load(Ordering::Acquire) {
            // Woken during its own poll (e.g. yield_now): run again later.
            let _ = exec.tree.yield_now(id);
        } else {
            let _ = exec.tree.block(id);
        }
        self.publish_ready(&exec);
    }

    /// Whether anything is ready to run or waiting to be adopted.
    pub(super) fn has_work(&self) -> bool {
        !self.local.lock().is_empty()
            || !self.spawned.lock().is_empty()
            || self.executor.borrow_mut().tree.ready_len() > 0
    }

    /// Publishes the ready count for other cores (load balancing, `cores`).
    pub(super) fn publish_ready(&self, exec: &Executor) {
        self.stats
            .ready
            .store(exec.tree.ready_len(), Ordering::Relaxed);
        self.stats
            .movable
            .store(exec.tree.movable_len(), Ordering::Relaxed);
    }
}
