//! Loom models of the sleep/doorbell protocol as the bus composes it (the
//! ring and doorbell atomics of `percore-ring` switch to loom's under
//! `--cfg loom`). Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p percore-proto --release --test loom
//! ```
#![cfg(loom)]

use loom::thread;
use percore_proto::{Bus, CoreId, Endpoint, Message, TaskRef};

const WAKE: Message = Message::Wake { task: TaskRef(1) };

/// A two-core bus with rings of `capacity`: after `setup`, core 0 runs
/// `publish` (which says whether it was told to ring) while core 1 prepares
/// to halt. Checks that a core 1 that halts was rung, and hands core 1 back.
fn publish_racing_sleep(
    capacity: usize,
    setup: impl FnOnce(&mut Endpoint, &mut Endpoint),
    publish: impl FnOnce(&mut Endpoint) -> bool + Send + 'static,
) -> Endpoint {
    let mut eps = Bus::new(2, capacity).unwrap();
    let mut rx = eps.pop().unwrap();
    let mut tx = eps.pop().unwrap();
    setup(&mut tx, &mut rx);
    let h = thread::spawn(move || publish(&mut tx));
    let halts = rx.prepare_sleep();
    let rang = h.join().unwrap();
    assert!(!halts || rang, "receiver halted and nobody rang");
    rx
}

/// One sender, one receiver about to halt: if the receiver halts, the
/// sender was told to ring, and the message is there to be drained.
#[test]
fn send_racing_prepare_sleep_never_loses_the_wake_up() {
    loom::model(|| {
        let mut rx = publish_racing_sleep(
            2,
            |_, _| {},
            |tx| tx.send(CoreId(1), WAKE).unwrap().must_ring(),
        );
        rx.end_sleep();
        assert_eq!(rx.drain(4, |_, _| {}), 1);
    });
}

/// Two senders: at most one rings per announced sleep, and at least one
/// does if the receiver halts.
#[test]
fn two_senders_ring_once_for_a_halted_receiver() {
    loom::model(|| {
        let mut eps = Bus::new(3, 2).unwrap();
        let mut rx = eps.remove(0);
        let hs: Vec<_> = eps
            .into_iter()
            .map(|mut tx| thread::spawn(move || tx.send(CoreId(0), WAKE).unwrap().must_ring()))
            .collect();
        let halts = rx.prepare_sleep();
        let rings = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&r| r)
            .count();
        assert!(rings <= 1);
        assert!(!halts || rings == 1, "receiver halted and nobody rang");
    });
}

/// A broadcast racing the sleep of one subscriber.
#[test]
fn broadcast_racing_prepare_sleep_never_loses_the_wake_up() {
    loom::model(|| {
        let mut rx = publish_racing_sleep(
            2,
            |_, _| {},
            |tx| tx.broadcast(WAKE).unwrap().contains(CoreId(1)),
        );
        rx.end_sleep();
        assert_eq!(rx.drain(4, |_, _| {}), 1);
    });
}

/// Overflow flushed while the receiver goes to sleep: `flush` reports the
/// doorbell exactly when the receiver halts.
#[test]
fn flush_racing_prepare_sleep_never_loses_the_wake_up() {
    loom::model(|| {
        publish_racing_sleep(
            1,
            |tx, rx| {
                let _ = tx.send_or_queue(CoreId(1), WAKE).unwrap();
                let _ = tx.send_or_queue(CoreId(1), WAKE).unwrap(); // queued
                assert_eq!(rx.drain(1, |_, _| {}), 1);
            },
            |tx| tx.flush().contains(CoreId(1)),
        );
    });
}
