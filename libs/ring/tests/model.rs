//! Property tests: random single-threaded operation sequences against a
//! simple `VecDeque` model, for every ring type.

use std::collections::VecDeque;

use percore_ring::mpsc::fanin::{self, Policy};
use percore_ring::priority::{self, Level, PriorityPushError};
use percore_ring::{ChunkError, PopError, PushError, link, mpsc, spmc, spsc};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Push(u16),
    Pop,
    WriteChunk(usize),
    ReadChunk(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u16>().prop_map(Op::Push),
            4 => Just(Op::Pop),
            1 => (0usize..10).prop_map(Op::WriteChunk),
            1 => (0usize..10).prop_map(Op::ReadChunk),
        ],
        0..200,
    )
}

proptest! {
    #[test]
    fn spsc_matches_model(cap in 1usize..9, ops in ops()) {
        let (mut tx, mut rx) = spsc::channel::<u16>(cap).unwrap();
        let cap = tx.capacity();
        let mut model = VecDeque::new();
        let mut next = 0u16;
        for op in ops {
            match op {
                Op::Push(v) => {
                    let r = tx.try_push(v);
                    if model.len() < cap { prop_assert_eq!(r, Ok(())); model.push_back(v); }
                    else { prop_assert_eq!(r, Err(PushError::Full(v))); }
                }
                Op::Pop => prop_assert_eq!(rx.try_pop().ok(), model.pop_front()),
                Op::WriteChunk(n) => match tx.write_chunk_uninit(n) {
                    Ok(chunk) => {
                        prop_assert!(n <= cap - model.len());
                        let vals: Vec<u16> = (0..n as u16).map(|i| next.wrapping_add(i)).collect();
                        next = next.wrapping_add(n as u16);
                        prop_assert_eq!(chunk.fill_from_iter(vals.iter().copied()), n);
                        model.extend(vals);
                    }
                    Err(ChunkError::TooFewSlots(free)) => {
                        prop_assert_eq!(free, cap - model.len());
                        prop_assert!(n > free);
                    }
                },
                Op::ReadChunk(n) => match rx.read_chunk(n) {
                    Ok(chunk) => {
                        let (a, b) = chunk.as_slices();
                        let got: Vec<u16> = a.iter().chain(b).copied().collect();
                        let want: Vec<u16> = model.drain(..n).collect();
                        prop_assert_eq!(got, want);
                        chunk.commit_all();
                    }
                    Err(ChunkError::TooFewSlots(ready)) => {
                        prop_assert_eq!(ready, model.len());
                        prop_assert!(n > ready);
                    }
                },
            }
            prop_assert_eq!(rx.slots(), model.len());
        }
    }

    /// Large rings release popped slots to the producer in runs (a
    /// quarter of the capacity): a push may find the ring full early, but
    /// by less than one run, and draining the ring releases everything.
    #[test]
    fn spsc_release_lag_is_bounded(
        cap in prop::sample::select(vec![32usize, 64, 256]),
        runs in prop::collection::vec((0usize..300, 0usize..300), 1..12),
    ) {
        let (mut tx, mut rx) = spsc::channel::<u32>(cap).unwrap();
        let batch = cap / 4;
        let mut model = VecDeque::new();
        let mut next = 0u32;
        for (pushes, pops) in runs {
            for _ in 0..pushes {
                match tx.try_push(next) {
                    Ok(()) => { prop_assert!(model.len() < cap); model.push_back(next); }
                    Err(e) => {
                        prop_assert_eq!(e.into_inner(), next);
                        prop_assert!(model.len() + batch > cap, "full with {} of {cap}", model.len());
                    }
                }
                next += 1;
                let free = tx.slots();
                prop_assert!(free <= cap - model.len() && free + batch > cap - model.len());
            }
            for _ in 0..pops {
                prop_assert_eq!(rx.try_pop().ok(), model.pop_front());
            }
        }
        while let Ok(v) = rx.try_pop() {
            prop_assert_eq!(Some(v), model.pop_front());
        }
        prop_assert!(model.is_empty());
        prop_assert_eq!(tx.slots(), cap);
    }

    /// The batched release against a FIFO model, on rings large enough to
    /// batch, with pushes that run into a full ring: every value comes out
    /// in order; the slots the consumer holds back are fewer than a batch (a
    /// quarter of the capacity, at most 256); and a consumer whose pop found the ring
    /// empty holds back nothing (a consumer that goes idle frees everything).
    #[test]
    fn spsc_release_matches_model(
        cap in prop::sample::select(vec![32usize, 64, 1024]),
        ops in prop::collection::vec(prop_oneof![
            3 => (1usize..80).prop_map(|n| (true, n)),
            3 => (1usize..80).prop_map(|n| (false, n)),
        ], 1..40),
    ) {
        let (mut tx, mut rx) = spsc::channel::<u32>(cap).unwrap();
        let max_batch = (cap / 4).clamp(1, 256);
        let mut model = VecDeque::new();
        let mut next = 0u32;
        for (push, n) in ops {
            for _ in 0..n {
                if push {
                    match tx.try_push(next) {
                        Ok(()) => { prop_assert!(model.len() < cap); model.push_back(next); next += 1; }
                        Err(e) => {
                            prop_assert_eq!(e.into_inner(), next);
                            prop_assert!(model.len() + max_batch > cap);
                        }
                    }
                } else {
                    let got = rx.try_pop().ok();
                    prop_assert_eq!(got, model.pop_front());
                    if got.is_none() {
                        prop_assert_eq!(tx.slots(), cap - model.len(), "idle consumer holds slots back");
                    }
                }
                let held = cap - model.len() - tx.slots();
                prop_assert!(held < max_batch, "{held} held back, batch {max_batch}");
            }
        }
        while let Ok(v) = rx.try_pop() {
            prop_assert_eq!(Some(v), model.pop_front());
        }
        prop_assert!(model.is_empty());
        prop_assert_eq!(tx.slots(), cap);
    }

    #[test]
    fn mpsc_cas_matches_model(cap in 1usize..9, ops in ops()) {
        let (mut tx, mut rx) = mpsc::cas::channel::<u16>(cap).unwrap();
        let cap = tx.capacity();
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(v) => {
                    let r = tx.try_push(v);
                    if model.len() < cap { prop_assert_eq!(r, Ok(())); model.push_back(v); }
                    else { prop_assert_eq!(r, Err(PushError::Full(v))); }
                }
                _ => prop_assert_eq!(rx.try_pop().ok(), model.pop_front()),
            }
        }
    }

    #[test]
    fn spmc_work_matches_model(cap in 1usize..9, ops in ops()) {
        let (mut tx, rx) = spmc::work::channel::<u16>(cap).unwrap();
        let mut rxs = [rx.clone(), rx];
        let cap = tx.capacity();
        let mut model = VecDeque::new();
        for (k, op) in ops.into_iter().enumerate() {
            match op {
                Op::Push(v) => {
                    let r = tx.try_push(v);
                    if model.len() < cap { prop_assert_eq!(r, Ok(())); model.push_back(v); }
                    else { prop_assert_eq!(r, Err(PushError::Full(v))); }
                }
                _ => prop_assert_eq!(rxs[k % 2].try_pop().ok(), model.pop_front()),
            }
        }
    }

    #[test]
    fn link_matches_model(ops in ops()) {
        let (mut tx, mut rx) = link::channel::<u16>();
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(v) => { tx.push(v); model.push_back(v); }
                Op::WriteChunk(n) => for i in 0..n as u16 { tx.push(i); model.push_back(i); },
                _ => prop_assert_eq!(rx.try_pop().ok(), model.pop_front()),
            }
        }
    }

    #[test]
    fn fanin_matches_model(cap in 1usize..5, ops in prop::collection::vec((0usize..3, any::<Option<u16>>()), 0..200), fair in any::<bool>()) {
        let policy = if fair { Policy::Fair } else { Policy::Priority };
        let (mut txs, mut inbox) = fanin::channel::<u16>(3, cap, policy).unwrap();
        let cap = txs[0].capacity();
        let mut model: [VecDeque<u16>; 3] = Default::default();
        let mut next = 0usize;
        for (input, op) in ops {
            match op {
                Some(v) => {
                    let r = txs[input].try_push(v);
                    if model[input].len() < cap { prop_assert_eq!(r, Ok(())); model[input].push_back(v); }
                    else { prop_assert_eq!(r, Err(PushError::Full(v))); }
                }
                None => {
                    let start = if fair { next } else { 0 };
                    let pick = (0..3).map(|k| (start + k) % 3).find(|&i| !model[i].is_empty());
                    let want = pick.map(|i| { next = (i + 1) % 3; (fanin::InputId(i), model[i].pop_front().unwrap()) });
                    prop_assert_eq!(inbox.select(), want);
                }
            }
        }
    }

    #[test]
    fn priority_matches_model(cap in 1usize..5, ops in prop::collection::vec((0u8..5, any::<Option<u16>>()), 0..200)) {
        let (mut tx, mut rx) = priority::channel::<u16>(4, cap).unwrap();
        let cap = cap.next_power_of_two();
        let mut model: [VecDeque<u16>; 4] = Default::default();
        for (level, op) in ops {
            match op {
                Some(v) => {
                    let r = tx.try_push(Level(level), v);
                    let l = level as usize;
                    if l >= 4 { prop_assert_eq!(r, Err(PriorityPushError::NoSuchLevel(v))); }
                    else if model[l].len() < cap { prop_assert_eq!(r, Ok(())); model[l].push_back(v); }
                    else { prop_assert_eq!(r, Err(PriorityPushError::Full(v))); }
                }
                None => {
                    let want = (0..4).rev().find(|&l| !model[l].is_empty())
                        .map(|l| (Level(l as u8), model[l].pop_front().unwrap()));
                    prop_assert_eq!(rx.try_pop().ok(), want);
                }
            }
        }
        for l in (0..4).rev() {
            while let Some(v) = model[l].pop_front() {
                prop_assert_eq!(rx.try_pop(), Ok((Level(l as u8), v)));
            }
        }
        prop_assert_eq!(rx.try_pop(), Err(PopError::Empty));
    }

    /// Broadcast with subscribers joining and leaving: each live subscriber
    /// sees exactly the messages published since it joined, and the
    /// publisher is full exactly when the slowest live subscriber is a lap
    /// behind.
    #[test]
    fn broadcast_matches_model(cap in 1usize..5, ops in prop::collection::vec((0usize..4, 0u8..4), 0..200)) {
        let mut publisher = spmc::broadcast::create::<u32>(cap, 3).unwrap();
        let cap = publisher.capacity();
        let mut subs: Vec<Option<(spmc::broadcast::Subscriber<u32>, VecDeque<u32>)>> = vec![None, None, None];
        let mut next = 0u32;
        for (who, what) in ops {
            match (who, what) {
                (3, _) => {
                    let lag = subs.iter().flatten().map(|(_, m)| m.len()).max().unwrap_or(0);
                    let r = publisher.try_publish(next);
                    if lag < cap {
                        prop_assert_eq!(r, Ok(()));
                        subs.iter_mut().flatten().for_each(|(_, m)| m.push_back(next));
                    } else {
                        prop_assert_eq!(r, Err(PushError::Full(next)));
                    }
                    next += 1;
                }
                (i, 0) => {
                    if subs[i].is_none() {
                        subs[i] = Some((publisher.subscribe().unwrap(), VecDeque::new()));
                    } else {
                        subs[i] = None; // leave
                    }
                }
                (i, _) => {
                    if let Some((s, m)) = subs[i].as_mut() {
                        prop_assert_eq!(s.try_recv(), m.pop_front());
                    }
                }
            }
            prop_assert_eq!(publisher.subscribers(), subs.iter().flatten().count());
        }
    }
}
