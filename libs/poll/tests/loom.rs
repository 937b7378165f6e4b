//! Model checks of the cross-core readiness protocol with loom:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p percore-poll --release --test loom
//! ```
//!
//! Each model runs every interleaving (up to the preemption bound) of a
//! signalling thread against the polling thread and checks: an edge is
//! reported exactly once, the ring never overflows under concurrent signals,
//! a parked poller is always unparked (a lost wake-up would deadlock, which
//! loom reports), deregistration wins over racing signals, and a waker dropped
//! on another core gives its slot back.
#![cfg(loom)]

use std::time::Duration;

use loom::thread;
use percore_poll::{Events, Interest, Park, Poll, Ready, Registration, Token, Waker};

const NOW: Option<Duration> = Some(Duration::ZERO);

/// Parks the poller's loom thread.
struct LoomPark(thread::Thread);

impl Park for LoomPark {
    fn park(&self, _timeout: Option<Duration>) {
        thread::park();
    }
    fn unpark(&self) {
        self.0.unpark();
    }
}

fn setup(capacity: usize) -> (Poll, Registration) {
    let poll = Poll::with_park(capacity, LoomPark(thread::current())).unwrap();
    let mut r = Registration::new();
    poll.registry()
        .register(&mut r, Token(1), Interest::READABLE)
        .unwrap();
    (poll, r)
}

fn count(poll: &mut Poll, events: &mut Events) -> usize {
    poll.poll(events, NOW).unwrap();
    events.iter().len()
}

#[test]
fn one_edge_is_reported_exactly_once() {
    loom::model(|| {
        let (mut poll, r) = setup(1);
        let signal = r.signal().unwrap().clone();
        let t = thread::spawn(move || signal.set(Ready::READABLE).unwrap());
        let mut events = Events::with_capacity(4);
        let mut total = count(&mut poll, &mut events);
        t.join().unwrap();
        total += count(&mut poll, &mut events);
        total += count(&mut poll, &mut events);
        assert_eq!(total, 1);
    });
}

#[test]
fn concurrent_signals_share_one_ring_cell() {
    loom::model(|| {
        let (mut poll, r) = setup(1);
        let a = r.signal().unwrap().clone();
        let b = a.clone();
        let ta = thread::spawn(move || a.set(Ready::READABLE).unwrap());
        let tb = thread::spawn(move || b.set(Ready::READABLE).unwrap());
        let mut events = Events::with_capacity(4);
        let mut total = count(&mut poll, &mut events);
        ta.join().unwrap();
        tb.join().unwrap();
        total += count(&mut poll, &mut events);
        // Both edges may be seen separately, or coalesced; never lost.
        assert!((1..=2).contains(&total), "total {total}");
        assert_eq!(count(&mut poll, &mut events), 0);
    });
}

#[test]
fn parked_poller_is_always_woken() {
    loom::model(|| {
        let (mut poll, r) = setup(1);
        let signal = r.signal().unwrap().clone();
        let t = thread::spawn(move || signal.set(Ready::READABLE).unwrap());
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, None).unwrap();
        assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(1)));
        t.join().unwrap();
    });
}

#[test]
fn deregister_beats_a_racing_signal() {
    loom::model(|| {
        let (mut poll, mut r) = setup(1);
        let signal = r.signal().unwrap().clone();
        let t = thread::spawn(move || {
            let _ = signal.set(Ready::READABLE);
        });
        poll.registry().deregister(&mut r).unwrap();
        // The slot is reused by a new registration that nobody signals.
        let mut fresh = Registration::new();
        poll.registry()
            .register(&mut fresh, Token(2), Interest::READABLE)
            .unwrap();
        t.join().unwrap();
        let mut events = Events::with_capacity(4);
        assert_eq!(count(&mut poll, &mut events), 0);
        fresh.signal().unwrap().set(Ready::READABLE).unwrap();
        poll.poll(&mut events, NOW).unwrap();
        let tokens: Vec<_> = events.iter().map(|e| e.token()).collect();
        assert_eq!(tokens, [Token(2)]);
    });
}

#[test]
fn waker_dropped_on_another_core_frees_its_slot() {
    loom::model(|| {
        let mut poll = Poll::with_park(1, LoomPark(thread::current())).unwrap();
        let waker = Waker::new(poll.registry(), Token(7)).unwrap();
        let t = thread::spawn(move || {
            waker.wake().unwrap();
            drop(waker);
        });
        let mut events = Events::with_capacity(4);
        let _ = count(&mut poll, &mut events);
        t.join().unwrap();
        let _ = count(&mut poll, &mut events);
        let mut r = Registration::new();
        poll.registry()
            .register(&mut r, Token(3), Interest::READABLE)
            .unwrap();
    });
}
