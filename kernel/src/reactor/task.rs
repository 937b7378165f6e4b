//! Tasks: futures with a priority and a home core, their wakers, `spawn`,
//! `spawn_on` and `JoinHandle`.
//!
//! A task is a [`TaskCell`] shared through an `Arc`: the waker *is* the cell.
//! The cell records where the task lives now (`home`, its id in that core's
//! task tree), so a waker names `(core, task)`: waking on the home core
//! touches only that core's queue; waking from another core sends a `Wake`
//! message over the intercore bus. A cell travels between cores (spawn_on,
//! migration) as a raw `Arc` pointer inside a message, written in place into
//! a ring slot.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::task::Wake;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};

use percore_sched::Priority;

use crate::arch::x86_64::cpu_local::{self, CoreId};

/// A boxed task future.
pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One task, shared by its core's tree, its wakers and in-flight messages.
pub struct TaskCell {
    /// The core the task lives on.
    pub(super) home: AtomicU32,
    /// Its `TaskId` (raw) in the home core's tree; `u64::MAX` before it is adopted.
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
    pub(super) fn new(
        future: TaskFuture,
        priority: Priority,
        pinned: bool,
        home: CoreId,
    ) -> Arc<TaskCell> {
        Arc::new(TaskCell {
            home: AtomicU32::new(home.0),
            local_id: AtomicU64::new(u64::MAX),
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

    /// Packs an owned reference into a message word.
    pub(super) fn into_word(cell: Arc<TaskCell>) -> u64 {
        Arc::into_raw(cell) as u64
    }

    /// Unpacks an owned reference from a message word.
    ///
    /// # Safety
    /// `word` must come from [`TaskCell::into_word`] and be unpacked once.
    pub(super) unsafe fn from_word(word: u64) -> Arc<TaskCell> {
        // SAFETY: forwarded to the caller.
        unsafe { Arc::from_raw(word as *const TaskCell) }
    }
}

impl Wake for TaskCell {
    fn wake(self: Arc<Self>) {
        if self.notified.swap(true, Ordering::AcqRel) {
            return; // already queued to run
        }
        super::deliver_wake(self);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.clone().wake();
    }
}

/// Shared between a task and its [`JoinHandle`].
struct JoinState<T> {
    done: AtomicBool,
    result: spin::Mutex<Option<T>>,
    /// The joiner's waker and the core it waited on: when the task
    /// finishes on another core, the wake-up travels as a `Join` message.
    waiter: spin::Mutex<Option<(CoreId, Waker)>>,
}

/// Awaits a task's result, from any core.
pub struct JoinHandle<T> {
    state: Arc<JoinState<T>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let state = &self.state;
        if !state.done.load(Ordering::Acquire) {
            *state.waiter.lock() = Some((cpu_local::core_id(), cx.waker().clone()));
            // Re-check: the task may have finished before the waker was stored.
            if !state.done.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            // It did: take the waker back, so that the finishing side (if it
            // has not taken it yet) sends no needless wake-up.
            state.waiter.lock().take();
        }
        match state.result.lock().take() {
            Some(value) => Poll::Ready(value),
            // Polled again after completion: a caller bug; stay pending rather than panic.
            None => Poll::Pending,
        }
    }
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.state.done.load(Ordering::Acquire)
    }
}

/// Wraps `future` so that its output goes to a [`JoinHandle`].
fn joinable<F>(future: F) -> (TaskFuture, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let state = Arc::new(JoinState {
        done: AtomicBool::new(false),
        result: spin::Mutex::new(None),
        waiter: spin::Mutex::new(None),
    });
    let handle = JoinHandle {
        state: state.clone(),
    };
    let task = Box::pin(async move {
        let value = future.await;
        *state.result.lock() = Some(value);
        state.done.store(true, Ordering::Release);
        let waiter = state.waiter.lock().take();
        if let Some((core, waker)) = waiter {
            super::deliver_join(core, waker);
        }
    });
    (task, handle)
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
    spawn_with(cpu_local::core_id(), SpawnOptions::new(priority), future)
}

/// Spawns `future` on core `core` (through the intercore bus when remote).
pub fn spawn_on<F>(core: CoreId, priority: Priority, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_with(core, SpawnOptions::new(priority), future)
}

/// Spawns with explicit options. A core that does not exist or has halted
/// is replaced by this core (logged): a task is never silently dropped.
pub fn spawn_with<F>(core: CoreId, options: SpawnOptions, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, handle) = joinable(future);
    let target = match super::reactor(core) {
        Some(r) if !r.is_parked() => core,
        Some(_) => {
            log::warn!("spawn_on: core {core} has halted; spawning on this core");
            cpu_local::core_id()
        }
        None => {
            log::warn!("spawn_on: no reactor on core {core}; spawning on this core");
            cpu_local::core_id()
        }
    };
    let cell = TaskCell::new(task, options.priority, options.pinned, target);
    super::deliver_spawn(cell);
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
