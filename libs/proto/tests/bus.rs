//! Behaviour of the bus on one thread: backpressure, overflow, fairness,
//! broadcast, bad input.

mod common;

use common::drain_all;
use percore_proto::{Bus, BusError, CoreId, Delivery, Message, RouteError, SendError, TaskRef};

fn seq(n: u64) -> Message {
    Message::Send { port: 0, value: n }
}

fn value(m: Message) -> u64 {
    match m {
        Message::Send { value, .. } => value,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn full_ring_hands_the_message_back_and_it_goes_through_later() {
    let mut eps = Bus::new(2, 2).unwrap();
    assert!(eps[0].send(CoreId(1), seq(0)).is_ok());
    assert!(eps[0].send(CoreId(1), seq(1)).is_ok());
    let err = eps[0].send(CoreId(1), seq(2)).unwrap_err();
    assert_eq!(err, SendError::Full(seq(2)));
    assert_eq!(eps[0].stats().full, 1);

    let mut got = Vec::new();
    assert_eq!(eps[1].drain(1, |_, m| got.push(value(m))), 1);
    assert_eq!(
        eps[0].send(CoreId(1), err.into_inner()),
        Ok(Delivery::Delivered)
    );
    drain_all(&mut eps[1], |_, m| got.push(value(m)));
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(eps[0].stats().sent, 3);
    assert_eq!(eps[1].stats().received, 3);
}

#[test]
fn overflow_messages_arrive_in_order_after_flush() {
    let mut eps = Bus::new(2, 4).unwrap();
    for i in 0..100 {
        let d = eps[0].send_or_queue(CoreId(1), seq(i)).unwrap();
        assert_eq!(
            d,
            if i < 4 {
                Delivery::Delivered
            } else {
                Delivery::Queued
            }
        );
    }
    // While older messages wait, a plain send must not overtake them.
    assert_eq!(
        eps[0].send(CoreId(1), seq(999)),
        Err(SendError::Full(seq(999)))
    );
    let b = eps[0].send_batch(CoreId(1), &[seq(999)]).unwrap();
    assert_eq!(b.sent, 0);
    let s = eps[0].stats();
    assert_eq!(
        (s.overflow_queued, s.overflow_pending, s.overflow_peak),
        (96, 96, 96)
    );

    let mut got = Vec::new();
    while got.len() < 100 {
        drain_all(&mut eps[1], |_, m| got.push(value(m)));
        assert!(eps[0].flush().is_empty());
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    let s = eps[0].stats();
    assert_eq!((s.overflow_pending, s.overflow_peak, s.sent), (0, 96, 100));
    // The queue is empty again: plain sends go straight through.
    assert_eq!(eps[0].send(CoreId(1), seq(100)), Ok(Delivery::Delivered));
}

#[test]
fn a_flooding_peer_does_not_starve_another() {
    let mut eps = Bus::new(3, 1024).unwrap();
    while eps[1].send(CoreId(0), seq(1)).is_ok() {}
    assert!(eps[2].send(CoreId(0), seq(2)).is_ok());

    // One drain call of 64: the quiet peer is served within the first lap.
    let mut order = Vec::new();
    eps[0].drain(64, |from, _| order.push(from));
    let pos = order.iter().position(|&c| c == CoreId(2));
    assert!(pos.is_some_and(|p| p <= 32), "core 2 starved: {pos:?}");

    // drain(1) alternates between peers that both have work.
    assert!(eps[2].send(CoreId(0), seq(2)).is_ok());
    assert!(eps[2].send(CoreId(0), seq(2)).is_ok());
    let mut firsts = Vec::new();
    for _ in 0..4 {
        eps[0].drain(1, |from, _| firsts.push(from));
    }
    assert_eq!(firsts.iter().filter(|&&c| c == CoreId(2)).count(), 2);
}

#[test]
fn drain_keeps_per_peer_order_and_respects_max() {
    let mut eps = Bus::new(3, 256).unwrap();
    for i in 0..200 {
        assert!(eps[1].send(CoreId(0), seq(i)).is_ok());
        assert!(eps[2].send(CoreId(0), seq(1000 + i)).is_ok());
    }
    let (mut from1, mut from2) = (Vec::new(), Vec::new());
    loop {
        let mut n = 0;
        let got = eps[0].drain(7, |from, m| {
            n += 1;
            if from == CoreId(1) {
                from1.push(value(m))
            } else {
                from2.push(value(m))
            }
        });
        assert!(got <= 7);
        assert_eq!(got, n);
        if got == 0 {
            break;
        }
    }
    assert_eq!(from1, (0..200).collect::<Vec<_>>());
    assert_eq!(from2, (1000..1200).collect::<Vec<_>>());
}

#[test]
fn broadcast_reaches_every_other_core_once() {
    let mut eps = Bus::new(4, 8).unwrap();
    assert!(eps[1].broadcast(seq(7)).unwrap().is_empty());
    for (i, ep) in eps.iter_mut().enumerate() {
        let mut got = Vec::new();
        drain_all(ep, |from, m| got.push((from, value(m))));
        let want = if i == 1 { vec![] } else { vec![(CoreId(1), 7)] };
        assert_eq!(got, want, "core {i}");
    }
    assert_eq!(eps[1].stats().broadcast, 1);
}

#[test]
fn broadcast_is_backpressured_by_the_slowest_peer() {
    let mut eps = Bus::new(3, 2).unwrap();
    eps[0].broadcast(seq(0)).unwrap();
    eps[0].broadcast(seq(1)).unwrap();
    assert_eq!(eps[0].broadcast(seq(2)), Err(SendError::Full(seq(2))));
    drain_all(&mut eps[1], |_, _| {});
    // Core 2 has not read yet: still full.
    assert_eq!(eps[0].broadcast(seq(2)), Err(SendError::Full(seq(2))));
    drain_all(&mut eps[2], |_, _| {});
    assert!(eps[0].broadcast(seq(2)).is_ok());
}

#[test]
fn sleeping_core_is_reported_once_per_sleep() {
    let mut eps = Bus::new(3, 8).unwrap();
    assert!(eps[0].prepare_sleep());
    let wake = Message::Wake { task: TaskRef(1) };
    assert_eq!(eps[1].send(CoreId(0), wake), Ok(Delivery::RingDoorbell));
    assert_eq!(eps[2].send(CoreId(0), wake), Ok(Delivery::Delivered));
    assert_eq!(eps[1].stats().doorbells, 1);
    eps[0].end_sleep();
    assert!(!eps[0].prepare_sleep(), "messages wait: must not halt");
    drain_all(&mut eps[0], |_, _| {});
    assert!(eps[0].prepare_sleep());
    let set = eps[1].broadcast(wake).unwrap();
    assert_eq!(set.iter().collect::<Vec<_>>(), [CoreId(0)]);
}

#[test]
fn pending_overflow_keeps_the_core_awake_and_flush_rings() {
    let mut eps = Bus::new(2, 1).unwrap();
    let _ = eps[0].send_or_queue(CoreId(1), seq(0)).unwrap();
    assert_eq!(
        eps[0].send_or_queue(CoreId(1), seq(1)),
        Ok(Delivery::Queued)
    );
    assert!(!eps[0].prepare_sleep(), "overflow pending: must not halt");
    drain_all(&mut eps[1], |_, _| {});
    assert!(eps[1].prepare_sleep());
    let set = eps[0].flush();
    assert_eq!(set.iter().collect::<Vec<_>>(), [CoreId(1)]);
    assert!(eps[0].prepare_sleep());
}

#[test]
fn bad_destinations_are_errors_not_panics() {
    let mut eps = Bus::new(2, 4).unwrap();
    let m = Message::Stop;
    assert_eq!(eps[0].send(CoreId(2), m), Err(SendError::NoSuchCore(m)));
    assert_eq!(
        eps[0].send(CoreId(u16::MAX), m),
        Err(SendError::NoSuchCore(m))
    );
    assert_eq!(eps[0].send(CoreId(0), m), Err(SendError::ToSelf(m)));
    assert_eq!(
        eps[0].send_or_queue(CoreId(5), m),
        Err(SendError::NoSuchCore(m))
    );
    assert_eq!(
        eps[1].send_or_queue(CoreId(1), m),
        Err(SendError::ToSelf(m))
    );
    assert_eq!(
        eps[0].send_batch(CoreId(9), &[m]),
        Err(RouteError::NoSuchCore(CoreId(9)))
    );
    assert_eq!(eps[0].stats().sent, 0);
    assert_eq!(eps[0].stats().overflow_queued, 0);
}

#[test]
fn bad_shapes_are_errors() {
    assert_eq!(Bus::new(0, 4).err(), Some(BusError::NoCores));
    assert_eq!(Bus::new(257, 4).err(), Some(BusError::TooManyCores(257)));
    assert!(matches!(Bus::new(2, 0), Err(BusError::Capacity(_))));
    assert!(matches!(
        Bus::new(2, usize::MAX),
        Err(BusError::Capacity(_))
    ));
    let mut one = Bus::new(1, 4).unwrap();
    assert!(one[0].broadcast(Message::Stop).unwrap().is_empty());
    assert_eq!(one[0].drain(8, |_, _| {}), 0);
}
