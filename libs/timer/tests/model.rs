//! Property tests: the wheel against a `BinaryHeap` model.
//!
//! Random sequences of insert / cancel / advance / interval operations run
//! on both; after every step they must agree on which timers fired (same
//! set: none lost, none twice), none may fire early, the timers of one
//! `advance` must come out in non-decreasing deadline order, cancel results
//! must match, and `next_deadline` must never be later than the model's
//! earliest fire instant. `PERCORE_STRESS=long` runs many more cases.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

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
    ]
}

fn case() -> impl Strategy<Value = (u32, Vec<Op>)> {
    prop_oneof![Just(0u32), Just(3), Just(10)]
        .prop_flat_map(|shift| (Just(shift), prop::collection::vec(op(1 << shift), 1..300)))
}

fn run(shift: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let tick = TickShift::new(shift).unwrap();
    let mut wheel = Wheel::new(Config::new(tick).with_intervals(INTERVALS)).unwrap();
    let mut model = Model {
        shift,
        now: 0,
        heap: BinaryHeap::new(),
        live: HashMap::new(),
        intervals: HashMap::new(),
    };
    let mut handles: Vec<(TimerHandle, u64)> = Vec::new();
    let mut interval_handles: Vec<(IntervalHandle, u32, u64)> = Vec::new();
    let mut next_id = 0u64;
    let mut now = 0u64;
    for op in ops {
        match *op {
            Op::Insert(_) | Op::InsertFar(_) => {
                let deadline = match *op {
                    Op::Insert(delta) => now.saturating_add_signed(delta),
                    Op::InsertFar(at) => at,
                    _ => unreachable!(),
                };
                let id = next_id;
                next_id += 1;
                let handle = wheel.insert(deadline, id).unwrap();
                model
                    .heap
                    .push(Reverse((model.ceil(deadline), deadline, id)));
                model.live.insert(id, deadline);
                handles.push((handle, id));
            }
            Op::Cancel(pick) => {
                if handles.is_empty() {
                    continue;
                }
                let (handle, id) = handles[pick % handles.len()];
                let expected = model.live.remove(&id).map(|_| id);
                prop_assert_eq!(wheel.cancel(handle).ok(), expected);
            }
            Op::Advance(_) | Op::AdvanceBack(_) | Op::AdvanceToNext => {
                let before = wheel.next_deadline();
                now = match *op {
                    Op::Advance(step) => now.saturating_add(step),
                    Op::AdvanceBack(step) => now.saturating_sub(step),
                    _ => match before {
                        Some(at) => at,
                        None => continue,
                    },
                };
                let mut got = Vec::new();
                let count = wheel.advance(now, |e| match e {
                    Expired::Oneshot { deadline, payload } => got.push(Fire {
                        deadline,
                        id: payload,
                        missed: 0,
                    }),
                    Expired::Interval {
                        deadline,
                        payload,
                        missed,
                        ..
                    } => got.push(Fire {
                        deadline,
                        id: *payload,
                        missed,
                    }),
                });
                prop_assert_eq!(count, got.len());
                // One advance fires in non-decreasing deadline order.
                prop_assert!(got.windows(2).all(|w| w[0].deadline <= w[1].deadline));
                // Never early: each fire instant is at or before the time
                // the wheel has reached.
                for f in &got {
                    prop_assert!(model.ceil(f.deadline) <= (now >> shift).max(model.now));
                }
                let expected = model.advance(now);
                got.sort();
                prop_assert_eq!(&got, &expected);
                if matches!(op, Op::AdvanceToNext) {
                    // Progress: advancing to next_deadline fires something or
                    // moves next_deadline strictly later.
                    prop_assert!(count > 0 || wheel.next_deadline() > before);
                }
            }
            Op::AddInterval(first, period) => {
                let id = 1 << 62 | next_id;
                next_id += 1;
                let first = now.saturating_add(first);
                match wheel.add_interval(first, period, id) {
                    Ok(handle) => {
                        prop_assert!(period > 0);
                        prop_assert!(
                            !model
                                .intervals
                                .contains_key(&handle_slot(&interval_handles, handle))
                        );
                        let slot = interval_handles.len() as u32;
                        model.intervals.insert(slot, (id, first, period, false));
                        interval_handles.push((handle, slot, id));
                    }
                    Err(IntervalError::ZeroPeriod(back)) => {
                        prop_assert_eq!(period, 0);
                        prop_assert_eq!(back, id);
                    }
                    Err(IntervalError::Full(back)) => {
                        prop_assert_eq!(model.intervals.len(), INTERVALS);
                        prop_assert_eq!(back, id);
                    }
                }
            }
            Op::RemoveInterval(pick) => {
                if interval_handles.is_empty() {
                    continue;
                }
                let (handle, slot, id) = interval_handles[pick % interval_handles.len()];
                let expected = model.intervals.remove(&slot).map(|_| id);
                prop_assert_eq!(wheel.remove_interval(handle).ok(), expected);
            }
        }
        prop_assert_eq!(wheel.len(), model.live.len() + model.intervals.len());
        match (wheel.next_deadline(), model.earliest_fire_instant()) {
            (None, None) => {}
            (Some(at), Some(earliest)) => prop_assert!(at <= earliest.max(wheel.now())),
            (got, want) => prop_assert!(false, "next_deadline {:?}, model {:?}", got, want),
        }
    }
    Ok(())
}

/// Model slot keys are positions in `interval_handles`; a handle that is
/// still live must not already be known there.
fn handle_slot(known: &[(IntervalHandle, u32, u64)], handle: IntervalHandle) -> u32 {
    known
        .iter()
        .find(|(h, _, _)| *h == handle)
        .map_or(u32::MAX, |(_, slot, _)| *slot)
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

/// A bigger deterministic run: many timers, random cancels, stepped advance.
#[test]
fn many_timers_match_model() {
    let mut ops = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
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
