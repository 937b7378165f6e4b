//! Stress tests on real threads: every message is delivered exactly once and
//! in order per producer (sequence numbers), intact (a checksum per message),
//! for every ring type, at capacities 1, 2, 3 (rounded to 4) and 1024.
//!
//! `PERCORE_STRESS=long` multiplies the message count by 200.

use std::thread;

use percore_ring::mpsc::fanin::{self, Policy};
use percore_ring::priority::{self, Level};
use percore_ring::wait::SpinThen;
use percore_ring::{Receiver, Sender, link, mpsc, spmc, spsc};

const CAPS: [usize; 4] = [1, 2, 3, 1024];

fn messages() -> u32 {
    match std::env::var("PERCORE_STRESS").as_deref() {
        Ok("long") => 1_000_000,
        _ => 20_000,
    }
}

fn wait() -> SpinThen<fn()> {
    SpinThen::new(32, thread::yield_now)
}

/// A message: who sent it, its sequence number, and a checksum of both.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Msg {
    producer: u32,
    seq: u32,
    check: u64,
}

fn checksum(producer: u32, seq: u32) -> u64 {
    // splitmix64 of the pair: any torn or mixed-up message fails the check.
    let mut z = (u64::from(producer) << 32 | u64::from(seq)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn msg(producer: u32, seq: u32) -> Msg {
    Msg {
        producer,
        seq,
        check: checksum(producer, seq),
    }
}

/// Checks per-producer order, integrity and exactly-once delivery.
struct Checker {
    next: Vec<u32>,
}

impl Checker {
    fn new(producers: usize) -> Self {
        Checker {
            next: vec![0; producers],
        }
    }
    fn see(&mut self, m: Msg) {
        assert_eq!(
            m.check,
            checksum(m.producer, m.seq),
            "corrupt message {m:?}"
        );
        let next = &mut self.next[m.producer as usize];
        assert_eq!(
            m.seq, *next,
            "out of order or duplicate from producer {}",
            m.producer
        );
        *next += 1;
    }
    fn total(&self) -> u64 {
        self.next.iter().map(|&n| u64::from(n)).sum()
    }
    fn finish(&self, per_producer: u32) {
        assert!(
            self.next.iter().all(|&n| n == per_producer),
            "lost messages: {:?}",
            self.next
        );
    }
}

/// Runs `producers` threads pushing `n` messages each into `txs`, and
/// drains `rx` on this thread.
fn run<S: Sender<Msg> + Send, R: Receiver<Msg>>(txs: Vec<S>, mut rx: R) {
    let n = messages();
    let producers = txs.len();
    let mut checker = Checker::new(producers);
    thread::scope(|s| {
        for (p, mut tx) in txs.into_iter().enumerate() {
            s.spawn(move || (0..n).for_each(|i| tx.push(msg(p as u32, i), &mut wait())));
        }
        while checker.total() < u64::from(n) * producers as u64 {
            checker.see(rx.pop(&mut wait()));
        }
    });
    assert!(rx.try_pop().is_err(), "extra message");
    checker.finish(n);
}

#[test]
fn spsc_stress() {
    for cap in CAPS {
        let (tx, rx) = spsc::channel(cap).unwrap();
        run(vec![tx], rx);
    }
}

#[test]
fn spsc_chunk_stress() {
    let n = messages();
    for cap in CAPS {
        let (mut tx, mut rx) = spsc::channel::<Msg>(cap).unwrap();
        let cap = tx.capacity();
        let mut checker = Checker::new(1);
        thread::scope(|s| {
            s.spawn(move || {
                let mut i = 0;
                while i < n {
                    let want = ((n - i) as usize).min(1 + i as usize % 7).min(cap);
                    match tx.write_chunk_uninit(want) {
                        Ok(chunk) => i += chunk.fill_from_iter((i..n).map(|k| msg(0, k))) as u32,
                        Err(_) => thread::yield_now(),
                    }
                }
            });
            while checker.total() < u64::from(n) {
                let k = rx.slots();
                if k == 0 {
                    thread::yield_now();
                    continue;
                }
                let chunk = rx.read_chunk(k).unwrap();
                let (a, b) = chunk.as_slices();
                a.iter().chain(b).for_each(|m| checker.see(*m));
                chunk.commit_all();
            }
        });
        checker.finish(n);
    }
}

#[test]
fn mpsc_cas_stress() {
    for cap in CAPS {
        let (tx, rx) = mpsc::cas::channel(cap).unwrap();
        run(vec![tx.clone(), tx.clone(), tx], rx);
    }
}

#[test]
fn mpsc_fanin_stress() {
    for cap in CAPS {
        for policy in [Policy::Fair, Policy::Priority] {
            let (txs, rx) = fanin::channel(3, cap, policy).unwrap();
            run(txs, rx);
        }
    }
}

#[test]
fn link_stress() {
    let (tx, rx) = link::channel();
    run(vec![tx], rx);
}

#[test]
fn spmc_work_stress() {
    let n = messages();
    for cap in CAPS {
        let (mut tx, rx) = spmc::work::channel::<Msg>(cap).unwrap();
        let got: Vec<Vec<Msg>> = thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let mut rx = rx.clone();
                    s.spawn(move || {
                        let mut got = Vec::new();
                        loop {
                            let m = rx.pop(&mut wait());
                            if m.producer == u32::MAX {
                                return got;
                            }
                            got.push(m);
                        }
                    })
                })
                .collect();
            for i in 0..n {
                tx.push(msg(0, i), &mut wait());
            }
            for _ in 0..2 {
                tx.push(
                    Msg {
                        producer: u32::MAX,
                        ..Msg::default()
                    },
                    &mut wait(),
                );
            }
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Each consumer sees increasing sequence numbers; together, all of them once.
        let mut all = Vec::new();
        for part in got {
            assert!(part.windows(2).all(|w| w[0].seq < w[1].seq));
            all.extend(part);
        }
        all.sort_by_key(|m| m.seq);
        let mut checker = Checker::new(1);
        all.into_iter().for_each(|m| checker.see(m));
        checker.finish(n);
    }
}

#[test]
fn spmc_broadcast_stress() {
    let n = messages();
    for cap in CAPS {
        let mut publisher = spmc::broadcast::create::<Msg>(cap, 3).unwrap();
        let subs = [
            publisher.subscribe().unwrap(),
            publisher.subscribe().unwrap(),
        ];
        thread::scope(|s| {
            for mut sub in subs {
                s.spawn(move || {
                    let mut checker = Checker::new(1);
                    while checker.total() < u64::from(n) {
                        let chunk = sub.read_available();
                        let (a, b) = chunk.as_slices();
                        a.iter().chain(b).for_each(|m| checker.see(*m));
                        chunk.release();
                        thread::yield_now();
                    }
                    checker.finish(n);
                });
            }
            // A subscriber that joins and leaves repeatedly must not disturb
            // the others nor stall the publisher.
            let mut churn = None;
            for i in 0..n {
                if i % 64 == 0 {
                    churn = match churn.take() {
                        None => publisher.subscribe().ok(),
                        Some(_) => None,
                    };
                }
                if let Some(c) = churn.as_mut() {
                    while c.try_recv().is_some() {}
                }
                let mut m = msg(0, i);
                while let Err(e) = publisher.try_publish(m) {
                    m = e.into_inner();
                    if let Some(c) = churn.as_mut() {
                        while c.try_recv().is_some() {}
                    }
                    thread::yield_now();
                }
            }
        });
    }
}

#[test]
fn priority_stress() {
    let n = messages();
    for cap in CAPS {
        let (mut tx, mut rx) = priority::channel::<Msg>(3, cap).unwrap();
        let mut checkers = [Checker::new(1), Checker::new(1), Checker::new(1)];
        thread::scope(|s| {
            s.spawn(move || {
                for i in 0..n {
                    let level = (i % 3) as u8;
                    let mut m = msg(0, i / 3);
                    while let Err(e) = tx.try_push(Level(level), m) {
                        m = match e {
                            priority::PriorityPushError::Full(m) => m,
                            priority::PriorityPushError::NoSuchLevel(_) => unreachable!(),
                        };
                        thread::yield_now();
                    }
                }
            });
            let mut got = 0;
            while got < n {
                match rx.try_pop() {
                    Ok((Level(l), m)) => {
                        checkers[usize::from(l)].see(m);
                        got += 1;
                    }
                    Err(_) => thread::yield_now(),
                }
            }
        });
        assert_eq!(
            checkers.iter().map(Checker::total).sum::<u64>(),
            u64::from(n)
        );
    }
}
