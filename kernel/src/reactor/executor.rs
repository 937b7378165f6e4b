//! Step 4 of the loop: the executor. The task tree (`percore_sched`) picks
//! what runs; the cells hold the futures by the tree's slot index.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::task::{Context, Waker};

use percore_sched::{AnyDiscipline, TaskId, TaskParams, TaskTree};

use super::task::{NOT_ADOPTED, TaskCell};
use super::{POLL_BATCH, Reactor};

/// The executor state: the task tree and the futures' cells by slot.
pub(super) struct Executor {
    pub(super) tree: TaskTree<AnyDiscipline>,
    pub(super) cells: Vec<Option<Arc<TaskCell>>>,
}

impl Executor {
    pub(super) fn new(tree: TaskTree<AnyDiscipline>) -> Executor {
        Executor {
            tree,
            cells: Vec::new(),
        }
    }
}

impl Reactor {
    /// Puts a task that arrived from elsewhere (or was just spawned) into the tree.
    pub(super) fn adopt(&self, cell: Arc<TaskCell>) {
        let mut params = TaskParams::new(cell.priority);
        if cell.pinned {
            params = params.pinned();
        }
        let mut exec = self.executor.borrow_mut();
        let id = match exec.tree.spawn(params) {
            Ok(id) => id,
            Err(error) => {
                // The tree has no room: keep the task queued and retry next turn.
                log::warn!("reactor: task tree full ({error:?}); retrying");
                self.spawned.lock().push_back(cell);
                return;
            }
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
        let queued: VecDeque<Arc<TaskCell>> = core::mem::take(&mut *self.local.lock());
        for cell in queued {
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

    /// Polls up to POLL_BATCH ready tasks; returns how many ran.
    pub(super) fn run_batch(&self) -> usize {
        let mut ran = 0;
        while ran < POLL_BATCH {
            let Some((id, cell)) = self.select() else {
                break;
            };
            ran += 1;
            self.poll_task(id, cell);
        }
        ran
    }

    fn select(&self) -> Option<(TaskId, Arc<TaskCell>)> {
        let mut exec = self.executor.borrow_mut();
        let id = exec.tree.select()?;
        let cell = exec.cells.get(id.index()).and_then(|c| c.clone())?;
        self.publish_ready(&exec);
        Some((id, cell))
    }

    fn poll_task(&self, id: TaskId, cell: Arc<TaskCell>) {
        cell.notified.store(false, Ordering::Release);
        let waker = Waker::from(cell.clone());
        let mut cx = Context::from_waker(&waker);
        let mut slot = cell.future.lock();
        let done = match slot.as_mut() {
            Some(future) => future.as_mut().poll(&mut cx).is_ready(),
            None => true,
        };
        if done {
            *slot = None;
        }
        drop(slot);
        self.stats.polls.fetch_add(1, Ordering::Relaxed);
        let mut exec = self.executor.borrow_mut();
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
    }
}
