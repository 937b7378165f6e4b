//! mio's documented behaviour, replayed: register, reregister with new
//! interest, deregister then no events, edge-triggered reporting, event
//! capacity, wakers, and the error cases.

mod common;

use std::time::Duration;

use percore_poll::{Error, Events, Interest, Poll, Ready, Registration, Token, Waker};

const NOW: Option<Duration> = Some(Duration::ZERO);

fn tokens(events: &Events) -> Vec<Token> {
    events.iter().map(|e| e.token()).collect()
}

fn registered(poll: &Poll, token: Token, interest: Interest) -> Registration {
    let mut r = Registration::new();
    poll.registry().register(&mut r, token, interest).unwrap();
    r
}

#[test]
fn register_then_signal_reports_the_token_and_readiness() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let a = registered(&poll, Token(1), Interest::READABLE);
    let b = registered(&poll, Token(2), Interest::WRITABLE);
    a.signal().unwrap().set(Ready::READABLE).unwrap();
    b.signal().unwrap().set(Ready::WRITABLE).unwrap();
    poll.poll(&mut events, NOW).unwrap();
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.token(), e.is_readable(), e.is_writable()))
        .collect();
    assert_eq!(got, [(Token(1), true, false), (Token(2), false, true)]);
}

#[test]
fn edge_triggered_one_event_per_edge() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let r = registered(&poll, Token(0), Interest::READABLE);
    let s = r.signal().unwrap();
    for _ in 0..100 {
        s.set(Ready::READABLE).unwrap();
    }
    poll.poll(&mut events, NOW).unwrap();
    assert_eq!(tokens(&events), [Token(0)], "coalesced");
    poll.poll(&mut events, NOW).unwrap();
    assert!(events.is_empty(), "no new edge");
    s.set(Ready::READABLE).unwrap();
    poll.poll(&mut events, NOW).unwrap();
    assert_eq!(tokens(&events), [Token(0)], "new edge after the take");
}

#[test]
fn readiness_outside_interest_is_not_reported() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let r = registered(&poll, Token(0), Interest::READABLE);
    r.signal()
        .unwrap()
        .set(Ready::WRITABLE | Ready::PRIORITY)
        .unwrap();
    poll.poll(&mut events, NOW).unwrap();
    assert!(events.is_empty());
}

#[test]
fn reregister_with_new_interest_reports_latched_readiness() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let mut r = registered(&poll, Token(0), Interest::READABLE);
    r.signal().unwrap().set(Ready::WRITABLE).unwrap();
    poll.poll(&mut events, NOW).unwrap();
    assert!(events.is_empty());
    poll.registry()
        .reregister(&mut r, Token(7), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    poll.poll(&mut events, NOW).unwrap();
    let e = events.iter().next().expect("writable edge after re-arm");
    assert_eq!(e.token(), Token(7));
    assert!(e.is_writable() && !e.is_readable());
    // New edges carry the new token.
    r.signal().unwrap().set(Ready::READABLE).unwrap();
    poll.poll(&mut events, NOW).unwrap();
    assert_eq!(tokens(&events), [Token(7)]);
}

#[test]
fn reregister_to_narrower_interest_filters_queued_readiness() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let mut r = registered(&poll, Token(0), Interest::READABLE | Interest::WRITABLE);
    r.signal().unwrap().set(Ready::WRITABLE).unwrap();
    poll.registry()
        .reregister(&mut r, Token(0), Interest::READABLE)
        .unwrap();
    poll.poll(&mut events, NOW).unwrap();
    assert!(events.is_empty());
}

#[test]
fn deregister_then_no_events_even_if_queued_before() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let mut r = registered(&poll, Token(0), Interest::READABLE);
    let signal = r.signal().unwrap().clone();
    signal.set(Ready::READABLE).unwrap();
    poll.registry().deregister(&mut r).unwrap();
    assert_eq!(signal.set(Ready::READABLE), Err(Error::NotRegistered));
    poll.poll(&mut events, NOW).unwrap();
    assert!(events.is_empty());
    // The slot is reused; the stale signal still cannot touch it.
    let fresh = registered(&poll, Token(1), Interest::READABLE);
    assert_eq!(signal.set(Ready::READABLE), Err(Error::NotRegistered));
    poll.poll(&mut events, NOW).unwrap();
    assert!(events.is_empty());
    fresh.signal().unwrap().set(Ready::READABLE).unwrap();
    poll.poll(&mut events, NOW).unwrap();
    assert_eq!(tokens(&events), [Token(1)]);
}

#[test]
fn closed_and_error_bits() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let rd = registered(&poll, Token(0), Interest::READABLE);
    let wr = registered(&poll, Token(1), Interest::WRITABLE);
    let pr = registered(&poll, Token(2), Interest::PRIORITY);
    rd.signal().unwrap().set(Ready::READ_CLOSED).unwrap();
    wr.signal()
        .unwrap()
        .set(Ready::ERROR | Ready::WRITE_CLOSED)
        .unwrap();
    pr.signal().unwrap().set(Ready::PRIORITY).unwrap();
    poll.poll(&mut events, NOW).unwrap();
    let e: Vec<_> = events.iter().collect();
    assert_eq!(e.len(), 3);
    assert!(e[0].is_read_closed() && !e[0].is_error());
    assert!(e[1].is_error() && e[1].is_write_closed() && !e[1].is_read_closed());
    assert!(e[2].is_priority() && !e[2].is_readable());
    assert!(!e[2].is_aio() && !e[2].is_lio());
}

#[test]
fn events_capacity_limits_each_poll_and_keeps_the_rest() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    let regs: Vec<_> = (0..10)
        .map(|i| registered(&poll, Token(i), Interest::READABLE))
        .collect();
    for r in &regs {
        r.signal().unwrap().set(Ready::READABLE).unwrap();
    }
    let mut seen = Vec::new();
    for expected in [4, 4, 2, 0] {
        poll.poll(&mut events, NOW).unwrap();
        assert_eq!(events.iter().len(), expected);
        seen.extend(tokens(&events));
    }
    assert_eq!(seen, (0..10).map(Token).collect::<Vec<_>>(), "FIFO order");
}

#[test]
fn registration_errors() {
    let poll = Poll::with_capacity(2).unwrap();
    let other = Poll::new().unwrap();
    let mut r = registered(&poll, Token(0), Interest::READABLE);
    let reg = poll.registry();
    assert_eq!(
        reg.register(&mut r, Token(0), Interest::READABLE),
        Err(Error::AlreadyRegistered)
    );
    assert_eq!(
        other
            .registry()
            .reregister(&mut r, Token(0), Interest::READABLE),
        Err(Error::ForeignRegistry)
    );
    assert_eq!(
        other.registry().deregister(&mut r),
        Err(Error::ForeignRegistry)
    );
    let _w = Waker::new(reg, Token(1)).unwrap();
    assert_eq!(Waker::new(reg, Token(2)).unwrap_err(), Error::Full);
    let mut unregistered = Registration::new();
    assert_eq!(reg.deregister(&mut unregistered), Err(Error::NotRegistered));
    reg.deregister(&mut r).unwrap();
    assert_eq!(
        reg.reregister(&mut r, Token(0), Interest::READABLE),
        Err(Error::NotRegistered)
    );
    assert!(
        Waker::new(reg, Token(2)).is_ok(),
        "deregistered slot is free again"
    );
    assert_eq!(Poll::with_capacity(0).unwrap_err(), Error::InvalidCapacity);
}

#[test]
fn dropped_waker_slot_is_reclaimed_by_poll() {
    let mut poll = Poll::with_capacity(1).unwrap();
    let mut events = Events::with_capacity(4);
    let waker = Waker::new(poll.registry(), Token(9)).unwrap();
    waker.wake().unwrap();
    drop(waker);
    assert_eq!(
        Waker::new(poll.registry(), Token(1)).unwrap_err(),
        Error::Full
    );
    poll.poll(&mut events, NOW).unwrap();
    assert!(
        events.is_empty(),
        "a dropped waker's pending wake is discarded"
    );
    let waker = Waker::new(poll.registry(), Token(1)).unwrap();
    waker.wake().unwrap();
    poll.poll(&mut events, NOW).unwrap();
    assert_eq!(tokens(&events), [Token(1)]);
}

#[test]
fn waker_wakes_a_blocked_poll_from_another_thread() {
    let mut poll = common::thread_poll(8);
    let mut events = Events::with_capacity(4);
    let waker = std::sync::Arc::new(Waker::new(poll.registry(), Token(3)).unwrap());
    for _ in 0..50 {
        let w = waker.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(200));
            w.wake().unwrap();
        });
        poll.poll(&mut events, None).unwrap();
        assert_eq!(tokens(&events), [Token(3)]);
        assert!(events.iter().next().unwrap().is_readable());
        t.join().unwrap();
    }
}

#[test]
fn timed_poll_with_nothing_ready_returns_empty() {
    let mut poll = common::thread_poll(8);
    let mut events = Events::with_capacity(4);
    let _r = registered(&poll, Token(0), Interest::READABLE);
    poll.poll(&mut events, Some(Duration::from_millis(1)))
        .unwrap();
    assert!(events.is_empty());
    let mut spin = Poll::new().unwrap();
    spin.poll(&mut events, Some(Duration::from_millis(1)))
        .unwrap();
    assert!(events.is_empty());
}

#[test]
fn boxed_and_borrowed_sources_register() {
    let poll = Poll::new().unwrap();
    let mut boxed: Box<Registration> = Box::default();
    poll.registry()
        .register(&mut boxed, Token(0), Interest::READABLE)
        .unwrap();
    let mut inner = Registration::new();
    let mut borrowed = &mut inner;
    poll.registry()
        .register(&mut borrowed, Token(1), Interest::WRITABLE)
        .unwrap();
    assert!(inner.signal().is_some());
}
