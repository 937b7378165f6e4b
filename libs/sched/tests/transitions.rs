//! State transitions, stale ids, migration and fair-share accounting.

use percore_sched::{
    AnyDiscipline, Discipline, Fair, Flavour, Priority, RoundRobin, SpawnError, StateError,
    TaskParams, TaskState, TaskTree,
};

const FLAVOURS: [Flavour; 3] = [Flavour::RoundRobin, Flavour::Deadline, Flavour::Fair];

fn tree(flavour: Flavour) -> TaskTree<AnyDiscipline> {
    TaskTree::new(AnyDiscipline::new(flavour))
}

#[test]
fn every_flavour_walks_the_life_cycle() {
    for f in FLAVOURS {
        let mut t = tree(f);
        let id = t.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
        assert_eq!(t.select(), Some(id), "{f:?}");
        assert_eq!(t.sleep(id), Ok(TaskState::Sleeping));
        assert_eq!(t.select(), None);
        assert_eq!(t.wake(id), Ok(true));
        assert_eq!(t.select(), Some(id));
        t.finish(id).unwrap();
        assert_eq!(t.ready_len(), 0);
        assert_eq!(t.wake(id), Ok(false), "waking a finished task is a no-op");
        t.reap(id).unwrap();
        assert!(t.is_empty());
    }
}

#[test]
fn invalid_transitions_are_errors_not_panics() {
    for f in FLAVOURS {
        let mut t = tree(f);
        let id = t.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
        let ready = StateError::InvalidTransition {
            id,
            from: TaskState::Ready,
        };
        assert_eq!(t.yield_now(id), Err(ready));
        assert_eq!(t.charge(id, 5), Err(ready));
        assert_eq!(t.reap(id), Err(ready));
        t.block(id).unwrap();
        let blocked = StateError::InvalidTransition {
            id,
            from: TaskState::Blocked,
        };
        assert_eq!(t.block(id), Err(blocked));
        assert_eq!(t.sleep(id), Err(blocked));
        t.finish(id).unwrap();
        t.reap(id).unwrap();
        assert_eq!(t.reap(id), Err(StateError::NoSuchTask(id)));
        assert_eq!(t.finish(id), Err(StateError::NoSuchTask(id)));
        assert_eq!(
            t.set_priority(id, Priority::MAX),
            Err(StateError::NoSuchTask(id))
        );
        assert_eq!(t.time_slice(id), None);
        assert!(!t.should_preempt(id));
    }
}

#[test]
fn stale_id_does_not_touch_the_slot_reuser() {
    let mut t = tree(Flavour::RoundRobin);
    let old = t.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    t.finish(old).unwrap();
    t.reap(old).unwrap();
    let new = t.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    assert_eq!(old.index(), new.index());
    t.select();
    t.block(new).unwrap();
    assert_eq!(t.wake(old), Err(StateError::NoSuchTask(old)));
    assert_eq!(t.state(new), Some(TaskState::Blocked));
}

#[test]
fn wake_while_running_is_not_lost() {
    for f in FLAVOURS {
        let mut t = tree(f);
        let id = t.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
        t.select();
        assert_eq!(t.wake(id), Ok(false));
        assert_eq!(t.sleep(id), Ok(TaskState::Ready), "{f:?}");
        assert_eq!(t.select(), Some(id));
        // The notification was consumed by that requeue.
        assert_eq!(t.block(id), Ok(TaskState::Blocked));
    }
}

#[test]
fn capacity_is_a_hard_limit_and_refusals_return_the_value() {
    let mut t = TaskTree::with_capacity(RoundRobin::new(), 3);
    let p = TaskParams::new(Priority::MIN).pinned();
    let ids: Vec<_> = (0..3).map(|_| t.spawn(p).unwrap()).collect();
    assert_eq!(t.spawn(p), Err(SpawnError::Full(p)));
    t.finish(ids[1]).unwrap();
    assert_eq!(
        t.spawn(p),
        Err(SpawnError::Full(p)),
        "finished tasks keep their slot"
    );
    t.reap(ids[1]).unwrap();
    assert!(t.spawn(p).is_ok());
}

#[test]
fn steal_skips_pinned_and_adopt_keeps_fair_lag() {
    let mut src = TaskTree::new(Fair::new());
    let p = Priority::DEFAULT;
    let pinned = src.spawn(TaskParams::new(p).pinned()).unwrap();
    let mover = src.spawn(TaskParams::new(p)).unwrap();
    // Run both so the virtual clock advances: mover ends 2 ms ahead of pinned.
    for (id, ran) in [(pinned, 1_000_000), (mover, 3_000_000)] {
        assert_eq!(src.select(), Some(id));
        src.charge(id, ran).unwrap();
        src.yield_now(id).unwrap();
    }
    let clock = src.discipline().virtual_clock();
    assert_eq!(clock, 0, "clock follows the leftmost selected key");
    assert_eq!(src.steal(Priority::MAX), None, "nothing at that level");
    let m = src.steal(p).unwrap();
    assert_eq!(m.from(), mover);
    assert_eq!(src.steal(p), None, "the pinned task stays");
    assert!(src.task(mover).is_none());

    let mut dst = TaskTree::new(Fair::new());
    let other = dst.spawn(TaskParams::new(p)).unwrap();
    for _ in 0..3 {
        let id = dst.select().unwrap();
        dst.charge(id, 10_000_000).unwrap();
        dst.yield_now(id).unwrap();
    }
    let base = dst.discipline().virtual_clock();
    let new = dst.adopt(m).unwrap();
    let t = dst.task(new).unwrap();
    assert_eq!(t.vruntime(), base + 3_000_000);
    assert_eq!(t.runtime(), 3_000_000);
    assert_eq!(dst.ready_at(p), 2);
    assert_eq!(dst.state(other), Some(TaskState::Ready));
}

#[test]
fn fair_share_follows_weights_and_slices_split_latency() {
    let mut t = TaskTree::new(Fair::new());
    let levels = [30u8, 32, 36];
    let ids: Vec<_> = levels
        .iter()
        .map(|&l| t.spawn(TaskParams::new(Priority::new(l).unwrap())).unwrap())
        .collect();
    for _ in 0..30_000 {
        let id = t.select().unwrap();
        let slice = t.time_slice(id).unwrap();
        assert!(slice >= Fair::DEFAULT_MIN_GRANULARITY_NS);
        t.charge(id, 100_000).unwrap();
        t.yield_now(id).unwrap();
    }
    let total: u64 = ids.iter().map(|&id| t.task(id).unwrap().runtime()).sum();
    let weights: Vec<u64> = levels
        .iter()
        .map(|&l| Priority::new(l).unwrap().weight())
        .collect();
    let wsum: u64 = weights.iter().sum();
    for (id, w) in ids.iter().zip(&weights) {
        let got = t.task(*id).unwrap().runtime() as f64 / total as f64;
        let want = *w as f64 / wsum as f64;
        assert!((got - want).abs() < 0.01, "share {got} want {want}");
    }
}

#[test]
fn explicit_weights_split_the_cpu_and_survive_migration_and_a_switch() {
    let mut t = tree(Flavour::Fair);
    let w = Priority::DEFAULT_WEIGHT;
    let p = Priority::DEFAULT;
    let light = t.spawn(TaskParams::new(p).with_weight(w)).unwrap();
    let heavy = t.spawn(TaskParams::new(p).with_weight(3 * w)).unwrap();
    let run = |t: &mut TaskTree<AnyDiscipline>, rounds: usize| {
        for _ in 0..rounds {
            let id = t.select().unwrap();
            t.charge(id, 100_000).unwrap();
            t.yield_now(id).unwrap();
        }
    };
    run(&mut t, 4_000);
    let share = |t: &TaskTree<AnyDiscipline>, a, b| {
        t.task(a).unwrap().runtime() as f64 / t.task(b).unwrap().runtime() as f64
    };
    assert!((share(&t, heavy, light) - 3.0).abs() < 0.05);
    // Moved to another core, a task keeps its weight there.
    let mut there = tree(Flavour::Fair);
    let weight = |id| t.task(id).unwrap().weight();
    let (w_light, w_heavy) = (weight(light), weight(heavy));
    let migrant = t.steal(p).unwrap();
    let moved = there.adopt(migrant).unwrap();
    let want = if migrant.from() == heavy {
        w_heavy
    } else {
        w_light
    };
    assert_eq!(there.task(moved).unwrap().weight(), want);
    // A switch of discipline keeps ids and parameters.
    let old = there.set_discipline(AnyDiscipline::new(Flavour::Deadline));
    assert!(old.is_empty());
    assert_eq!(there.select(), Some(moved));
    assert_eq!(there.task(moved).unwrap().params(), migrant.params());
}

#[test]
fn woken_sleeper_does_not_bank_credit_under_fair() {
    let mut t = TaskTree::new(Fair::new());
    let p = Priority::DEFAULT;
    let sleeper = t.spawn(TaskParams::new(p)).unwrap();
    let worker = t.spawn(TaskParams::new(p)).unwrap();
    assert_eq!(t.select(), Some(sleeper));
    t.sleep(sleeper).unwrap();
    for _ in 0..100 {
        assert_eq!(t.select(), Some(worker));
        t.charge(worker, 1_000_000).unwrap();
        t.yield_now(worker).unwrap();
    }
    t.wake(sleeper).unwrap();
    // Lifted to the clock: it runs next but does not get 100 ms in a row.
    assert!(t.task(sleeper).unwrap().vruntime() >= 99_000_000);
    assert_eq!(t.select(), Some(sleeper));
    t.charge(sleeper, 2_000_000).unwrap();
    t.yield_now(sleeper).unwrap();
    assert_eq!(t.select(), Some(worker));
}

#[test]
fn preemption_rules_per_flavour() {
    let mut rr = tree(Flavour::RoundRobin);
    let low = rr.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    rr.select();
    rr.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    assert!(!rr.should_preempt(low), "same level waits for the slice");

    let mut edf = tree(Flavour::Deadline);
    let late = edf
        .spawn(TaskParams::new(Priority::MAX).with_deadline(100))
        .unwrap();
    edf.select();
    edf.spawn(TaskParams::new(Priority::MIN).with_deadline(200))
        .unwrap();
    assert!(!edf.should_preempt(late));
    edf.spawn(TaskParams::new(Priority::MIN).with_deadline(50))
        .unwrap();
    assert!(edf.should_preempt(late));

    let mut fair = tree(Flavour::Fair);
    let hog = fair.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    fair.select();
    fair.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    fair.charge(hog, 500_000).unwrap();
    assert!(!fair.should_preempt(hog), "within the granularity");
    fair.charge(hog, 500_000).unwrap();
    assert!(fair.should_preempt(hog));
}

#[test]
fn set_priority_moves_a_ready_task_between_levels() {
    let mut t = tree(Flavour::RoundRobin);
    let a = t.spawn(TaskParams::new(Priority::MIN)).unwrap();
    let b = t.spawn(TaskParams::new(Priority::MIN)).unwrap();
    t.set_priority(b, Priority::MAX).unwrap();
    assert_eq!(t.ready_at(Priority::MIN), 1);
    assert_eq!(t.ready_at(Priority::MAX), 1);
    assert_eq!(t.select(), Some(b));
    // A running task's new priority applies when it is requeued.
    t.set_priority(b, Priority::MIN).unwrap();
    t.yield_now(b).unwrap();
    assert_eq!(t.select(), Some(a));
    assert_eq!(t.select(), Some(b));
}

#[test]
fn many_tasks_all_run_once_per_round() {
    for f in FLAVOURS {
        let mut t = tree(f);
        let n = 10_000;
        for _ in 0..n {
            t.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
        }
        let mut seen = vec![false; n];
        for _ in 0..n {
            let id = t.select().unwrap();
            assert!(
                !std::mem::replace(&mut seen[id.index()], true),
                "{f:?} ran {id:?} twice"
            );
            t.charge(id, 1_000).unwrap();
            t.yield_now(id).unwrap();
        }
        assert!(seen.iter().all(|&s| s));
    }
}
