//! Tasks: futures with a priority and a home core, their wakers, `spawn`,
//! `spawn_on` and `JoinHandle`.
//!
//! A task is a [`TaskCell`] shared through an `Arc`: the waker *is* the cell.
//! The cell records where the task lives now (`home`, its id in that core's
//! task tree), so a waker names `(core, task)`: waking on the home core
//! touches only that core's queue; waking from another core sends a `Wake`
//! message over the intercore bus. A cell travels between cores (spawn_on,
//! migration) as a `Word` inside a message, written in place into a ring
//! slot.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::task::Wake;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use core::task::{Context, Poll};

use percore_proto::{Message, TaskRef, Word};
use percore_sched::Priority;

use super::oneshot::{self, Receiver};
use super::{Reactor, reactor, this};
use crate::arch::{CoreId, cpu};

/// A boxed task future.
pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// `TaskCell::local_id` of a task no core has adopted yet (in flight).
pub(super) const NOT_ADOPTED: u64 = u64::MAX;

/// One task, shared by its core's tree, its wakers and in-flight messages.
pub struct TaskCell {
    /// The core the task lives on.
    pub(super) home: AtomicU16,
    /// Its `TaskId` (raw) in the home core's tree; [`NOT_ADOPTED`] before.
    pub(super) local_id: AtomicU64,
    /// Set by a wake, cleared just before each poll: a wake during a poll is never lost.
    pub(super) notified: AtomicBool,
    pub(super) priority: Priority,
    /// Pinned tasks never migrate.
    pub(super) pinned: bool,
    /// Taken by the home core to poll; only ever locked by that core.
    pub(super) future: spin::Mutex<Option<TaskFuture>>,
}

impl TaskCell {
    fn new(future: TaskFuture, priority: Priority, pinned: bool, home: CoreId) -> Arc<TaskCell> {
        Arc::new(TaskCell {
            home: AtomicU16::new(home.0),
            local_id: AtomicU64::new(NOT_ADOPTED),
            notified: AtomicBool::new(true),
            priority,
            pinned,
            future: spin::Mutex::new(Some(future)),
        })
    }

    /// The core the task lives on now.
    pub fn home(&self) -> CoreId {
        CoreId(self.home.load(Ordering::Acquire))
    }
}

impl Wake for TaskCell {
    fn wake(self: Arc<Self>) {
        if self.notified.swap(true, Ordering::AcqRel) {
            return; // already queued to run
        }
        let me = cpu::core_id();
        match reactor(me) {
            Some(here) if self.home() == me => here.local.lock().push_back(self),
            Some(here) => send_wake(here, self),
            // No reactor on this core: nothing can run the task here.
            None => log::error!("wake from core {me} without a reactor: dropped"),
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.clone().wake();
    }
}

/// Sends a wake-up for `cell` to its home core.
pub(super) fn send_wake(from: &Reactor, cell: Arc<TaskCell>) {
    let home = cell.home();
    from.send(
        home,
        Message::Wake {
            task: TaskRef(cell.into_word()),
        },
    );
}

/// Sends a new or migrating task to `to` (`migrate`: it was stolen).
pub(super) fn send_task(from: &Reactor, to: CoreId, cell: Arc<TaskCell>, migrate: bool) {
    let priority = cell.priority.get();
    let task = TaskRef(cell.into_word());
    let message = if migrate {
        Message::Migrate { task, priority }
    } else {
        Message::Spawn { task, priority }
    };
    from.send(to, message);
}

/// Awaits a task's result, from any core.
pub struct JoinHandle<T> {
    result: Receiver<T>,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match Pin::new(&mut self.result).poll(cx) {
            Poll::Ready(Some(value)) => Poll::Ready(value),
            // Polled again after completion (a caller bug), or the task was
            // dropped unfinished: stay pending rather than panic.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.result.is_done()
    }
}

/// Wraps `future` so that its output goes to a [`JoinHandle`].
fn joinable<F>(future: F) -> (TaskFuture, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (sender, result) = oneshot::oneshot();
    let task = Box::pin(async move {
        sender.send(future.await);
    });
    (task, JoinHandle { result })
}

/// How a task is placed.
#[derive(Clone, Copy, Debug)]
pub struct SpawnOptions {
    pub priority: Priority,
    /// Never migrated by the load balancer.
    pub pinned: bool,
}

impl SpawnOptions {
    pub fn new(priority: Priority) -> Self {
        SpawnOptions {
            priority,
            pinned: false,
        }
    }

    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }
}

/// Spawns `future` on this core.
pub fn spawn<F>(priority: Priority, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_with(cpu::core_id(), SpawnOptions::new(priority), future)
}

/// Spawns `future` on core `core` (through the intercore bus when remote).
pub fn spawn_on<F>(core: CoreId, priority: Priority, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_with(core, SpawnOptions::new(priority), future)
}

/// Spawns with explicit options. A core that does not exist or has stopped
/// is replaced by this core (logged): a task is never silently dropped.
pub fn spawn_with<F>(core: CoreId, options: SpawnOptions, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, handle) = joinable(future);
    let here = this();
    let target = match reactor(core) {
        Some(r) if !r.is_stopped() => core,
        Some(_) => {
            log::warn!("spawn_on: core {core} has stopped; spawning on this core");
            here.core()
        }
        None => {
            log::warn!("spawn_on: no reactor on core {core}; spawning on this core");
            here.core()
        }
    };
    let cell = TaskCell::new(task, options.priority, options.pinned, target);
    here.stats.spawned.fetch_add(1, Ordering::Relaxed);
    if target == here.core() {
        here.spawned.lock().push_back(cell);
    } else {
        send_task(here, target, cell, false);
    }
    handle
}

/// Yields to other ready tasks once.
pub fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    core::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}
