//! The per-core reactor, the engine every service runs on. Every core runs
//! this loop (DESIGN.md, "data flow on one core"; one turn is in `turn.rs`):
//!
//! 1. drain the inbound intercore rings and act on each protocol message:
//!    the engine's own (spawn, wake, migrate, steal, timer, join, register,
//!    stop) here, the services' (ports, barriers, topics, probes) through
//!    the handler each service registers ([`service`]);
//! 2. advance the timer wheel to now and wake the expired sleepers;
//! 3. drain this core's readiness queue ([`readiness`]) and wake the
//!    registered tasks by token; then take the wakes and spawns queued on
//!    this core;
//! 4. poll the ready tasks in the order of this core's discipline (a
//!    bounded batch of [`POLL_BATCH`]; each poll charged to its task), then
//!    balance load and flush overflowed messages;
//! 5. nothing ready: program the timer for the wheel's next deadline (or
//!    not at all: tickless), mark the core asleep to the bus and to the
//!    readiness queue, re-check both, and sleep until an interrupt — or, in
//!    poll mode ([`set_busy_poll`]), just go round again.
//!
//! No global lock is taken on this path: a core's task tree, wheel, bus
//! endpoint and readiness queue belong to it alone ([`CoreOnly`]); the only
//! shared state is the rings and a few counters other cores read. The
//! reactor reaches the hardware only through `arch`'s interface, so on the
//! host it runs against the simulated machine (`tests.rs`).
//!
//! Words: a core *sleeps* when it has nothing to do (it halts until an
//! interrupt and goes on); it *stops* for good on a `Stop` message
//! ([`stop`]).

mod balance;
mod bus;
mod core_only;
pub mod discipline;
mod executor;
pub mod idle;
pub mod oneshot;
pub mod period;
pub mod readiness;
pub mod service;
pub mod stop;
pub mod task;
#[cfg(test)]
mod tests;
pub mod timer;
mod turn;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use percore_proto::Message;
use percore_sched::{AnyDiscipline, Priority, TaskTree};
use percore_timer::{Config, TickShift, Wheel};

use crate::arch::{CoreId, call, cpu, doorbell};
use core_only::CoreOnly;
use executor::Executor;
use task::TaskCell;

pub use discipline::{
    SchedConfig, SchedError, TaskInfo, current_runtime_ns, current_task, flavour_name,
    parse_flavour, set_flavour, task_list,
};
pub use period::{PeriodError, next_period};
pub use service::PerCore;
pub use task::{JoinHandle, SpawnOptions, spawn, spawn_on, spawn_with, yield_now};
pub use timer::{Interval, Sleep, interval, next_deadline, sleep, sleep_on, sleep_until};

/// Tasks polled per loop iteration before the rings and timers are checked again.
const POLL_BATCH: usize = 32;
/// Messages taken from the rings per loop iteration.
const DRAIN_BATCH: usize = 256;
/// Timer wheel tick: 2^10 ns ≈ 1 µs.
const TIMER_TICK_SHIFT: u32 = 10;
/// A published priority level meaning "none" (no ready task, not polling).
pub(crate) const NO_LEVEL: u8 = u8::MAX;

/// Counters of one reactor, readable from any core.
#[derive(Default)]
pub struct ReactorStats {
    /// Tasks living on this core.
    pub tasks: AtomicUsize,
    /// Ready tasks waiting to run (load-balancing input).
    pub ready: AtomicUsize,
    /// Of those, the ones not pinned: what another core could take.
    pub movable: AtomicUsize,
    pub polls: AtomicU64,
    pub spawned: AtomicU64,
    pub completed: AtomicU64,
    pub migrated_in: AtomicU64,
    pub migrated_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// Timers in this core's wheel.
    pub timers: AtomicUsize,
    /// Times this core slept with nothing to do.
    pub sleeps: AtomicU64,
    /// Times halt polling found work before the core slept ([`idle`]).
    pub poll_hits: AtomicU64,
    /// The halt-polling window and the timer advance now (ns, [`idle`]).
    pub poll_window_ns: AtomicU64,
    pub timer_advance_ns: AtomicU64,
    /// `Join` messages received: a one-shot answer (a task's result, a
    /// reply) was filled on another core for a waiter here.
    pub joins_in: AtomicU64,
    /// Messages waiting in this core's inbound rings when it last drained
    /// them (including any that arrived during that drain), and the most
    /// ever seen.
    pub ring_depth: AtomicUsize,
    pub ring_depth_max: AtomicUsize,
    /// Messages this core could not place in a full ring yet (its
    /// overflow queues; flushed every turn).
    pub overflow_pending: AtomicU64,
    /// Messages dropped because their receiver had stopped or their port
    /// was closed; each one is also logged.
    pub undeliverable: AtomicU64,
    /// Readiness registrations in this core's queue.
    pub registrations: AtomicUsize,
    /// `Ping`s answered and `Pong`s received (latency probes).
    pub probes: AtomicU64,
    /// Topics published from this core.
    pub topics: AtomicUsize,
    /// Jobs of this core's tasks that finished after their deadline
    /// ([`period`]).
    pub deadline_misses: AtomicU64,
}

/// One core's reactor.
pub struct Reactor {
    core: CoreId,
    executor: CoreOnly<Executor>,
    wheel: CoreOnly<Wheel<core::task::Waker>>,
    bus: CoreOnly<percore_proto::Endpoint>,
    /// The readiness queue of the event sources this core owns.
    readiness: CoreOnly<readiness::Queue>,
    /// The batch of messages a turn took off the rings ([`DRAIN_BATCH`]
    /// long, allocated once).
    inbox: CoreOnly<Vec<(CoreId, Message)>>,
    /// Wakes of this core's tasks, from this core (tasks, timers) or
    /// received from others; taken in step 3.
    local: spin::Mutex<VecDeque<Arc<TaskCell>>>,
    /// Tasks spawned on this core by its own tasks, adopted in step 3.
    spawned: spin::Mutex<VecDeque<Arc<TaskCell>>>,
    /// An outstanding steal request (so an idle core asks once, not in a loop).
    steal_pending: AtomicBool,
    /// Set while this core sleeps with nothing to do (a hint for others).
    asleep: AtomicBool,
    /// Poll mode (see [`set_busy_poll`]): the idle step spins instead of sleeping.
    busy_poll: AtomicBool,
    /// The idle step's adaptive halt-polling window and timer advance.
    tuning: CoreOnly<idle::IdleTuning>,
    /// Whether the idle step left the timer armed (only this core touches it).
    timer_armed: AtomicBool,
    /// Set by [`end_batch`]: the running batch of polls ends after this one.
    end_batch: AtomicBool,
    /// Set when a `Stop` message arrived: stop after this batch of messages.
    stopping: AtomicBool,
    /// Set once stopped for good (see [`stop`]).
    stopped: AtomicBool,
    /// The discipline the tree runs ([`discipline`]), published for other cores.
    flavour: AtomicU8,
    /// The highest priority level with a ready task, or [`NO_LEVEL`]
    /// (published once a turn, for load balancing).
    ready_top: AtomicU8,
    /// The priority level of the task being polled now, or [`NO_LEVEL`].
    running: AtomicU8,
    /// No priority steal request before this clock time (ns): the last one
    /// was denied ([`balance`]).
    steal_backoff: AtomicU64,
    pub stats: ReactorStats,
}

static REACTORS: spin::Once<Box<[Reactor]>> = spin::Once::new();
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// Core `core`'s reactor, once the reactors exist.
pub fn reactor(core: CoreId) -> Option<&'static Reactor> {
    REACTORS.get()?.get(core.index())
}

/// All reactors, by core.
pub fn reactors() -> &'static [Reactor] {
    REACTORS.get().map_or(&[], |r| &r[..])
}

/// This core's reactor. Panics before [`init`] (a caller bug).
pub fn this() -> &'static Reactor {
    reactor(cpu::core_id()).expect("reactor used before reactor::init")
}

/// Builds one reactor per online core (on the bootstrap core, after SMP
/// start-up), each core's task tree with the discipline `config` gives it,
/// and starts the loop on every application core. The bootstrap core joins
/// with [`run`] or [`block_on`].
pub fn init(config: &SchedConfig) {
    build(config);
    STARTED.fetch_add(1, Ordering::AcqRel);
    for core in 1..reactors().len() {
        let core = CoreId(core as u16);
        // The call never returns: the application core runs its reactor from now on.
        if let Err(error) = call::post(core, |_| run_forever(), 0, 1000) {
            log::error!("reactor: core {core} did not take its loop: {error:?}");
        }
    }
}

/// Builds the reactors (once) without starting any loop.
fn build(config: &SchedConfig) {
    let cores = cpu::online_cores();
    REACTORS.call_once(|| {
        bus::create(cores)
            .into_iter()
            .enumerate()
            .map(|(i, endpoint)| Reactor::new(CoreId(i as u16), endpoint, config))
            .collect::<Vec<_>>()
            .into_boxed_slice()
    });
}

impl Reactor {
    fn new(core: CoreId, bus: percore_proto::Endpoint, config: &SchedConfig) -> Reactor {
        let flavour = config.flavour(core);
        let wheel = Wheel::new(Config::new(
            TickShift::new(TIMER_TICK_SHIFT).expect("valid tick"),
        ))
        .expect("valid timer wheel configuration");
        let reactor = Reactor {
            core,
            executor: CoreOnly::new(
                core,
                Executor::new(TaskTree::new(AnyDiscipline::new(flavour))),
            ),
            wheel: CoreOnly::new(core, wheel),
            bus: CoreOnly::new(core, bus),
            readiness: CoreOnly::new(core, readiness::Queue::new(core)),
            inbox: CoreOnly::new(core, Vec::with_capacity(DRAIN_BATCH)),
            local: spin::Mutex::new(VecDeque::new()),
            spawned: spin::Mutex::new(VecDeque::new()),
            steal_pending: AtomicBool::new(false),
            asleep: AtomicBool::new(false),
            busy_poll: AtomicBool::new(false),
            tuning: CoreOnly::new(core, idle::IdleTuning::new()),
            timer_armed: AtomicBool::new(false),
            end_batch: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            flavour: AtomicU8::new(0),
            ready_top: AtomicU8::new(NO_LEVEL),
            running: AtomicU8::new(NO_LEVEL),
            steal_backoff: AtomicU64::new(0),
            stats: ReactorStats::default(),
        };
        reactor.publish_flavour(flavour);
        reactor
    }

    /// This core.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// The bus endpoint's counters (only on this reactor's own core).
    pub fn bus_stats(&self) -> percore_proto::Stats {
        self.bus.borrow_mut().stats()
    }

    /// Sends `message` to core `to` (never lost: a full ring queues it), and
    /// rings `to`'s doorbell if it sleeps. A message to a stopped core is
    /// counted as undeliverable and logged.
    pub fn send(&self, to: CoreId, message: Message) {
        if stop::is_stopped(to) {
            // Nothing will ever drain that core's rings again: say so
            // rather than fill its ring and our overflow queue.
            self.stats.undeliverable.fetch_add(1, Ordering::Relaxed);
            log::warn!("reactor: core {to} has stopped; a {message:?} to it is dropped");
            return;
        }
        // A full ring queues the message in the endpoint's overflow queue
        // (flushed every turn): never lost.
        let delivery = self.bus.borrow_mut().send_or_queue(to, message);
        self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
        match delivery {
            Ok(delivery) if delivery.must_ring() => {
                doorbell::ring(to);
            }
            Ok(_) => {}
            // Only a bad destination gets here (a bug): say so loudly. An
            // object travelling with the message is leaked, not freed twice.
            Err(error) => log::error!("bus: cannot send to core {to}: {error:?}"),
        }
    }
}

/// Sends `message` from this core to core `to` (see [`Reactor::send`]).
pub fn send(to: CoreId, message: Message) {
    this().send(to, message);
}

fn run_forever() -> ! {
    STARTED.fetch_add(1, Ordering::AcqRel);
    loop {
        this().turn(&|| true);
    }
}

/// Runs this core's reactor forever (the kernel's main loop on core 0).
pub fn run() -> ! {
    run_forever()
}

/// Runs this core's reactor until `future` completes, and returns its output.
/// The future is polled in place on this core (it need not be `Send`).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = core::pin::pin!(future);
    let woken = Arc::new(FlagWaker {
        woken: AtomicBool::new(true),
        core: cpu::core_id(),
    });
    let waker = core::task::Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if woken.woken.swap(false, Ordering::AcqRel)
            && let Poll::Ready(value) = future.as_mut().poll(&mut cx)
        {
            return value;
        }
        // Sleep only if the outer future has not been woken meanwhile
        // (checked again with interrupts masked, see `Reactor::idle`).
        this().turn(&|| !woken.woken.load(Ordering::Acquire));
    }
}

/// The waker of a `block_on` future: a flag, plus a doorbell when set from
/// another core while the blocked core sleeps (a core that is running or
/// halt-polling sees the flag on its own).
struct FlagWaker {
    woken: AtomicBool,
    core: CoreId,
}

impl alloc::task::Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if self.core != cpu::core_id() {
            // Pairs with the fence in `Reactor::announce_sleep`.
            core::sync::atomic::fence(Ordering::SeqCst);
            if reactor(self.core).is_none_or(|r| r.asleep.load(Ordering::Relaxed)) {
                doorbell::ring(self.core);
            }
        }
    }
}

/// Ends the running batch of polls after the current one, so the rest of
/// the turn (rings, timers, readiness) runs before any task is polled
/// again: what a task that was preempted by an interrupt (a user thread)
/// calls before it yields, or it could be polled again at once.
pub fn end_batch() {
    this().end_batch.store(true, Ordering::Relaxed);
}

/// Puts core `core`'s reactor in poll mode (`true`) or back to sleeping when
/// idle (`false`, the default). In poll mode the core never sleeps: a
/// message or a timer is seen on the next loop turn without a doorbell IPI
/// or a timer interrupt, which trades a whole core's power and its
/// hyperthread sibling's cycles for the lowest wake-up latency (like a
/// DPDK poll-mode core). Returns false if there is no such core.
pub fn set_busy_poll(core: CoreId, on: bool) -> bool {
    match reactor(core) {
        Some(r) => {
            r.busy_poll.store(on, Ordering::Relaxed);
            if core != cpu::core_id() {
                // A sleeping core notices only when something wakes it.
                doorbell::ring(core);
            }
            true
        }
        None => false,
    }
}

/// Whether every core's reactor is running.
pub fn all_started() -> bool {
    STARTED.load(Ordering::Acquire) >= reactors().len()
}

/// Priority helper: `level` clamped to the 64 levels.
pub fn priority(level: u8) -> Priority {
    Priority::new(level.min(63)).unwrap_or(Priority::DEFAULT)
}
