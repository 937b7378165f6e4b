//! The per-core reactor: every core runs this loop (DESIGN.md, "data flow on
//! one core"):
//!
//! 1. drain the inbound intercore rings and act on each protocol message:
//!    spawn, wake, join, send (ports), timer, sync (barriers), register
//!    (readiness), cursor (topics), steal/migrate, ping, halt;
//! 2. advance the timer wheel to now and wake the expired sleepers;
//! 3. drain this core's readiness queue (`readiness`) and wake the
//!    registered tasks by token; then take the wakes and spawns queued on
//!    this core;
//! 4. poll the highest-priority ready tasks (a bounded batch of
//!    [`POLL_BATCH`]), then balance load and flush overflowed messages;
//! 5. nothing ready: program the local APIC for the wheel's next deadline
//!    (or not at all: tickless), mark the core asleep to the bus and to the
//!    readiness queue, re-check both, and halt until an interrupt — or, in
//!    poll mode ([`set_busy_poll`]), just go round again.
//!
//! No global lock is taken on this path: a core's task tree, wheel, bus
//! endpoint and readiness queue belong to it alone ([`CoreOnly`]); the only
//! shared state is the rings and a few counters other cores read.

mod balance;
mod bus;
pub mod channel;
mod core_only;
pub mod halt;
pub mod ping;
pub mod port;
pub mod process;
pub mod readiness;
pub mod sync;
pub mod task;
pub mod timer;
pub mod topic;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};

use percore_sched::{AnyDiscipline, Flavour, Priority, TaskId, TaskParams, TaskTree};
use percore_timer::{Config, Expired, TickShift, Wheel};

use crate::arch::x86_64::cpu_local::{self, CoreId};
use crate::arch::x86_64::{ipi, lapic};
use crate::time::{Clock, Instant};
use core_only::CoreOnly;
use task::TaskCell;

pub use sync::sync_all_cores;
pub use task::{JoinHandle, SpawnOptions, spawn, spawn_on, spawn_with, yield_now};
pub use timer::{Interval, Sleep, interval, sleep, sleep_on, sleep_until};

/// Tasks polled per loop iteration before the rings and timers are checked again.
const POLL_BATCH: usize = 32;
/// Messages taken from the rings per loop iteration.
const DRAIN_BATCH: usize = 256;
/// Timer wheel tick: 2^10 ns ≈ 1 µs.
const TIMER_TICK_SHIFT: u32 = 10;

/// Counters of one reactor, readable from any core.
#[derive(Default)]
pub struct ReactorStats {
    /// Tasks living on this core.
    pub tasks: AtomicUsize,
    /// Ready tasks waiting to run (load-balancing input).
    pub ready: AtomicUsize,
    pub polls: AtomicU64,
    pub spawned: AtomicU64,
    pub completed: AtomicU64,
    pub migrated_in: AtomicU64,
    pub migrated_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// Doorbell IPIs this core sent because the receiver was asleep.
    pub doorbells: AtomicU64,
    /// Timers in this core's wheel.
    pub timers: AtomicUsize,
    /// Times this core halted with nothing to do.
    pub halts: AtomicU64,
    /// `Join` messages received: a task on another core finished and its
    /// joiner waits here.
    pub joins_in: AtomicU64,
    /// Messages waiting in this core's inbound rings when it last drained
    /// them (including any that arrived during that drain), and the most
    /// ever seen.
    pub ring_depth: AtomicUsize,
    pub ring_depth_max: AtomicUsize,
    /// Messages this core could not place in a full ring yet (its
    /// overflow queues; flushed every turn).
    pub overflow_pending: AtomicU64,
    /// Messages dropped because their receiver had parked (after `halt`)
    /// or their port was closed; each one is also logged.
    pub undeliverable: AtomicU64,
    /// Readiness registrations in this core's queue.
    pub registrations: AtomicUsize,
    /// `Ping`s answered and `Pong`s received (latency probes).
    pub probes: AtomicU64,
    /// Topics published from this core.
    pub topics: AtomicUsize,
}

/// The executor state: the task tree and the futures' cells by slot.
struct Executor {
    tree: TaskTree<AnyDiscipline>,
    cells: Vec<Option<Arc<TaskCell>>>,
}

/// One core's reactor.
pub struct Reactor {
    core: CoreId,
    executor: CoreOnly<Executor>,
    wheel: CoreOnly<Wheel<Waker>>,
    bus: CoreOnly<bus::Bus>,
    /// The readiness queue of the event sources this core owns.
    readiness: CoreOnly<readiness::Queue>,
    /// Wakes of this core's tasks, from this core (tasks, timers) or
    /// received from others; taken in step 3.
    local: spin::Mutex<VecDeque<Arc<TaskCell>>>,
    /// Tasks spawned on this core by its own tasks, adopted in step 3.
    spawned: spin::Mutex<VecDeque<Arc<TaskCell>>>,
    /// An outstanding steal request (so an idle core asks once, not in a loop).
    steal_pending: AtomicBool,
    /// Set while this core is halted with nothing to do (a hint for others).
    halted: AtomicBool,
    /// Poll mode (see [`set_busy_poll`]): the idle step spins instead of halting.
    busy_poll: AtomicBool,
    /// Whether the idle step left the LAPIC timer armed (only this core
    /// touches it).
    timer_armed: AtomicBool,
    /// Set when a `Halt` message arrived: park after this batch of messages.
    halting: AtomicBool,
    /// Set once parked for good (see `halt.rs`).
    parked: AtomicBool,
    /// This core's ports, by number (see `port.rs`); senders on other cores
    /// read it to check that a port exists and reserve room in it.
    ports: spin::RwLock<alloc::collections::BTreeMap<u32, Arc<port::Port>>>,
    barriers: spin::Mutex<sync::Barriers>,
    /// Latency probes sent from this core, waiting for their `Pong`.
    probes: spin::Mutex<ping::Probes>,
    /// Topics published from this core, by number (see `topic`).
    topics: spin::Mutex<topic::Table>,
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

fn this() -> &'static Reactor {
    reactor(cpu_local::core_id()).expect("reactor used before reactor::init")
}

/// Builds one reactor per online core (on the bootstrap core, after SMP
/// start-up) and starts the loop on every application core. The bootstrap
/// core joins with [`run`] or [`block_on`].
pub fn init(flavour: Flavour) {
    let cores = cpu_local::online_cores() as usize;
    let endpoints = bus::create(cores);
    REACTORS.call_once(|| {
        endpoints
            .into_iter()
            .enumerate()
            .map(|(i, endpoint)| {
                let core = CoreId(i as u32);
                let wheel = Wheel::new(Config::new(
                    TickShift::new(TIMER_TICK_SHIFT).expect("valid tick"),
                ))
                .expect("valid timer wheel configuration");
                Reactor {
                    core,
                    executor: CoreOnly::new(
                        core,
                        Executor {
                            tree: TaskTree::new(AnyDiscipline::new(flavour)),
                            cells: Vec::new(),
                        },
                    ),
                    wheel: CoreOnly::new(core, wheel),
                    bus: CoreOnly::new(core, endpoint),
                    readiness: CoreOnly::new(core, readiness::Queue::new(core)),
                    local: spin::Mutex::new(VecDeque::new()),
                    spawned: spin::Mutex::new(VecDeque::new()),
                    steal_pending: AtomicBool::new(false),
                    halted: AtomicBool::new(false),
                    busy_poll: AtomicBool::new(false),
                    timer_armed: AtomicBool::new(false),
                    halting: AtomicBool::new(false),
                    parked: AtomicBool::new(false),
                    ports: spin::RwLock::new(alloc::collections::BTreeMap::new()),
                    barriers: spin::Mutex::new(sync::Barriers::default()),
                    probes: spin::Mutex::new(ping::Probes::default()),
                    topics: spin::Mutex::new(topic::Table::new()),
                    stats: ReactorStats::default(),
                }
            })
            .collect::<Vec<_>>()
            .into_boxed_slice()
    });
    readiness::init();
    STARTED.fetch_add(1, Ordering::AcqRel);
    for core in 1..cores {
        // The call never returns: the application core runs its reactor from now on.
        if let Err(error) = ipi::post(CoreId(core as u32), |_| run_forever(), 0, 1000) {
            log::error!("reactor: core {core} did not take its loop: {error:?}");
        }
    }
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
        core: cpu_local::core_id(),
    });
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if woken.woken.swap(false, Ordering::AcqRel)
            && let Poll::Ready(value) = future.as_mut().poll(&mut cx)
        {
            return value;
        }
        // Halt only if the outer future has not been woken meanwhile
        // (checked again with interrupts off, see `Reactor::idle`).
        this().turn(&|| !woken.woken.load(Ordering::Acquire));
    }
}

/// The waker of a `block_on` future: a flag, plus an IPI when set from
/// another core (the blocked core may be halted).
struct FlagWaker {
    woken: AtomicBool,
    core: CoreId,
}

impl alloc::task::Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if self.core != cpu_local::core_id() {
            lapic::send_ipi(self.core, lapic::IPI_VECTOR);
        }
    }
}

/// Runs `f` on this core's timer wheel (None before the reactor exists).
fn with_wheel<R>(f: impl FnOnce(&mut Wheel<Waker>) -> R) -> Option<R> {
    let reactor = reactor(cpu_local::core_id())?;
    let mut wheel = reactor.wheel.borrow_mut();
    let result = f(&mut wheel);
    reactor.stats.timers.store(wheel.len(), Ordering::Relaxed);
    Some(result)
}

/// Sends a wake to the task's home core (or queues it locally).
fn deliver_wake(cell: Arc<TaskCell>) {
    let home = cell.home();
    let me = cpu_local::core_id();
    match reactor(me) {
        Some(here) if home == me => here.local.lock().push_back(cell),
        Some(here) => here.send(home, bus::Letter::Wake(cell)),
        // No reactor on this core: nothing can run the task here.
        None => log::error!("wake from core {me} without a reactor: dropped"),
    }
}

/// Hands a new task to its core.
fn deliver_spawn(cell: Arc<TaskCell>) {
    let home = cell.home();
    let me = cpu_local::core_id();
    let here = this();
    here.stats.spawned.fetch_add(1, Ordering::Relaxed);
    if home == me {
        here.spawned.lock().push_back(cell);
    } else {
        here.send(home, bus::Letter::Spawn(cell));
    }
}

/// Hands a finished task's joiner its wake-up: directly when the joiner
/// waits on this core, else as a `Join` message to the joiner's core.
fn deliver_join(joiner_core: CoreId, waker: Waker) {
    match reactor(cpu_local::core_id()) {
        Some(here) if joiner_core != here.core => here.send(
            joiner_core,
            bus::Letter::Join(alloc::boxed::Box::new(waker)),
        ),
        _ => waker.wake(),
    }
}

impl Reactor {
    fn send(&self, to: CoreId, message: bus::Letter) {
        if halt::parked(to) {
            // Nothing will ever drain that core's rings again: say so
            // rather than fill its ring and our overflow queue.
            self.stats.undeliverable.fetch_add(1, Ordering::Relaxed);
            log::warn!("reactor: core {to} has halted; a message to it is dropped");
            return;
        }
        let rang = self.bus.borrow_mut().send(to, message);
        self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
        if rang {
            self.stats.doorbells.fetch_add(1, Ordering::Relaxed);
            lapic::send_ipi(to, lapic::IPI_VECTOR);
        }
    }

    /// One turn of the loop; halts at the end if nothing is ready and
    /// `may_halt()` still says so with interrupts disabled.
    fn turn(&self, may_halt: &dyn Fn() -> bool) {
        self.drain_bus();
        if self.halting.load(Ordering::Acquire) {
            self.park();
        }
        self.fire_timers();
        readiness::dispatch(self);
        self.take_local();
        let ran = self.run_batch();
        balance::when_busy(self);
        let rang = {
            let mut bus = self.bus.borrow_mut();
            if bus.stats().overflow_pending > 0 {
                // Overflow towards a halted core can never drain: report it
                // and drop it, or this core could never halt again.
                for r in reactors().iter().filter(|r| r.is_parked()) {
                    let dropped = bus.discard_overflow(r.core);
                    if dropped > 0 {
                        self.stats
                            .undeliverable
                            .fetch_add(dropped as u64, Ordering::Relaxed);
                        log::warn!(
                            "reactor: {dropped} queued messages to halted core {} dropped",
                            r.core
                        );
                    }
                }
            }
            let rang = bus.flush();
            self.stats
                .overflow_pending
                .store(bus.stats().overflow_pending, Ordering::Relaxed);
            rang
        };
        for to in rang {
            self.stats.doorbells.fetch_add(1, Ordering::Relaxed);
            lapic::send_ipi(to, lapic::IPI_VECTOR);
        }
        ipi::serve_pending_call();
        if ran == 0 {
            balance::when_idle(self);
            self.idle(may_halt);
        }
    }

    fn drain_bus(&self) {
        let mut incoming = Vec::new();
        let count = {
            let mut bus = self.bus.borrow_mut();
            let count = bus.drain(DRAIN_BATCH, |from, message| incoming.push((from, message)));
            // The depth this turn found: a drain under budget emptied every
            // ring (it stops after a lap that finds nothing), so it is the
            // count; only a drain that spent its budget needs to look at
            // what is left (a second pass over the cursors, only then).
            let depth = if count < DRAIN_BATCH {
                count
            } else {
                count + bus.inbound_depth()
            };
            self.stats.ring_depth.store(depth, Ordering::Relaxed);
            self.stats
                .ring_depth_max
                .fetch_max(depth, Ordering::Relaxed);
            count
        };
        self.stats
            .messages_in
            .fetch_add(count as u64, Ordering::Relaxed);
        for (from, message) in incoming {
            self.handle(from, message);
        }
    }

    fn handle(&self, from: CoreId, message: bus::Letter) {
        match message {
            bus::Letter::Spawn(cell) => self.adopt(cell),
            bus::Letter::Migrate(cell) => {
                self.stats.migrated_in.fetch_add(1, Ordering::Relaxed);
                self.steal_pending.store(false, Ordering::Release);
                self.adopt(cell);
            }
            // `take_local` applies it, or forwards it if the task moved on.
            bus::Letter::Wake(cell) => self.local.lock().push_back(cell),
            bus::Letter::StealRequest { priority } => {
                balance::on_steal_request(self, from, priority)
            }
            bus::Letter::StealDenied => self.steal_pending.store(false, Ordering::Release),
            bus::Letter::Timer { waker, deadline_ns } => {
                let inserted = with_wheel(|wheel| wheel.insert(deadline_ns, *waker));
                if let Some(Err(error)) = inserted {
                    // The wheel is full: wake now rather than never (the
                    // sleeper re-checks its deadline and asks again).
                    let percore_timer::InsertError::Full(waker) = error;
                    waker.wake();
                }
            }
            bus::Letter::Sync {
                barrier,
                generation,
            } => sync::on_message(self, from, barrier, generation),
            bus::Letter::Join(waker) => {
                self.stats.joins_in.fetch_add(1, Ordering::Relaxed);
                waker.wake();
            }
            bus::Letter::Send { port, value } => port::on_message(self, from, port, value),
            bus::Letter::Halt => self.halting.store(true, Ordering::Release),
            bus::Letter::Register {
                source,
                token,
                interest,
            } => readiness::on_register(self, source, token, interest),
            bus::Letter::Cursor {
                publisher,
                topic,
                reply,
            } => topic::on_cursor(self, publisher, topic, reply),
            bus::Letter::Other(
                message @ (percore_proto::Message::Ping { .. }
                | percore_proto::Message::Pong { .. }),
            ) => ping::on_message(self, from, message),
            bus::Letter::Other(message) => {
                log::warn!("reactor: unexpected message from core {from}: {message:?}")
            }
        }
    }

    /// Puts a task that arrived from elsewhere (or was just spawned) into the tree.
    fn adopt(&self, cell: Arc<TaskCell>) {
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

    fn fire_timers(&self) {
        let now = Clock::now().0;
        let mut due = Vec::new();
        {
            let mut wheel = self.wheel.borrow_mut();
            if wheel.next_deadline().is_some_and(|d| d <= now) {
                wheel.advance(now, |expired| {
                    if let Expired::Oneshot { payload, .. } = expired {
                        due.push(payload);
                    }
                });
            }
            self.stats.timers.store(wheel.len(), Ordering::Relaxed);
        }
        // Wake outside the wheel borrow: a wake may re-enter the reactor.
        for waker in due {
            waker.wake();
        }
    }

    /// Adopts locally spawned tasks and applies queued wakes.
    fn take_local(&self) {
        let spawned: VecDeque<Arc<TaskCell>> = core::mem::take(&mut *self.spawned.lock());
        for cell in spawned {
            self.adopt(cell);
        }
        let queued: VecDeque<Arc<TaskCell>> = core::mem::take(&mut *self.local.lock());
        for cell in queued {
            let raw = cell.local_id.load(Ordering::Acquire);
            if raw == u64::MAX || cell.home() != self.core {
                // In flight to this core (spawn or migration): it arrives
                // ready. Or it moved on meanwhile: follow it.
                if cell.home() != self.core {
                    self.send(cell.home(), bus::Letter::Wake(cell));
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
    fn run_batch(&self) -> usize {
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

    /// Nothing to run: arm the APIC for the next timer (if any) and halt
    /// until an interrupt, unless work arrived in the meantime.
    fn idle(&self, may_halt: &dyn Fn() -> bool) {
        if self.busy_poll.load(Ordering::Relaxed) {
            // Poll mode: never halt, so nothing needs a doorbell IPI or a
            // timer interrupt to wake this core; the next turn looks again.
            // A deadline armed before poll mode began is withdrawn once.
            if self.timer_armed.swap(false, Ordering::Relaxed) {
                lapic::cancel_timer();
            }
            core::hint::spin_loop();
            return;
        }
        x86_64::instructions::interrupts::disable();
        let next = self.wheel.borrow_mut().next_deadline();
        match next {
            Some(deadline) => lapic::arm_timer(Clock::tsc_at(Instant(deadline))),
            None => lapic::cancel_timer(),
        }
        self.timer_armed.store(next.is_some(), Ordering::Relaxed);
        let work_waiting = !self.local.lock().is_empty()
            || !self.spawned.lock().is_empty()
            || self.executor.borrow_mut().tree.ready_len() > 0;
        if !work_waiting && may_halt() && self.bus.borrow_mut().prepare_sleep() {
            // Readiness signalled from another core from here on sends an IPI.
            let readiness = self.readiness.borrow_mut();
            if readiness.prepare_wait() {
                self.stats.halts.fetch_add(1, Ordering::Relaxed);
                self.halted.store(true, Ordering::Release);
                // `sti; hlt`: an interrupt pending since `cli` ends the halt at once.
                x86_64::instructions::interrupts::enable_and_hlt();
                x86_64::instructions::interrupts::disable();
                self.halted.store(false, Ordering::Release);
            }
            readiness.end_wait();
            drop(readiness);
            self.bus.borrow_mut().woke();
        }
        x86_64::instructions::interrupts::enable();
    }

    /// Publishes the ready count for other cores (load balancing, `cores`).
    fn publish_ready(&self, exec: &Executor) {
        self.stats
            .ready
            .store(exec.tree.ready_len(), Ordering::Relaxed);
    }

    /// This core.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// The bus endpoint's counters (only on this reactor's own core).
    pub fn bus_stats(&self) -> percore_proto::Stats {
        self.bus.borrow_mut().stats()
    }
}

/// Puts core `core`'s reactor in poll mode (`true`) or back to halting when
/// idle (`false`, the default). In poll mode the core never halts: a
/// message or a timer is seen on the next loop turn without a doorbell IPI
/// or a timer interrupt, which trades a whole core's power and its
/// hyperthread sibling's cycles for the lowest wake-up latency (like a
/// DPDK poll-mode core). Returns false if there is no such core.
pub fn set_busy_poll(core: CoreId, on: bool) -> bool {
    match reactor(core) {
        Some(r) => {
            r.busy_poll.store(on, Ordering::Relaxed);
            if core != cpu_local::core_id() {
                // A halted core notices only when something wakes it.
                lapic::send_ipi(core, lapic::IPI_VECTOR);
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
