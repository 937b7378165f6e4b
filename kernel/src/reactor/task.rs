//! Tasks: futures with scheduling parameters and a home core, their wakers,
//! `spawn`, `spawn_on`, `spawn_with` and `JoinHandle`.
//!
//! A task is a [`TaskCell`] shared through an `Arc`: the waker *is* the cell.
//! The cell records where the task lives now (`home`, its id in that core's
//! task tree), so a waker names `(core, task)`: waking on the home core
//! touches only that core's queue; waking from another core sends a `Wake`
//! message over the intercore bus. A cell travels between cores (spawn_on,
//! migration) as a `Word` inside a message, written in place into a ring
//! slot.
//!
//! The cell also carries what the task is scheduled by ([`SpawnOptions`]:
//! priority, weight, deadline, period, pinning) and its accounting (runtime,
//! deadline misses), so a task keeps all of it wherever it moves: a remote
//! spawn or a migration builds the task's record on the new core from the
//! cell (a migration from the [`Migrant`] the old core's tree handed over).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::task::Wake;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;

use percore_proto::{Message, TaskRef, Word};
use percore_sched::{Migrant, NO_DEADLINE, Priority, TaskParams};

use super::oneshot::{self, Receiver};
use super::{Reactor, reactor, this};
use crate::arch::{CoreId, cpu};
use crate::time::Clock;

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
    /// How the task is scheduled (fixed for its life).
    pub(super) options: SpawnOptions,
    /// The absolute deadline of the current job (clock ns), `NO_DEADLINE`
    /// without one; a periodic task moves it at each release.
    pub(super) deadline: AtomicU64,
    /// When the current job was released (clock ns): the spawn, then each period.
    pub(super) release: AtomicU64,
    /// CPU nanoseconds charged to the task, on every core it ran on.
    pub(super) runtime: AtomicU64,
    /// Jobs that finished after their deadline.
    pub(super) misses: AtomicU64,
    /// The scheduling record a migration carries (set by the old core,
    /// taken by the new one).
    pub(super) migrant: spin::Mutex<Option<Migrant>>,
    /// Taken by the home core to poll; only ever locked by that core.
    pub(super) future: spin::Mutex<Option<TaskFuture>>,
}

impl TaskCell {
    fn new(future: TaskFuture, options: SpawnOptions, home: CoreId) -> Arc<TaskCell> {
        let now = Clock::now().0;
        let deadline = match options.deadline_ns {
            _ if options.urgent => 0,
            0 => NO_DEADLINE,
            relative => now.saturating_add(relative),
        };
        Arc::new(TaskCell {
            home: AtomicU16::new(home.0),
            local_id: AtomicU64::new(NOT_ADOPTED),
            notified: AtomicBool::new(true),
            options,
            deadline: AtomicU64::new(deadline),
            release: AtomicU64::new(now),
            runtime: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            migrant: spin::Mutex::new(None),
            future: spin::Mutex::new(Some(future)),
        })
    }

    /// The parameters the task tree orders this task by, now.
    pub(super) fn params(&self) -> TaskParams {
        let mut params = TaskParams::new(self.options.priority)
            .with_deadline(self.deadline.load(Ordering::Acquire));
        if self.options.weight != 0 {
            params = params.with_weight(u64::from(self.options.weight) * Priority::DEFAULT_WEIGHT);
        }
        if self.options.pinned {
            params = params.pinned();
        }
        params
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
    let priority = cell.options.priority.get();
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

/// How a task is placed and scheduled. Every discipline orders by priority
/// first where it can (round robin: strictly; the others use it to choose
/// migration victims); the fair discipline shares the CPU by weight, the
/// deadline discipline runs the earliest absolute deadline first.
///
/// ```
/// use core::time::Duration;
/// use percore_kernel::reactor::{SpawnOptions, priority};
///
/// // A 10 ms periodic job that must be done 8 ms after each release.
/// let rt = SpawnOptions::new(priority(40))
///     .deadline(Duration::from_millis(8))
///     .period(Duration::from_millis(10))
///     .pinned();
/// assert_eq!(rt.deadline_ns, 8_000_000);
/// assert_eq!(SpawnOptions::new(priority(32)).weight(3).weight, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnOptions {
    pub priority: Priority,
    /// Fair-share weight in units of an ordinary task's (1 = as much CPU as
    /// a default-priority task); 0: the priority's weight.
    pub weight: u32,
    /// Relative deadline of each job (ns after its release); 0: none.
    pub deadline_ns: u64,
    /// Period of a periodic task (ns between releases, see
    /// [`next_period`](super::next_period)); 0: not periodic.
    pub period_ns: u64,
    /// Never migrated by the load balancer.
    pub pinned: bool,
    /// Kernel control work (a discipline switch, a task listing) that must
    /// run before any deadline: its absolute deadline is 0, and it counts
    /// no misses.
    pub(crate) urgent: bool,
}

impl SpawnOptions {
    /// A movable task at `priority`, with its priority's weight, no deadline.
    pub fn new(priority: Priority) -> Self {
        SpawnOptions {
            priority,
            weight: 0,
            deadline_ns: 0,
            period_ns: 0,
            pinned: false,
            urgent: false,
        }
    }

    /// Never migrated by the load balancer.
    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// Fair-share weight (see [`SpawnOptions::weight`]).
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Relative deadline of each job.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline_ns = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// Period of a periodic task; its deadline defaults to the period.
    pub fn period(mut self, period: Duration) -> Self {
        self.period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        if self.deadline_ns == 0 {
            self.deadline_ns = self.period_ns;
        }
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
    let cell = TaskCell::new(task, options, target);
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
