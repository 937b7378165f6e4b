//! Proptest: one core pair driven by random operations against a simple
//! model (a bounded `VecDeque` for the ring plus an unbounded one for the
//! overflow queue). Every answer and every delivered message must match.

use std::collections::VecDeque;

use percore_proto::{Bus, CoreId, Delivery, Message, SendError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Send,
    SendOrQueue,
    Batch(usize),
    Flush,
    Drain(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Send),
        3 => Just(Op::SendOrQueue),
        1 => (0usize..6).prop_map(Op::Batch),
        2 => Just(Op::Flush),
        2 => (0usize..6).prop_map(Op::Drain),
    ]
}

/// What the bus should do, with the ring's capacity `cap`.
struct Model {
    cap: usize,
    ring: VecDeque<u64>,
    overflow: VecDeque<u64>,
}

impl Model {
    fn room(&self) -> bool {
        self.overflow.is_empty() && self.ring.len() < self.cap
    }
}

fn msg(n: u64) -> Message {
    Message::Send { port: 1, value: n }
}

proptest! {
    #[test]
    fn pair_matches_the_model(cap_log in 0u32..4, ops in proptest::collection::vec(op(), 1..200)) {
        let cap = 1usize << cap_log;
        let mut eps = Bus::new(2, cap).unwrap();
        let (to, mut next) = (CoreId(1), 0u64);
        let mut m = Model { cap, ring: VecDeque::new(), overflow: VecDeque::new() };
        for op in ops {
            match op {
                Op::Send => {
                    let got = eps[0].send(to, msg(next));
                    if m.room() {
                        prop_assert_eq!(got, Ok(Delivery::Delivered));
                        m.ring.push_back(next);
                    } else {
                        prop_assert_eq!(got, Err(SendError::Full(msg(next))));
                    }
                }
                Op::SendOrQueue => {
                    let got = eps[0].send_or_queue(to, msg(next)).unwrap();
                    if m.room() {
                        prop_assert_eq!(got, Delivery::Delivered);
                        m.ring.push_back(next);
                    } else {
                        prop_assert_eq!(got, Delivery::Queued);
                        m.overflow.push_back(next);
                    }
                }
                Op::Batch(n) => {
                    let batch: Vec<_> = (0..n as u64).map(|i| msg(next + i)).collect();
                    let sent = eps[0].send_batch(to, &batch).unwrap().sent;
                    let want = if m.overflow.is_empty() { n.min(cap - m.ring.len()) } else { 0 };
                    prop_assert_eq!(sent, want);
                    m.ring.extend(next..next + sent as u64);
                    next += n as u64;
                }
                Op::Flush => {
                    prop_assert!(eps[0].flush().is_empty());
                    while m.ring.len() < cap {
                        let Some(v) = m.overflow.pop_front() else { break };
                        m.ring.push_back(v);
                    }
                }
                Op::Drain(k) => {
                    let mut got = Vec::new();
                    eps[1].drain(k, |from, x| got.push((from, x)));
                    let want: Vec<_> = (0..k.min(m.ring.len()))
                        .map(|_| (CoreId(0), msg(m.ring.pop_front().unwrap())))
                        .collect();
                    prop_assert_eq!(got, want);
                }
            }
            next += 1;
            let s = eps[0].stats();
            prop_assert_eq!(s.overflow_pending, m.overflow.len() as u64);
        }
    }
}
