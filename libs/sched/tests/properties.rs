//! Property tests of the three disciplines against simple models.

use std::collections::VecDeque;

use percore_sched::{
    Deadline, Discipline, Fair, Priority, RoundRobin, TaskId, TaskParams, TaskState, TaskTree,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// spawn a task at the level, pinned or not.
    Spawn(u8, bool),
    /// select, then requeue the selected task at the back of its level.
    SelectYield,
    /// select, then block the selected task.
    SelectBlock,
    /// wake the n-th blocked task (mod the number blocked).
    Wake(usize),
    /// finish the n-th ready task of the model (mod the number ready).
    Finish(usize),
    /// steal one task of the level.
    Steal(u8),
}

fn op(levels: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..levels, prop::bool::weighted(0.25)).prop_map(|(l, pinned)| Op::Spawn(l, pinned)),
        4 => Just(Op::SelectYield),
        2 => Just(Op::SelectBlock),
        2 => any::<usize>().prop_map(Op::Wake),
        1 => any::<usize>().prop_map(Op::Finish),
        1 => (0..levels).prop_map(Op::Steal),
    ]
}

/// Reference model of strict priority + round-robin: one FIFO per level.
#[derive(Default)]
struct RrModel {
    levels: Vec<VecDeque<TaskId>>,
    blocked: Vec<TaskId>,
    pinned: Vec<TaskId>,
}

impl RrModel {
    fn new() -> Self {
        Self {
            levels: vec![VecDeque::new(); Priority::LEVELS],
            blocked: Vec::new(),
            pinned: Vec::new(),
        }
    }
    fn top(&self) -> Option<usize> {
        (0..Priority::LEVELS)
            .rev()
            .find(|&l| !self.levels[l].is_empty())
    }
    fn ready(&self) -> Vec<TaskId> {
        self.levels.iter().flatten().copied().collect()
    }
    fn remove(&mut self, id: TaskId) {
        for l in &mut self.levels {
            l.retain(|&t| t != id);
        }
    }
}

fn level(tree: &TaskTree<RoundRobin>, id: TaskId) -> usize {
    tree.task(id).unwrap().priority().get() as usize
}

proptest! {
    /// The tree matches the model exactly: the highest non-empty level is
    /// always chosen (strict priority), and within a level tasks run in FIFO
    /// order (round-robin), which bounds every ready task's wait.
    #[test]
    fn round_robin_matches_fifo_per_level_model(ops in prop::collection::vec(op(64), 1..300)) {
        let mut tree = TaskTree::new(RoundRobin::new());
        let mut model = RrModel::new();
        for op in ops {
            match op {
                Op::Spawn(l, pinned) => {
                    let params = TaskParams::new(Priority::new(l).unwrap());
                    let id = tree.spawn(if pinned { params.pinned() } else { params }).unwrap();
                    model.levels[l as usize].push_back(id);
                    if pinned {
                        model.pinned.push(id);
                    }
                }
                Op::SelectYield | Op::SelectBlock => {
                    let expected = model.top().map(|l| model.levels[l].pop_front().unwrap());
                    let got = tree.select();
                    prop_assert_eq!(got, expected);
                    if let Some(id) = got {
                        // Strict priority: nothing ready is above the selected level.
                        prop_assert!(model.top().is_none_or(|l| l <= level(&tree, id)));
                        if matches!(op, Op::SelectYield) {
                            tree.yield_now(id).unwrap();
                            model.levels[level(&tree, id)].push_back(id);
                        } else {
                            prop_assert_eq!(tree.block(id), Ok(TaskState::Blocked));
                            model.blocked.push(id);
                        }
                    }
                }
                Op::Wake(n) if !model.blocked.is_empty() => {
                    let id = model.blocked.remove(n % model.blocked.len());
                    prop_assert_eq!(tree.wake(id), Ok(true));
                    model.levels[level(&tree, id)].push_back(id);
                }
                Op::Finish(n) => {
                    let ready = model.ready();
                    if !ready.is_empty() {
                        let id = ready[n % ready.len()];
                        tree.finish(id).unwrap();
                        tree.reap(id).unwrap();
                        model.remove(id);
                        prop_assert_eq!(tree.state(id), None);
                    }
                }
                Op::Steal(l) => {
                    let stolen = tree.steal(Priority::new(l).unwrap()).map(|m| m.from());
                    // Steal takes the movable task nearest the back of the level.
                    let fifo = &mut model.levels[l as usize];
                    let expected = fifo
                        .iter()
                        .rposition(|id| !model.pinned.contains(id))
                        .and_then(|at| fifo.remove(at));
                    prop_assert_eq!(stolen, expected);
                }
                Op::Wake(_) => {}
            }
            prop_assert_eq!(tree.ready_len(), model.ready().len());
            let movable = model.ready().iter().filter(|id| !model.pinned.contains(id)).count();
            prop_assert_eq!(tree.movable_len(), movable);
            for (l, fifo) in model.levels.iter().enumerate() {
                prop_assert_eq!(tree.ready_at(Priority::new(l as u8).unwrap()), fifo.len());
            }
        }
    }

    /// No starvation inside a level: with `n` tasks on one level that yield,
    /// block and get woken in any order, a ready task is selected before `n`
    /// other selections have happened.
    #[test]
    fn round_robin_no_ready_task_starves(
        n in 1usize..20,
        ops in prop::collection::vec((0u8..3, any::<usize>()), 1..400),
    ) {
        let mut tree = TaskTree::new(RoundRobin::new());
        let p = Priority::DEFAULT;
        let ids: Vec<TaskId> = (0..n).map(|_| tree.spawn(TaskParams::new(p)).unwrap()).collect();
        // Selections of other tasks since each task last became ready.
        let mut waited = vec![Some(0usize); n];
        let mut blocked: Vec<usize> = Vec::new();
        let slot = |id: TaskId| ids.iter().position(|&t| t == id).unwrap();
        for (kind, arg) in ops {
            if kind == 2 {
                if !blocked.is_empty() {
                    let i = blocked.remove(arg % blocked.len());
                    tree.wake(ids[i]).unwrap();
                    waited[i] = Some(0);
                }
                continue;
            }
            let Some(id) = tree.select() else { continue };
            let me = slot(id);
            for (i, w) in waited.iter_mut().enumerate() {
                if i != me
                    && let Some(w) = w
                {
                    *w += 1;
                    prop_assert!(*w < n, "task {} waited {} selections with {} tasks", i, w, n);
                }
            }
            if kind == 0 {
                tree.yield_now(id).unwrap();
                waited[me] = Some(0);
            } else {
                tree.block(id).unwrap();
                waited[me] = None;
                blocked.push(me);
            }
        }
    }

    /// EDF: the selected task always has the earliest deadline among the
    /// ready ones, and equal deadlines run in arrival order.
    #[test]
    fn deadline_selects_earliest(ops in prop::collection::vec((0u8..4, 0u64..50, any::<usize>()), 1..300)) {
        let mut tree = TaskTree::new(Deadline::new());
        // (deadline, arrival, id) of every ready task.
        let mut ready: Vec<(u64, u64, TaskId)> = Vec::new();
        let mut blocked: Vec<TaskId> = Vec::new();
        let mut arrival = 0u64;
        for (kind, deadline, n) in ops {
            match kind {
                0 => {
                    let id = tree.spawn(TaskParams::new(Priority::DEFAULT).with_deadline(deadline)).unwrap();
                    ready.push((deadline, arrival, id));
                    arrival += 1;
                }
                1 | 2 => {
                    let expected = ready.iter().min().copied();
                    let got = tree.select();
                    prop_assert_eq!(got, expected.map(|e| e.2));
                    if let Some(e) = expected {
                        ready.retain(|r| *r != e);
                        if kind == 1 {
                            // Periodic task: next release, new deadline.
                            tree.set_deadline(e.2, e.0 + deadline).unwrap();
                            tree.yield_now(e.2).unwrap();
                            ready.push((e.0 + deadline, arrival, e.2));
                            arrival += 1;
                        } else {
                            tree.block(e.2).unwrap();
                            blocked.push(e.2);
                        }
                    }
                }
                _ => {
                    if !blocked.is_empty() {
                        let id = blocked.remove(n % blocked.len());
                        tree.wake(id).unwrap();
                        ready.push((tree.task(id).unwrap().deadline(), arrival, id));
                        arrival += 1;
                    } else if !ready.is_empty() {
                        // Move a ready task's deadline: it is requeued.
                        let i = n % ready.len();
                        let id = ready[i].2;
                        tree.set_deadline(id, deadline).unwrap();
                        ready[i] = (deadline, arrival, id);
                        arrival += 1;
                    }
                }
            }
            prop_assert_eq!(tree.ready_len(), ready.len());
        }
    }

    /// Fair: the selected task has the least virtual runtime among the ready.
    #[test]
    fn fair_selects_least_vruntime(ops in prop::collection::vec((0u8..3, 0u8..64, 0u64..2_000_000), 1..300)) {
        let mut tree = TaskTree::new(Fair::new());
        let mut ready: Vec<TaskId> = Vec::new();
        let mut blocked: Vec<TaskId> = Vec::new();
        for (kind, level, ran) in ops {
            match kind {
                0 => ready.push(tree.spawn(TaskParams::new(Priority::new(level).unwrap())).unwrap()),
                1 => {
                    let least = ready.iter().map(|&id| tree.task(id).unwrap().vruntime()).min();
                    let got = tree.select();
                    prop_assert_eq!(got.map(|id| tree.task(id).unwrap().vruntime()), least);
                    if let Some(id) = got {
                        ready.retain(|&t| t != id);
                        tree.charge(id, ran).unwrap();
                        if ran % 3 == 0 {
                            tree.block(id).unwrap();
                            blocked.push(id);
                        } else {
                            tree.yield_now(id).unwrap();
                            ready.push(id);
                        }
                    }
                }
                _ => {
                    if let Some(id) = blocked.pop() {
                        tree.wake(id).unwrap();
                        ready.push(id);
                    }
                }
            }
            prop_assert_eq!(tree.discipline().len(), ready.len());
        }
    }
}
