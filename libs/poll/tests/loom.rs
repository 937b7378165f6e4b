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

use loom::sync::{Arc, Notify};
use loom::thread;
use percore_poll::{Events, Interest, Park, Poll, Ready, Registration, Token, Waker};

const NOW: Option<Duration> = Some(Duration::ZERO);

/// Parks the poller on a loom `Notify` (a permit: a notify before the wait
/// makes the wait return). Not `loom::thread::park`: loom 0.7 aborts when a
/// thread blocked in `join` is unparked (tokio-rs/loom#249), and a late
/// unpark is legal here. A lost wake-up leaves the poller waiting with every
/// other thread finished, which loom reports as a deadlock.
struct LoomPark(Notify);

impl LoomPark {
    fn new() -> Self {
        Self(Notify::new())
    }
}

impl Park for LoomPark {
    fn park(&self, _timeout: Option<Duration>) {
        self.0.wait();
    }
    fn unpark(&self) {
        self.0.notify();
    }
}

fn setup(capacity: usize) -> (Poll, Registration) {
    let poll = Poll::with_park(capacity, LoomPark::new()).unwrap();
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

/// The park of an outer event loop: the loop halts on the same permit
/// the poll's signallers unpark.
struct OuterPark(Arc<Notify>);

impl Park for OuterPark {
    fn park(&self, _timeout: Option<Duration>) {
        self.0.wait();
    }
    fn unpark(&self) {
        self.0.notify();
    }
}

/// An outer event loop (the kernel's reactor) that waits through
/// `prepare_sleep` + its own halt never sleeps through a signal: either
/// `prepare_sleep` sees the queued readiness, or the signaller sees the
/// waiting flag and unparks. A lost wake-up is a loom deadlock.
#[test]
fn external_loop_wait_is_always_woken() {
    loom::model(|| {
        let halt = Arc::new(Notify::new());
        let mut poll = Poll::with_park(1, OuterPark(halt.clone())).unwrap();
        let mut r = Registration::new();
        poll.registry()
            .register(&mut r, Token(1), Interest::READABLE)
            .unwrap();
        let signal = r.signal().unwrap().clone();
        let t = thread::spawn(move || signal.set(Ready::READABLE).unwrap());
        let mut events = Events::with_capacity(4);
        while count(&mut poll, &mut events) == 0 {
            if poll.prepare_sleep() {
                halt.wait();
            }
            poll.end_sleep();
        }
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
        let mut poll = Poll::with_park(1, LoomPark::new()).unwrap();
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

#[test]
fn reregister_racing_a_signal_reports_the_edge_once() {
    loom::model(|| {
        let (mut poll, mut r) = setup(1);
        let signal = r.signal().unwrap().clone();
        let t = thread::spawn(move || signal.set(Ready::WRITABLE).unwrap());
        // The edge arrives before or after the interest widens: either way
        // it is reported once (queued by the signal or by the re-arm).
        poll.registry()
            .reregister(&mut r, Token(4), Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        t.join().unwrap();
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, NOW).unwrap();
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.token(), e.is_writable()))
            .collect();
        assert_eq!(got, [(Token(4), true)]);
        assert_eq!(count(&mut poll, &mut events), 0);
    });
}

#[test]
fn two_signallers_wake_a_parked_poller() {
    loom::model(|| {
        let mut poll = Poll::with_park(2, LoomPark::new()).unwrap();
        let mut a = Registration::new();
        let mut b = Registration::new();
        poll.registry()
            .register(&mut a, Token(1), Interest::READABLE)
            .unwrap();
        poll.registry()
            .register(&mut b, Token(2), Interest::READABLE)
            .unwrap();
        let sa = a.signal().unwrap().clone();
        let sb = b.signal().unwrap().clone();
        let ta = thread::spawn(move || sa.set(Ready::READABLE).unwrap());
        let tb = thread::spawn(move || sb.set(Ready::READABLE).unwrap());
        let mut events = Events::with_capacity(4);
        let mut seen = 0;
        while seen < 2 {
            poll.poll(&mut events, None).unwrap();
            seen += events.iter().len();
        }
        assert_eq!(seen, 2);
        ta.join().unwrap();
        tb.join().unwrap();
    });
}
