//! Scheduling tests: each core's discipline in the running kernel (EDF
//! deadlines, fair shares, round robin within a priority), load balancing
//! by priority across cores, and migration keeping a task's parameters.
//!
//! Each test switches one core (the last) to the discipline it checks and
//! back afterwards; the CPU-bound tasks are pinned there unless the test is
//! about moving them. Runs are short (a few seconds per machine in all).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::reactor::{
    self, JoinHandle, SpawnOptions, TaskInfo, block_on, next_period, priority, sleep, spawn_with,
    yield_now,
};
use percore_kernel::time::cycles_to_ns;
use percore_sched::{Flavour, Priority};

use crate::harness::{Kind, Test};
use crate::reactor::{busy_us, cores, start_reactors};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "sched_edf_meets_every_deadline_of_a_feasible_set",
        Kind::Normal,
        edf_feasible,
    ),
    Test::new(
        "sched_edf_counts_misses_when_overloaded",
        Kind::Normal,
        edf_overloaded,
    ),
    Test::new(
        "sched_fair_shares_follow_weights",
        Kind::Normal,
        fair_shares,
    ),
    Test::new(
        "sched_round_robin_within_a_priority",
        Kind::Normal,
        round_robin_within_a_priority,
    ),
    Test::new(
        "sched_urgent_work_moves_to_a_core_running_lower_work",
        Kind::Normal,
        urgent_work_moves,
    ),
    Test::new(
        "sched_migrated_task_keeps_its_parameters",
        Kind::Normal,
        migrated_task_keeps_parameters,
    ),
    Test::new(
        "sched_shell_switches_and_lists",
        Kind::Normal,
        shell_switches_and_lists,
    ),
];

/// The core the tests schedule on.
fn test_core() -> CoreId {
    CoreId(cores() - 1)
}

/// Runs `body` with `core` switched to `flavour`, then switches it back.
fn with_flavour<T>(
    core: CoreId,
    flavour: Flavour,
    body: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    start_reactors();
    let old = block_on(reactor::set_flavour(core, flavour)).map_err(|e| format!("{e:?}"))?;
    let result = body();
    block_on(reactor::set_flavour(core, old)).map_err(|e| format!("{e:?}"))?;
    result
}

fn misses_on(core: CoreId) -> u64 {
    crate::reactor::of_core(core, |s| s.deadline_misses.load(Ordering::SeqCst))
}

/// The time (ns) spinning tasks saw the clock jump by more than
/// [`STALL_NS`] between two reads: time the host did not run the vCPU
/// (under TCG the guest loses it), summed.
static HOST_STALL_NS: AtomicU64 = AtomicU64::new(0);
/// A clock jump at least this long between two reads is a host stall (two
/// reads in the spin loop are well under a microsecond apart, an interrupt
/// handler tens of microseconds; a host that gives the vCPU half its time
/// takes it in slices well under a millisecond, which a 1 ms threshold
/// missed: a run with 142 misses, 68 ms late, saw 1 ms of stall).
const STALL_NS: u64 = 200_000;

/// Spins for `us` µs of clock time, adding host stalls to [`HOST_STALL_NS`]
/// (`periodic` adds the other kind: a job released long before it starts).
fn spin_us(us: u64) {
    let end = clock::cycles() + clock::hz() / 1_000_000 * us;
    let mut last = clock::cycles();
    while last < end {
        let now = clock::cycles();
        let gap = percore_kernel::time::cycles_to_ns(now - last);
        if gap >= STALL_NS {
            HOST_STALL_NS.fetch_add(gap, Ordering::Relaxed);
        }
        last = now;
    }
}

/// The most a periodic job of these tests finished after its deadline (ns).
static LATENESS_NS: AtomicU64 = AtomicU64::new(0);

/// A periodic task on `core`: `jobs` jobs of `work_us` each, run in 250 µs
/// slices (so that an earlier deadline waits at most one slice); returns
/// how many jobs met their deadline.
fn periodic(core: CoreId, period_ms: u64, work_us: u64, jobs: u32) -> JoinHandle<u32> {
    let options = SpawnOptions::new(priority(32))
        .period(Duration::from_millis(period_ms))
        .pinned();
    spawn_with(core, options, async move {
        let mut met = 0;
        let period_ns = period_ms * 1_000_000;
        for _ in 0..jobs {
            // A job that starts long after its release on a core with
            // nothing else this late to run waited for the host: a halted
            // vCPU that the host wakes late for the release timer (the
            // spin loops below cannot see that kind of stall).
            let deadline = reactor::current_task().map_or(0, |t| t.tree_deadline);
            let released = deadline.saturating_sub(period_ns);
            let waited = percore_kernel::time::Clock::now()
                .0
                .saturating_sub(released);
            if deadline != 0 && waited >= STALL_NS + 8_000_000 {
                HOST_STALL_NS.fetch_add(waited - 8_000_000, Ordering::Relaxed);
            }
            let mut left = work_us;
            while left > 0 {
                let slice = left.min(250);
                spin_us(slice);
                left -= slice;
                if left > 0 {
                    yield_now().await;
                }
            }
            let deadline = reactor::current_task().map_or(0, |t| t.tree_deadline);
            let late = percore_kernel::time::Clock::now()
                .0
                .saturating_sub(deadline);
            if next_period().await == Ok(true) {
                met += 1;
            } else {
                LATENESS_NS.fetch_max(late, Ordering::Relaxed);
            }
        }
        met
    })
}

/// Three periodic tasks (20/40/80 ms periods, 2/4/8 ms of work each:
/// utilisation 0.3) on an EDF core for 200 periods of the shortest (4 s):
/// every job meets its deadline, and the core counts no miss.
///
/// Under TCG the guest loses whatever time the host does not run its vCPU
/// thread; on a busy host a stall of tens of milliseconds makes jobs late
/// that no scheduler could save. The spinning jobs watch the clock for such
/// gaps ([`HOST_STALL_NS`]) and each late job records by how much it missed
/// ([`LATENESS_NS`]): misses pass only when no job was later than the time
/// the host took from the run (and the run says so); any other miss fails.
/// On a quiet host (CI) there are no stalls, so no miss passes.
pub fn edf_feasible(_: &Kernel) -> Result<(), String> {
    HOST_STALL_NS.store(0, Ordering::SeqCst);
    LATENESS_NS.store(0, Ordering::SeqCst);
    let outcome = edf_feasible_once();
    let (stall, late) = (
        HOST_STALL_NS.load(Ordering::SeqCst),
        LATENESS_NS.load(Ordering::SeqCst),
    );
    match outcome {
        Err(why) if late <= stall => {
            percore_kernel::println!(
                "edf: {why}, none later than {} us: within the {} us the host stalled the run",
                late / 1_000,
                stall / 1_000
            );
            Ok(())
        }
        Err(why) => Err(format!(
            "{why}; a job was {} us late, the host stalled the run {} us",
            late / 1_000,
            stall / 1_000
        )),
        Ok(()) => Ok(()),
    }
}

fn edf_feasible_once() -> Result<(), String> {
    let core = test_core();
    with_flavour(core, Flavour::Deadline, || {
        let before = misses_on(core);
        let set = [(20, 2_000, 200), (40, 4_000, 100), (80, 8_000, 50)];
        let handles: Vec<_> = set
            .iter()
            .map(|&(period, work, jobs)| periodic(core, period, work, jobs))
            .collect();
        let met: Vec<u32> = block_on(async {
            let mut met = Vec::new();
            for h in handles {
                met.push(h.await);
            }
            met
        });
        let missed = misses_on(core) - before;
        percore_kernel::println!(
            "edf: U=0.3 on core {core}: jobs met {met:?} of [200, 100, 50], core misses {missed}"
        );
        if met != [200, 100, 50] || missed != 0 {
            return Err(format!("met {met:?} of [200, 100, 50]; {missed} misses"));
        }
        Ok(())
    })
}

/// Two periodic tasks of 10 ms with 6 ms of work each (utilisation 1.2):
/// jobs miss, and the misses show on the tasks and on the core.
pub fn edf_overloaded(_: &Kernel) -> Result<(), String> {
    let core = test_core();
    with_flavour(core, Flavour::Deadline, || {
        let before = misses_on(core);
        let handles = [periodic(core, 10, 6_000, 20), periodic(core, 10, 6_000, 20)];
        let met: u32 = block_on(async {
            let mut met = 0;
            for h in handles {
                met += h.await;
            }
            met
        });
        let missed = misses_on(core) - before;
        percore_kernel::println!(
            "edf: U=1.2 on core {core}: {met} of 40 jobs met, {missed} missed"
        );
        if missed == 0 || u64::from(met) + missed != 40 {
            return Err(format!("{met} met and {missed} missed of 40 jobs"));
        }
        Ok(())
    })
}

/// What a [`hog`] got: clock cycles spent in its slices, and the longest
/// slice (longer than asked when the host stopped the vCPU inside it).
#[derive(Clone, Copy, Debug, Default)]
struct Hogged {
    spent: u64,
    longest: u64,
}

/// A CPU-bound task: slices of `slice_us` until `stop`.
fn hog(
    core: CoreId,
    options: SpawnOptions,
    slice_us: u64,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Hogged> {
    spawn_with(core, options, async move {
        let mut got = Hogged::default();
        while !stop.load(Ordering::Relaxed) {
            let start = clock::cycles();
            busy_us(slice_us);
            let slice = clock::cycles() - start;
            got.spent += slice;
            got.longest = got.longest.max(slice);
            yield_now().await;
        }
        got
    })
}

/// Two CPU-bound tasks of weights 1 and 3 on a fair core share its time
/// 1:3 over a 1 s window: within 10%, or, when the host stopped the vCPU
/// inside slices, within what fair sharing promises — the light task's
/// share off by at most two of the longest slices (a slice the host
/// interrupts is charged its whole length, and the window may close before
/// the discipline has paid it back).
pub fn fair_shares(_: &Kernel) -> Result<(), String> {
    let core = test_core();
    with_flavour(core, Flavour::Fair, || {
        let stop = Arc::new(AtomicBool::new(false));
        let base = SpawnOptions::new(priority(32)).pinned();
        let light = hog(core, base.weight(1), 200, stop.clone());
        let heavy = hog(core, base.weight(3), 200, stop.clone());
        block_on(sleep(Duration::from_secs(1)));
        stop.store(true, Ordering::Relaxed);
        let (light, heavy) = block_on(async { (light.await, heavy.await) });
        let ratio = heavy.spent as f64 / light.spent.max(1) as f64;
        let longest = light.longest.max(heavy.longest);
        let fair_light = (light.spent + heavy.spent) / 4;
        let off = light.spent.abs_diff(fair_light);
        percore_kernel::println!(
            "fair: weights 1:3 on core {core} got 1:{ratio:.2} (light off its share by {} us, longest slice {} us)",
            cycles_to_ns(off) / 1000,
            cycles_to_ns(longest) / 1000
        );
        if !(2.7..=3.3).contains(&ratio) && off > 2 * longest {
            return Err(format!(
                "weights 1:3 got 1:{ratio:.2}: the light task is {} us off its share, more than two of the longest slices ({} us)",
                cycles_to_ns(off) / 1000,
                cycles_to_ns(longest) / 1000
            ));
        }
        Ok(())
    })
}

/// Three tasks of one priority on a round-robin core take turns in spawn
/// order, every round; a ready task of a lower priority runs only after them.
pub fn round_robin_within_a_priority(_: &Kernel) -> Result<(), String> {
    let core = test_core();
    with_flavour(core, Flavour::RoundRobin, || {
        let log = Arc::new(spin::Mutex::new(Vec::new()));
        let spawner_log = log.clone();
        // One task spawns them all on the core, so they are adopted together.
        let spawner = SpawnOptions::new(priority(50)).pinned();
        block_on(spawn_with(core, spawner, async move {
            let entry = |who: u8, level: u8, rounds: u8| {
                let log = spawner_log.clone();
                let options = SpawnOptions::new(priority(level)).pinned();
                spawn_with(cpu::core_id(), options, async move {
                    for _ in 0..rounds {
                        log.lock().push(who);
                        yield_now().await;
                    }
                })
            };
            let low = entry(9, 10, 1);
            let same: Vec<_> = (0..3).map(|who| entry(who, 40, 5)).collect();
            for task in same {
                task.await;
            }
            low.await;
        }));
        let got = log.lock().clone();
        let want: Vec<u8> = (0..5).flat_map(|_| 0..3).chain([9]).collect();
        if got != want {
            return Err(format!("ran in order {got:?}, want {want:?}"));
        }
        Ok(())
    })
}

/// Priority inversion across cores: two urgent (level 50) CPU-bound tasks
/// start on one core while every other core runs only a pinned low-level
/// (8) CPU-bound task. The balancer must move an urgent task to a core that
/// runs lower work, so that both urgent tasks run at once (the test waits
/// until one has run elsewhere, 3 s at most).
pub fn urgent_work_moves(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let n = cores();
    if n < 2 {
        percore_kernel::println!("sched: one core, nothing to balance");
        return Ok(());
    }
    let home = test_core();
    let stop = Arc::new(AtomicBool::new(false));
    let low = SpawnOptions::new(priority(8)).pinned();
    let lows: Vec<_> = (0..n - 1)
        .map(|c| hog(CoreId(c), low, 200, stop.clone()))
        .collect();
    let seen: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let urgent: Vec<_> = (0..2)
        .map(|i| {
            let (seen, stop) = (seen.clone(), stop.clone());
            spawn_with(home, SpawnOptions::new(priority(50)), async move {
                while !stop.load(Ordering::Relaxed) {
                    // A bit per core this task ran on.
                    seen[i].fetch_or(1 << cpu::core_id().0, Ordering::Relaxed);
                    busy_us(200);
                    yield_now().await;
                }
            })
        })
        .collect();
    // Until an urgent task has run elsewhere (3 s at most: under TCG on a
    // busy host a vCPU may get little of the host's time).
    let give_up = clock::cycles() + clock::hz() * 3;
    let moved =
        || (seen[0].load(Ordering::SeqCst) | seen[1].load(Ordering::SeqCst)) & !(1 << home.0) != 0;
    while !moved() && clock::cycles() < give_up {
        block_on(sleep(Duration::from_millis(10)));
    }
    stop.store(true, Ordering::Relaxed);
    block_on(async {
        for task in urgent {
            task.await;
        }
        for task in lows {
            task.await;
        }
    });
    let seen = [
        seen[0].load(Ordering::SeqCst),
        seen[1].load(Ordering::SeqCst),
    ];
    percore_kernel::println!(
        "sched: urgent tasks from core {home} ran on cores {:#b} and {:#b}",
        seen[0],
        seen[1]
    );
    if (seen[0] | seen[1]) & !(1 << home.0) == 0 {
        return Err(format!(
            "both urgent tasks stayed on core {home} while the others ran level-8 work"
        ));
    }
    Ok(())
}

/// A movable task with priority, weight and deadline, ready behind a pinned
/// CPU-bound task, is taken by another core; there its tree orders it by
/// the same parameters.
pub fn migrated_task_keeps_parameters(_: &Kernel) -> Result<(), String> {
    start_reactors();
    if cores() < 2 {
        percore_kernel::println!("sched: one core, nothing to migrate to");
        return Ok(());
    }
    let home = test_core();
    let stop = Arc::new(AtomicBool::new(false));
    let pinned_hog = hog(
        home,
        SpawnOptions::new(priority(45)).pinned(),
        200,
        stop.clone(),
    );
    let options = SpawnOptions::new(priority(45))
        .weight(3)
        .deadline(Duration::from_secs(5));
    let moved = spawn_with(home, options, async move {
        let first = reactor::current_task();
        let give_up = clock::cycles() + clock::hz() * 2;
        loop {
            let now: Option<TaskInfo> = reactor::current_task();
            if now.is_none_or(|t| t.core != home) || clock::cycles() > give_up {
                return (first, now);
            }
            busy_us(50);
            yield_now().await;
        }
    });
    let (first, now) = block_on(moved);
    stop.store(true, Ordering::Relaxed);
    block_on(pinned_hog);
    let (Some(first), Some(now)) = (first, now) else {
        return Err(String::from("current_task() gave nothing inside a task"));
    };
    percore_kernel::println!(
        "sched: moved from core {} to core {}: {now:?}",
        first.core,
        now.core
    );
    if now.core == home {
        return Err(format!("the task never left core {home} in 2 s"));
    }
    let want_weight = 3 * Priority::DEFAULT_WEIGHT;
    if now.options != options
        || now.tree_weight != want_weight
        || now.tree_deadline != first.tree_deadline
        || now.options.priority != priority(45)
    {
        return Err(format!("before {first:?}, after {now:?}"));
    }
    Ok(())
}

/// The shell's `sched` switches a core's discipline (its tasks move over)
/// and `tasks CORE` lists that core's tasks with their parameters.
pub fn shell_switches_and_lists(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = test_core();
    let run = |command: String| block_on(percore_kernel::shell::commands::execute(&command));
    let stop = Arc::new(AtomicBool::new(false));
    let options = SpawnOptions::new(priority(41))
        .weight(2)
        .deadline(Duration::from_millis(700))
        .pinned();
    let task = hog(core, options, 100, stop.clone());
    let switched = run(format!("sched {core} edf"));
    let listed = run(format!("tasks {core}"));
    let back = run(format!("sched {core} rr"));
    stop.store(true, Ordering::Relaxed);
    block_on(task);
    if switched != format!("sched: core {core} rr -> edf")
        || back != format!("sched: core {core} edf -> rr")
    {
        return Err(format!("`sched` answered `{switched}` and `{back}`"));
    }
    let ours = listed
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("41"))
        .unwrap_or("");
    let fields: Vec<&str> = ours.split_whitespace().collect();
    if !listed.contains(&format!("core {core}: edf"))
        || fields.get(3) != Some(&"2.00")
        || fields.get(4) != Some(&"700.000ms")
        || fields.get(8) != Some(&"true")
    {
        return Err(format!("`tasks {core}` printed:\n{listed}"));
    }
    let errors = [
        (String::from("sched 999 rr"), "sched: core 999: NoSuchCore"),
        (String::from("sched 0 cfs"), "usage: sched CORE rr|fair|edf"),
        (String::from("tasks 999"), "tasks: no core 999"),
    ];
    for (command, want) in errors {
        let got = run(command.clone());
        if got != want {
            return Err(format!("`{command}` printed `{got}`, want `{want}`"));
        }
    }
    Ok(())
}
