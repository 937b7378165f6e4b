//! Property tests: the wheel against a `BinaryHeap` model.
//!
//! Random sequences of insert / cancel / advance / interval operations run
//! on both; after every step they must agree on which timers fired (same
//! set: none lost, none twice), none may fire early, the timers of one
//! `advance` must come out in non-decreasing deadline order, cancel results
//! must match, and `next_deadline` must never be later than the model's
//! earliest fire instant. `PERCORE_STRESS=long` runs many more cases.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use percore_timer::{
    CancelError, Config, Expired, IntervalError, IntervalHandle, TickShift, TimerHandle, Wheel,
};
use proptest::prelude::*;

const INTERVALS: usize = 3;

/// What fired, as the wheel reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Fire {
    deadline: u64,
    id: u64,
    missed: u64,
}

struct Model {
    shift: u32,
    /// Latest tick reached.
    now: u64,
    /// (fire tick, deadline, id); cancelled ids are skipped lazily.
    heap: BinaryHeap<Reverse<(u64, u64, u64)>>,
    /// Live one-shot ids.
    live: HashMap<u64, u64>,
    /// Interval slot -> (id, next deadline, period, parked).
    intervals: HashMap<u32, (u64, u64, u64, bool)>,
}

impl Model {
    fn ceil(&self, ns: u64) -> u64 {
        (ns >> self.shift) + u64::from(ns & ((1u64 << self.shift) - 1) != 0)
    }

    fn to_nanos(&self, tick: u64) -> u64 {
        tick.checked_shl(self.shift)
            .filter(|_| tick <= u64::MAX >> self.shift)
            .unwrap_or(u64::MAX)
    }

    fn earliest_fire_instant(&mut self) -> Option<u64> {
        // Drop lazily cancelled entries from the top, then peek.
        while let Some(Reverse((_, _, id))) = self.heap.peek() {
            if self.live.contains_key(id) {
                break;
            }
            self.heap.pop();
        }
        let oneshot = self.heap.peek().map(|Reverse((tick, _, _))| *tick);
        let interval = self
            .intervals
            .values()
            .filter(|i| !i.3)
            .map(|i| self.ceil(i.1))
            .min();
        oneshot
            .into_iter()
            .chain(interval)
            .min()
            .map(|t| self.to_nanos(t))
    }

    fn advance(&mut self, now: u64) -> Vec<Fire> {
        self.now = self.now.max(now >> self.shift);
        let limit = self.to_nanos(self.now);
        let mut fired = Vec::new();
        while let Some(Reverse((tick, deadline, id))) = self.heap.peek().copied() {
            if tick > self.now {
                break;
            }
            self.heap.pop();
            if self.live.remove(&id).is_some() {
                fired.push(Fire {
                    deadline,
                    id,
                    missed: 0,
                });
            }
        }
        for (id, next, period, parked) in self.intervals.values_mut() {
            if *parked || *next > limit {
                continue;
            }
            let missed = (limit - *next) / *period;
            fired.push(Fire {
                deadline: *next,
                id: *id,
                missed,
            });
            *next = next.saturating_add((missed + 1).saturating_mul(*period));
            *parked = *next <= limit;
        }
        fired.sort();
        fired
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Deadline relative to the model's current time (may be in the past).
    Insert(i64),
    /// Absolute, far-away deadline (exercises the overflow list).
    InsertFar(u64),
    Cancel(usize),
    Advance(u64),
    AdvanceBack(u64),
    AdvanceToNext,
    AddInterval(u64, u64),
    RemoveInterval(usize),
    /// Arm this many timers (near, mid and far deadlines from the seed),
    /// then cancel seven in eight of them: enough tombstones to start
    /// compaction, which the following operations then run into.
    Churn(u16, u64),
}

fn op(tick: u64) -> impl Strategy<Value = Op> {
    let near = (tick * 200) as i64;
    let mid = (tick * 300_000) as i64;
    prop_oneof![
        6 => (-near..near).prop_map(Op::Insert),
        3 => (0..mid).prop_map(Op::Insert),
        1 => (0..u64::MAX).prop_map(Op::InsertFar),
        4 => any::<usize>().prop_map(Op::Cancel),
        3 => (0..tick * 300).prop_map(Op::Advance),
        1 => (0..tick * 500_000).prop_map(Op::Advance),
        1 => (0..1u64 << 40).prop_map(Op::Advance),
        1 => (0..tick * 100).prop_map(Op::AdvanceBack),
        3 => Just(Op::AdvanceToNext),
        1 => ((0..tick * 1000), (0..tick * 500)).prop_map(|(f, p)| Op::AddInterval(f, p)),
        1 => any::<usize>().prop_map(Op::RemoveInterval),
        1 => (200..700u16, any::<u64>()).prop_map(|(n, seed)| Op::Churn(n, seed)),
    ]
}

fn case() -> impl Strategy<Value = (u32, Vec<Op>)> {
    prop_oneof![Just(0u32), Just(3), Just(10)]
        .prop_flat_map(|shift| (Just(shift), prop::collection::vec(op(1 << shift), 1..300)))
}

/// The wheel and the model side by side, plus every handle ever issued.
struct Harness {
    wheel: Wheel<u64>,
    model: Model,
    handles: Vec<(TimerHandle, u64)>,
    /// (handle, model slot, id) of every interval ever added.
    interval_handles: Vec<(IntervalHandle, u32, u64)>,
    /// Every handle issued so far: a new one must never repeat an old one.
    issued: HashSet<TimerHandle>,
    next_id: u64,
    now: u64,
}

impl Harness {
    fn new(shift: u32) -> Self {
        let tick = TickShift::new(shift).unwrap();
        Self {
            wheel: Wheel::new(Config::new(tick).with_intervals(INTERVALS)).unwrap(),
            model: Model {
                shift,
                now: 0,
                heap: BinaryHeap::new(),
                live: HashMap::new(),
                intervals: HashMap::new(),
            },
            handles: Vec::new(),
            interval_handles: Vec::new(),
            issued: HashSet::new(),
            next_id: 0,
            now: 0,
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Insert(delta) => self.insert(self.now.saturating_add_signed(delta))?,
            Op::InsertFar(at) => self.insert(at)?,
            Op::Cancel(pick) => self.cancel(pick)?,
            Op::Advance(step) => self.advance(self.now.saturating_add(step), None)?,
            Op::AdvanceBack(step) => self.advance(self.now.saturating_sub(step), None)?,
            Op::AdvanceToNext => {
                if let Some(at) = self.wheel.next_deadline() {
                    self.advance(at, Some(at))?;
                }
            }
            Op::AddInterval(first, period) => self.add_interval(first, period)?,
            Op::RemoveInterval(pick) => self.remove_interval(pick)?,
            Op::Churn(count, seed) => self.churn(count, seed)?,
        }
        self.check_invariants()
    }

    fn churn(&mut self, count: u16, seed: u64) -> Result<(), TestCaseError> {
        let tick = 1u64 << self.model.shift;
        let mut rand = xorshift(seed | 1);
        let first = self.handles.len();
        for k in 0..count {
            let span = [tick * 200, tick * 300_000, tick << 40][k as usize % 3];
            self.insert(self.now.saturating_add(rand() % span))?;
        }
        for pick in first..self.handles.len() {
            if pick % 8 != 0 {
                self.cancel(pick)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, deadline: u64) -> Result<(), TestCaseError> {
        let id = self.next_id;
        self.next_id += 1;
        let handle = self.wheel.insert(deadline, id).unwrap();
        prop_assert!(self.issued.insert(handle), "handle {:?} reissued", handle);
        let tick = self.model.ceil(deadline);
        self.model.heap.push(Reverse((tick, deadline, id)));
        self.model.live.insert(id, deadline);
        self.handles.push((handle, id));
        Ok(())
    }

    fn cancel(&mut self, pick: usize) -> Result<(), TestCaseError> {
        if self.handles.is_empty() {
            return Ok(());
        }
        let (handle, id) = self.handles[pick % self.handles.len()];
        let expected = self.model.live.remove(&id).map(|_| id);
        prop_assert_eq!(self.wheel.cancel(handle).ok(), expected);
        Ok(())
    }

    /// Advances both to `now`; `next` is the `next_deadline` that `now` came
    /// from, if it did.
    fn advance(&mut self, now: u64, next: Option<u64>) -> Result<(), TestCaseError> {
        self.now = now;
        let mut got = Vec::new();
        let count = self.wheel.advance(now, |e| {
            got.push(match e {
                Expired::Oneshot { deadline, payload } => Fire {
                    deadline,
                    id: payload,
                    missed: 0,
                },
                Expired::Interval {
                    deadline,
                    payload,
                    missed,
                    ..
                } => Fire {
                    deadline,
                    id: *payload,
                    missed,
                },
            })
        });
        prop_assert_eq!(count, got.len());
        // One advance fires in non-decreasing deadline order.
        prop_assert!(got.windows(2).all(|w| w[0].deadline <= w[1].deadline));
        // Never early: each fire instant is at or before the time reached.
        let reached = (now >> self.model.shift).max(self.model.now);
        for f in &got {
            prop_assert!(self.model.ceil(f.deadline) <= reached);
        }
        let expected = self.model.advance(now);
        got.sort();
        prop_assert_eq!(&got, &expected);
        if next.is_some() {
            // Progress: advancing to next_deadline fires something or moves
            // next_deadline strictly later.
            prop_assert!(count > 0 || self.wheel.next_deadline() > next);
        }
        Ok(())
    }

    fn add_interval(&mut self, first: u64, period: u64) -> Result<(), TestCaseError> {
        let id = 1 << 62 | self.next_id;
        self.next_id += 1;
        let first = self.now.saturating_add(first);
        match self.wheel.add_interval(first, period, id) {
            Ok(handle) => {
                prop_assert!(period > 0);
                prop_assert!(self.interval_handles.iter().all(|(h, _, _)| *h != handle));
                let slot = self.interval_handles.len() as u32;
                self.model
                    .intervals
                    .insert(slot, (id, first, period, false));
                self.interval_handles.push((handle, slot, id));
            }
            Err(IntervalError::ZeroPeriod(back)) => {
                prop_assert_eq!(period, 0);
                prop_assert_eq!(back, id);
            }
            Err(IntervalError::Full(back)) => {
                prop_assert_eq!(self.model.intervals.len(), INTERVALS);
                prop_assert_eq!(back, id);
            }
        }
        Ok(())
    }

    fn remove_interval(&mut self, pick: usize) -> Result<(), TestCaseError> {
        if self.interval_handles.is_empty() {
            return Ok(());
        }
        let (handle, slot, id) = self.interval_handles[pick % self.interval_handles.len()];
        let expected = self.model.intervals.remove(&slot).map(|_| id);
        prop_assert_eq!(self.wheel.remove_interval(handle).ok(), expected);
        Ok(())
    }

    fn check_invariants(&mut self) -> Result<(), TestCaseError> {
        let armed = self.model.live.len() + self.model.intervals.len();
        prop_assert_eq!(self.wheel.len(), armed);
        match (
            self.wheel.next_deadline(),
            self.model.earliest_fire_instant(),
        ) {
            (None, None) => {}
            (Some(at), Some(earliest)) => prop_assert!(at <= earliest.max(self.wheel.now())),
            (got, want) => prop_assert!(false, "next_deadline {:?}, model {:?}", got, want),
        }
        Ok(())
    }
}

fn run(shift: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(shift);
    for op in ops {
        harness.step(op)?;
    }
    Ok(())
}

fn cases() -> u32 {
    match std::env::var("PERCORE_STRESS").as_deref() {
        Ok("long") => 20_000,
        _ => 512,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn wheel_matches_binary_heap_model((shift, ops) in case()) {
        run(shift, &ops)?;
    }
}

/// xorshift64 from `seed` (non-zero): the same sequence on every run.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A bigger deterministic run: many timers, random cancels, stepped advance.
#[test]
fn many_timers_match_model() {
    let mut ops = Vec::new();
    let mut rand = xorshift(0x2545_f491_4f6c_dd1du64);
    for round in 0..40 {
        for _ in 0..500 {
            ops.push(Op::Insert((rand() % 2_000_000) as i64));
        }
        for _ in 0..200 {
            ops.push(Op::Cancel(rand() as usize));
        }
        ops.push(Op::Advance(rand() % 100_000));
        if round % 8 == 0 {
            ops.push(Op::InsertFar(rand()));
            ops.push(Op::AddInterval(rand() % 10_000, 1 + rand() % 50_000));
        }
    }
    ops.push(Op::Advance(u64::MAX));
    run(10, &ops).unwrap();
}

/// Like a server: most timers are cancelled before they fire, with time
/// advancing in small steps, so tombstone compaction runs again and again
/// between cascades and expiry.
#[test]
fn cancel_heavy_run_matches_model() {
    let mut ops = Vec::new();
    let mut rand = xorshift(0x9e37_79b9_7f4a_7c15u64);
    // Handles issued so far (the harness keeps them in order).
    let mut issued = 0usize;
    for round in 0..60 {
        for _ in 0..400 {
            ops.push(Op::Insert((rand() % 500_000) as i64));
            issued += 1;
            if rand() % 10 != 0 {
                // Cancel one of the last 64 timers armed (most still live).
                let back = (rand() as usize % 64).min(issued - 1);
                ops.push(Op::Cancel(issued - 1 - back));
            }
        }
        for _ in 0..8 {
            ops.push(Op::Advance(rand() % 3_000));
            ops.push(Op::AdvanceToNext);
        }
        if round % 10 == 0 {
            ops.push(Op::Churn(2_000, rand()));
            issued += 2_000;
            ops.push(Op::AddInterval(rand() % 10_000, 1 + rand() % 50_000));
        }
    }
    ops.push(Op::Advance(u64::MAX));
    run(4, &ops).unwrap();
}

#[test]
fn stale_handles_are_errors() {
    let mut wheel = Wheel::new(Config::new(TickShift::new(0).unwrap())).unwrap();
    let first = wheel.insert(10, 1).unwrap();
    assert_eq!(wheel.advance(10, |_| {}), 1);
    // The entry is reused by the next timer; the old handle must not touch it.
    let second = wheel.insert(20, 2).unwrap();
    assert_eq!(wheel.cancel(first), Err(CancelError::Inactive));
    assert_eq!(wheel.cancel(second), Ok(2));
    assert_eq!(wheel.cancel(second), Err(CancelError::Inactive));
}
