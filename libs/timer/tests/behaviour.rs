//! Edge cases the model test does not reach: unwinding callbacks, payload
//! drops, capacity limits, interval phase and the end of time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use percore_timer::{Config, Expired, InsertError, TickShift, Wheel};

fn wheel<T>(shift: u32) -> Wheel<T> {
    Wheel::new(Config::new(TickShift::new(shift).unwrap()).with_intervals(2)).unwrap()
}

#[test]
fn unwinding_callback_leaves_the_rest_armed() {
    let mut w = wheel(4);
    for d in [1, 2, 3, 4] {
        w.insert(d, d).unwrap();
    }
    let mut seen = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        w.advance(100, |e| {
            seen.push(e.deadline());
            assert_ne!(e.deadline(), 2, "boom");
        });
    }));
    assert!(result.is_err());
    assert_eq!(seen, [1, 2]);
    // The two unfired timers are still armed and fire next time, in order.
    assert_eq!(w.len(), 2);
    assert_eq!(w.next_deadline(), Some(w.now()));
    let mut rest = Vec::new();
    assert_eq!(w.advance(100, |e| rest.push(e.deadline())), 2);
    assert_eq!(rest, [3, 4]);
    assert!(w.is_empty());
}

#[test]
fn payloads_are_dropped_exactly_once() {
    let token = Rc::new(());
    {
        let mut w = wheel(0);
        let a = w.insert(10, Rc::clone(&token)).unwrap();
        w.insert(20, Rc::clone(&token)).unwrap();
        w.insert(1 << 50, Rc::clone(&token)).unwrap();
        w.add_interval(5, 5, Rc::clone(&token)).unwrap();
        assert_eq!(Rc::strong_count(&token), 5);
        drop(w.cancel(a).unwrap());
        w.advance(20, |_| {});
        assert_eq!(Rc::strong_count(&token), 3);
    }
    assert_eq!(Rc::strong_count(&token), 1);
}

#[test]
fn max_timers_is_a_hard_limit_and_slots_are_reused() {
    let config = Config::new(TickShift::new(0).unwrap())
        .with_capacity(2)
        .with_max_timers(2);
    let mut w = Wheel::new(config).unwrap();
    let a = w.insert(10, 'a').unwrap();
    w.insert(10, 'b').unwrap();
    assert_eq!(w.insert(10, 'c'), Err(InsertError::Full('c')));
    assert_eq!(w.cancel(a), Ok('a'));
    w.insert(10, 'c').unwrap();
    let mut got = Vec::new();
    w.advance(10, |e| {
        if let Expired::Oneshot { payload, .. } = e {
            got.push(payload);
        }
    });
    got.sort();
    assert_eq!(got, ['b', 'c']);
}

#[test]
fn intervals_keep_phase_when_period_is_not_a_tick_multiple() {
    // 1024 ns ticks, 1000 ns period: deadlines stay exact multiples of 1000
    // even though each fires on a tick boundary.
    let mut w = wheel(10);
    w.add_interval(1000, 1000, ()).unwrap();
    let mut deadlines = Vec::new();
    let mut now = 0;
    while now < 20_000 {
        now += 1024;
        w.advance(now, |e| match e {
            Expired::Interval {
                deadline, missed, ..
            } => {
                assert_eq!(missed, 0);
                deadlines.push(deadline);
            }
            Expired::Oneshot { .. } => unreachable!(),
        });
    }
    let expected: Vec<u64> = (1..=20).map(|k| k * 1000).collect();
    assert_eq!(deadlines, expected);
}

#[test]
fn interval_at_the_end_of_time_parks() {
    let mut w = wheel(0);
    let h = w.add_interval(u64::MAX - 10, 100, 'i').unwrap();
    assert_eq!(w.advance(u64::MAX, |_| {}), 1);
    // Its next deadline is past u64::MAX: it stays armed but never fires.
    assert_eq!(w.next_deadline(), None);
    assert_eq!(w.advance(u64::MAX, |_| {}), 0);
    assert_eq!(w.len(), 1);
    assert_eq!(w.remove_interval(h), Ok('i'));
    assert!(w.is_empty());
}

#[test]
fn overflow_timers_fire_after_the_top_level_wraps() {
    // 1 ns ticks: the six levels span 2^36 ns, so 2^40 ns is on overflow.
    let mut w = wheel(0);
    w.insert(1 << 40, "far").unwrap();
    w.insert(5, "near").unwrap();
    let mut steps = 0;
    let mut fired = Vec::new();
    while let Some(at) = w.next_deadline() {
        steps += 1;
        w.advance(at, |e| fired.push(e.deadline()));
    }
    assert_eq!(fired, [5, 1 << 40]);
    // One wake-up per overflow window and per cascade level, not per tick.
    assert!(steps < 40, "{steps} wake-ups");
}

#[test]
fn many_cancels_in_few_slots() {
    // 1000 timers in 4 slots, 900 of them cancelled: the slots hold mostly
    // tombstones, enough to start compaction half-way.
    let mut w = wheel(0);
    let handles: Vec<_> = (0..1000u64)
        .map(|i| (i, w.insert(10 + i % 4, i).unwrap()))
        .collect();
    let mut kept = Vec::new();
    for &(i, h) in &handles {
        if i % 10 == 3 {
            kept.push(i);
        } else {
            assert_eq!(w.cancel(h), Ok(i));
        }
    }
    assert_eq!(w.len(), 100);
    // Cancelling again is an error even though its entry is still there.
    assert!(w.cancel(handles[0].1).is_err());
    let mut fired = Vec::new();
    assert_eq!(
        w.advance(13, |e| {
            if let Expired::Oneshot { payload, .. } = e {
                fired.push(payload);
            }
        }),
        100
    );
    fired.sort();
    assert_eq!(fired, kept);
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn cancel_advance_reuse_rounds_match_expectation() {
    // Rounds of insert, cancel most (leaving tombstones, compacted as they
    // go), advance part way, with nodes reused from round to round.
    let mut w = wheel(0);
    let mut next = 0u64;
    let mut live: Vec<(u64, percore_timer::TimerHandle)> = Vec::new();
    for round in 0..20u64 {
        let base = round * 1_000;
        for _ in 0..200 {
            let d = base + 10 + next % 900;
            live.push((next, w.insert(d, next).unwrap()));
            next += 1;
        }
        // Cancel 3 of every 4, in an order that mixes slots.
        let mut kept = Vec::new();
        for (k, (id, h)) in live.drain(..).enumerate() {
            if k % 4 == 0 {
                kept.push((id, h));
            } else {
                assert_eq!(w.cancel(h), Ok(id));
            }
        }
        live = kept;
        let mut fired = Vec::new();
        w.advance(base + 500, |e| {
            if let Expired::Oneshot { payload, .. } = e {
                fired.push(payload);
            }
        });
        // Exactly the kept timers due by base + 500 fired.
        let mut expected: Vec<u64> = live
            .iter()
            .filter(|(id, _)| {
                let d = (id / 200) * 1_000 + 10 + id % 900;
                d <= base + 500
            })
            .map(|(id, _)| *id)
            .collect();
        fired.sort();
        expected.sort();
        assert_eq!(fired, expected);
        live.retain(|(id, _)| !expected.contains(id));
        assert_eq!(w.len(), live.len());
    }
    let rest = w.advance(u64::MAX, |_| {});
    assert_eq!(rest, live.len());
    assert!(w.is_empty());
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn one_long_jump_refiles_overflow_once() {
    // 1 ns ticks: 2^63 ns is 2^27 top-level windows away. A single advance
    // must jump to the overflow timer, not walk window by window (which
    // would take minutes in a debug build).
    let mut w = wheel(0);
    w.insert(1 << 63, "far").unwrap();
    w.insert((1 << 63) + 5, "farther").unwrap();
    let mut fired = Vec::new();
    assert_eq!(w.advance(u64::MAX - 1, |e| fired.push(e.deadline())), 2);
    assert_eq!(fired, [1 << 63, (1 << 63) + 5]);
    assert_eq!(w.now(), u64::MAX - 1);
}

#[test]
fn a_stale_handle_stays_stale_after_its_node_is_reused() {
    let mut w = wheel(0);
    let a = w.insert(1_000, 'a').unwrap();
    assert_eq!(w.cancel(a), Ok('a'));
    // The node is free at once: the next timer reuses it, while a's entry
    // is still on its slot as a tombstone.
    let b = w.insert(1_000, 'b').unwrap();
    assert_ne!(a, b);
    assert_eq!(w.cancel(a), Err(percore_timer::CancelError::Inactive));
    assert_eq!(w.len(), 1);
    // b fires once, at its deadline; a's tombstone fires nothing.
    let mut got = Vec::new();
    assert_eq!(w.advance(1_000, |e| got.push(e.deadline())), 1);
    assert_eq!(got, [1_000]);
    assert_eq!(w.cancel(b), Err(percore_timer::CancelError::Inactive));
    assert_eq!(w.cancel(a), Err(percore_timer::CancelError::Inactive));
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn a_timer_can_be_cancelled_after_its_entry_cascaded() {
    // 1 ns ticks: 5000 is on level 2 at time 0 and is cascaded to finer
    // levels as time passes (its entry is copied, its handle stays good).
    let mut w = wheel(0);
    let h = w.insert(5_000, "cascaded").unwrap();
    let other = w.insert(5_001, "other").unwrap();
    let mut steps = 0;
    while w.now() < 4_990 {
        let at = w.next_deadline().unwrap().max(w.now() + 1).min(4_990);
        assert_eq!(w.advance(at, |_| unreachable!()), 0);
        steps += 1;
    }
    assert!(steps >= 2, "{steps} steps");
    assert_eq!(w.cancel(h), Ok("cascaded"));
    assert_eq!(w.cancel(h), Err(percore_timer::CancelError::Inactive));
    let mut got = Vec::new();
    w.advance(10_000, |e| got.push(e.deadline()));
    assert_eq!(got, [5_001]);
    assert_eq!(w.cancel(other), Err(percore_timer::CancelError::Inactive));
    assert!(w.is_empty());
}

#[test]
fn a_slot_of_tombstones_makes_progress() {
    // Far timers armed and cancelled: next_deadline may name their slot
    // (it is allowed to be early), and advancing to it drops them.
    let mut w = wheel(0);
    for i in 0..100u64 {
        let h = w.insert(1 << 30 | i, i).unwrap();
        w.cancel(h).unwrap();
    }
    assert!(w.is_empty());
    // An empty wheel reports no deadline, whatever tombstones it holds.
    assert_eq!(w.next_deadline(), None);
    let keep = w.insert(1 << 31, 7).unwrap();
    let mut wakeups = 0;
    while let Some(at) = w.next_deadline() {
        wakeups += 1;
        assert!(at <= 1 << 31);
        w.advance(at, |e| assert_eq!(e.deadline(), 1 << 31));
        assert!(wakeups < 20);
    }
    assert_eq!(w.cancel(keep), Err(percore_timer::CancelError::Inactive));
}
