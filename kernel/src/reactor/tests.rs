//! Host tests of the reactor's dispatch and idle decisions, against the
//! simulated machine (`arch::fake`): one thread plays each core in turn,
//! the clock moves only when a test moves it, and sleeps, doorbells and
//! timer programming are recorded.
//!
//! The reactors are one global table, built once for 8 simulated cores;
//! the tests take a lock so that they run one at a time, and each uses
//! cores of its own.

extern crate std;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::sync::{Mutex, MutexGuard};

use percore_proto::Message;
use percore_sched::Flavour;

use super::service::{self, Handlers, Service};
use super::{SpawnOptions, build, reactor, set_busy_poll, sleep, spawn_with};
use crate::arch::CoreId;
use crate::arch::fake;
use crate::time::{Clock, Instant};

static LOCK: Mutex<()> = Mutex::new(());

/// Takes the test lock and makes sure the 8 simulated cores have reactors.
fn machine() -> MutexGuard<'static, ()> {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    fake::set_online(8);
    build(&super::SchedConfig::uniform(Flavour::RoundRobin));
    guard
}

/// One turn of core `core`'s loop, played by this thread.
fn turn(core: u16) {
    fake::set_core(CoreId(core));
    reactor(CoreId(core)).expect("reactor").turn(&|| true);
}

fn pinned() -> SpawnOptions {
    SpawnOptions::new(super::priority(32)).pinned()
}

#[test]
fn an_idle_core_sleeps_without_a_timer() {
    let _machine = machine();
    let core = CoreId(1);
    let before = fake::halts(core);
    turn(1);
    assert_eq!(fake::halts(core), before + 1, "an idle core sleeps");
    assert_eq!(
        fake::armed(core),
        None,
        "tickless: no timer without a deadline"
    );
}

#[test]
fn a_sleeping_task_arms_the_next_deadline_and_runs_when_it_passes() {
    let _machine = machine();
    let core = CoreId(2);
    fake::set_core(core);
    let deadline = Instant(Clock::now().0 + 1_000_000);
    let task = spawn_with(core, pinned(), async move {
        super::sleep_until(deadline).await;
        Clock::now()
    });
    turn(2); // adopts and polls the task: it arms its timer and waits
    // Each idle turn arms the wheel's next expiry — at most one tick
    // (2^10 ns) after the deadline, which the wheel rounds up to a tick; a
    // coarser level's expiry comes earlier and only cascades the timer
    // down — and sleeps; the test plays the timer interrupt by moving the
    // clock to what was armed.
    let mut wakeups = 0;
    while !task.is_finished() {
        let halts = fake::halts(core);
        turn(2);
        assert_eq!(
            fake::halts(core),
            halts + 1,
            "nothing ready: the core sleeps"
        );
        let armed = fake::armed(core).expect("a deadline is armed");
        let tick = 1 << super::TIMER_TICK_SHIFT;
        assert!(
            armed < Clock::cycles_at(deadline) + tick,
            "armed at {armed}, more than a tick after {deadline:?}"
        );
        fake::advance(armed.saturating_sub(crate::arch::clock::cycles()));
        turn(2);
        wakeups += 1;
        assert!(wakeups <= 4, "one wake-up per wheel level at most");
    }
    fake::set_core(core);
    let finished = super::block_on(task);
    assert!(finished >= deadline, "never before the deadline");
    turn(2);
    assert_eq!(fake::armed(core), None, "no timer left to arm");
}

#[test]
fn a_doorbell_rings_only_for_a_sleeping_receiver() {
    let _machine = machine();
    let (sender, receiver) = (CoreId(0), CoreId(3));
    fake::take_doorbells();
    // The receiver is awake (it never slept): a spawn needs no doorbell.
    fake::set_core(sender);
    let first = spawn_with(receiver, pinned(), async { 1u8 });
    assert!(
        fake::take_doorbells().is_empty(),
        "an awake core is not rung"
    );
    turn(3);
    assert!(first.is_finished());
    // Now the receiver sleeps; a spawn sent meanwhile must ring it.
    fake::set_core(receiver);
    fake::on_next_halt(move || {
        fake::set_core(sender);
        core::mem::forget(spawn_with(receiver, pinned(), async { 2u8 }));
    });
    turn(3);
    let rung = fake::take_doorbells();
    assert_eq!(
        rung,
        [(sender, receiver)],
        "exactly one doorbell, to the sleeper"
    );
    let ran = reactor(receiver)
        .unwrap()
        .stats
        .completed
        .load(Ordering::Relaxed);
    turn(3);
    assert_eq!(
        reactor(receiver)
            .unwrap()
            .stats
            .completed
            .load(Ordering::Relaxed),
        ran + 1,
        "the spawned task ran on the next turn"
    );
}

#[test]
fn poll_mode_never_sleeps_and_withdraws_its_timer() {
    let _machine = machine();
    let core = CoreId(4);
    fake::set_core(core);
    // A timer armed before poll mode begins.
    let _sleeper = spawn_with(core, pinned(), sleep(Duration::from_secs(1)));
    turn(4);
    turn(4);
    assert!(fake::armed(core).is_some());
    fake::set_core(CoreId(0));
    fake::take_doorbells();
    assert!(set_busy_poll(core, true));
    assert_eq!(
        fake::take_doorbells(),
        [(CoreId(0), core)],
        "switching poll mode kicks the core"
    );
    let halts = fake::halts(core);
    for _ in 0..3 {
        turn(4);
    }
    assert_eq!(fake::halts(core), halts, "a polling core never sleeps");
    assert_eq!(fake::armed(core), None, "its timer is withdrawn");
    fake::set_core(CoreId(0));
    assert!(set_busy_poll(core, false));
    assert!(!set_busy_poll(CoreId(99), true), "no such core");
    turn(4);
    assert_eq!(fake::halts(core), halts + 1, "back to sleeping when idle");
}

static BARRIER_MESSAGES: Mutex<Vec<(CoreId, CoreId, Message)>> = Mutex::new(Vec::new());
static STOPPED_SEEN: AtomicU64 = AtomicU64::new(0);

fn record(from: CoreId, message: Message) {
    BARRIER_MESSAGES
        .lock()
        .unwrap()
        .push((crate::arch::cpu::core_id(), from, message));
}

#[test]
fn service_messages_reach_their_handler_and_unclaimed_ones_are_dropped() {
    let _machine = machine();
    service::register(
        Service::Barrier,
        Handlers {
            on_message: record,
            on_core_stopped: |_| {
                STOPPED_SEEN.fetch_add(1, Ordering::Relaxed);
            },
        },
    );
    let sync = Message::Sync {
        barrier: 9,
        generation: 2,
    };
    fake::set_core(CoreId(5));
    super::send(CoreId(6), sync);
    // No probe service is registered here: its message is logged and dropped.
    super::send(CoreId(6), Message::Ping { seq: 1, sent_at: 0 });
    let received = reactor(CoreId(6))
        .unwrap()
        .stats
        .messages_in
        .load(Ordering::Relaxed);
    turn(6);
    assert_eq!(
        reactor(CoreId(6))
            .unwrap()
            .stats
            .messages_in
            .load(Ordering::Relaxed),
        received + 2
    );
    assert_eq!(
        BARRIER_MESSAGES.lock().unwrap().as_slice(),
        [(CoreId(6), CoreId(5), sync)],
        "the handler ran on the receiving core, told the sender"
    );
}

#[test]
fn a_stolen_task_finishes_on_the_thief() {
    let _machine = machine();
    let (victim, thief) = (CoreId(7), CoreId(5));
    fake::set_core(victim);
    let (sender, receiver) = super::oneshot::oneshot::<u32>();
    let task = spawn_with(victim, SpawnOptions::new(super::priority(40)), async move {
        (receiver.await.unwrap_or(0), crate::arch::cpu::core_id())
    });
    turn(7); // the task runs and waits for its value
    sender.send(42); // a local wake: the task is queued on the victim...
    reactor(victim).unwrap().take_local(); // ...and ready, not yet run
    let migrated = reactor(thief)
        .unwrap()
        .stats
        .migrated_in
        .load(Ordering::Relaxed);
    super::balance::on_steal_request(reactor(victim).unwrap(), thief, 0);
    assert!(!task.is_finished());
    turn(5); // the thief adopts it (with its priority) and runs it
    assert!(task.is_finished(), "the stolen task ran on the thief");
    assert_eq!(
        reactor(thief)
            .unwrap()
            .stats
            .migrated_in
            .load(Ordering::Relaxed),
        migrated + 1
    );
    fake::set_core(thief);
    let (value, ran_on) = super::block_on(task);
    assert_eq!((value, ran_on), (42, thief));
}

/// Plays core `core` until `done()`, moving the clock to each armed timer.
fn drive(core: u16, done: impl Fn() -> bool) {
    for _ in 0..100 {
        turn(core);
        if done() {
            return;
        }
        if let Some(armed) = fake::armed(CoreId(core)) {
            fake::advance(armed.saturating_sub(crate::arch::clock::cycles()));
        }
    }
    panic!("core {core} did not finish its work in 100 turns");
}

#[test]
fn a_migrated_task_keeps_its_priority_weight_and_deadline() {
    let _machine = machine();
    let (victim, thief) = (CoreId(7), CoreId(6));
    fake::set_core(victim);
    let options = SpawnOptions::new(super::priority(45))
        .weight(3)
        .deadline(Duration::from_millis(50));
    let (sender, receiver) = super::oneshot::oneshot::<()>();
    let task = spawn_with(victim, options, async move {
        let before = super::current_task();
        let _ = receiver.await;
        (before, super::current_task())
    });
    turn(7); // runs until it waits
    sender.send(());
    reactor(victim).unwrap().take_local(); // ready, not yet run
    super::balance::on_steal_request(reactor(victim).unwrap(), thief, 0);
    turn(6);
    fake::set_core(thief);
    let (before, after) = super::block_on(task);
    let (before, after) = (before.expect("in a task"), after.expect("in a task"));
    assert_eq!((before.core, after.core), (victim, thief));
    assert_eq!(after.options, options);
    assert_eq!(
        after.tree_weight,
        3 * percore_sched::Priority::DEFAULT_WEIGHT,
        "the thief's tree weighs it as the victim's did"
    );
    assert_eq!(after.tree_deadline, before.tree_deadline);
    assert_ne!(after.tree_deadline, percore_sched::NO_DEADLINE);
}

#[test]
fn fair_share_charges_each_poll_to_its_task() {
    let _machine = machine();
    let core = CoreId(1);
    fake::set_core(core);
    let r = reactor(core).unwrap();
    assert_eq!(r.switch_discipline(Flavour::Fair), Flavour::RoundRobin);
    let polls = alloc::sync::Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let stop = alloc::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
    let handles: Vec<_> = [1u32, 3]
        .into_iter()
        .enumerate()
        .map(|(i, weight)| {
            let (polls, stop) = (polls.clone(), stop.clone());
            spawn_with(core, pinned().weight(weight), async move {
                while !stop.load(Ordering::Relaxed) {
                    polls[i].fetch_add(1, Ordering::Relaxed);
                    fake::advance(100_000); // each poll runs 100 µs
                    super::yield_now().await;
                }
            })
        })
        .collect();
    while polls[0].load(Ordering::Relaxed) + polls[1].load(Ordering::Relaxed) < 400 {
        turn(1);
    }
    stop.store(true, Ordering::Relaxed);
    drive(1, || handles.iter().all(|h| h.is_finished()));
    let (light, heavy) = (
        polls[0].load(Ordering::Relaxed) as f64,
        polls[1].load(Ordering::Relaxed) as f64,
    );
    assert!(
        (heavy / light - 3.0).abs() < 0.3,
        "weights 1:3 ran {light}:{heavy} polls"
    );
    assert_eq!(r.switch_discipline(Flavour::RoundRobin), Flavour::Fair);
}

#[test]
fn a_late_periodic_job_counts_one_miss_and_the_next_release_keeps_time() {
    let _machine = machine();
    let core = CoreId(3);
    fake::set_core(core);
    let misses = || {
        reactor(core)
            .unwrap()
            .stats
            .deadline_misses
            .load(Ordering::Relaxed)
    };
    let before = misses();
    let options = pinned().period(Duration::from_millis(1));
    let task = spawn_with(core, options, async {
        let mut met = Vec::new();
        // The second job runs 1.5 ms of its 1 ms period: late. The third is
        // released at once (its release has passed) and is on time.
        for work_ns in [200_000u64, 1_500_000, 200_000] {
            fake::advance(work_ns);
            met.push(super::next_period().await);
        }
        (met, super::current_task().map(|t| t.misses))
    });
    drive(3, || task.is_finished());
    fake::set_core(core);
    let (met, task_misses) = super::block_on(task);
    assert_eq!(met, [Ok(true), Ok(false), Ok(true)]);
    assert_eq!(task_misses, Some(1));
    assert_eq!(misses(), before + 1);
    assert_eq!(
        super::block_on(super::next_period()),
        Err(super::PeriodError::NotInTask)
    );
}

/// The in-QEMU EDF test's task set (utilisation 0.6, 250 µs slices) on the
/// simulated clock, where no host steals time: every job meets its deadline.
#[test]
fn edf_meets_every_deadline_of_a_feasible_set_on_the_simulated_clock() {
    let _machine = machine();
    let core = CoreId(2);
    fake::set_core(core);
    let r = reactor(core).unwrap();
    r.switch_discipline(Flavour::Deadline);
    let before = r.stats.deadline_misses.load(Ordering::Relaxed);
    let set = [(20u64, 4_000u64, 20u32), (40, 8_000, 10), (80, 16_000, 5)];
    let handles: Vec<_> = set
        .iter()
        .map(|&(period, work, jobs)| {
            spawn_with(
                core,
                pinned().period(Duration::from_millis(period)),
                async move {
                    let mut met = 0;
                    for _ in 0..jobs {
                        let mut left = work;
                        while left > 0 {
                            let slice = left.min(250);
                            fake::advance(slice * 1000);
                            left -= slice;
                            if left > 0 {
                                super::yield_now().await;
                            }
                        }
                        if super::next_period().await == Ok(true) {
                            met += 1;
                        }
                    }
                    met
                },
            )
        })
        .collect();
    for _ in 0..100_000 {
        turn(2);
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
        if r.stats.ready.load(Ordering::Relaxed) == 0
            && let Some(armed) = fake::armed(core)
        {
            fake::advance(armed.saturating_sub(crate::arch::clock::cycles()));
        }
    }
    let met: Vec<u32> = handles.into_iter().map(super::block_on).collect();
    let misses = r.stats.deadline_misses.load(Ordering::Relaxed) - before;
    r.switch_discipline(Flavour::RoundRobin);
    assert_eq!((met, misses), (alloc::vec![20, 10, 5], 0));
}
