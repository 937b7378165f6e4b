//! Threads stand in for cores: every pair of cores exchanges messages at
//! full speed through small rings, and nothing is lost or reordered.

mod common;

use std::thread;

use common::drain_all;
use percore_proto::{Bus, CoreId, Endpoint, Message};

const CORES: usize = 4;
const PER_PAIR: u64 = 10_000;

/// Per-peer progress of one core in the ping-pong test.
#[derive(Default, Clone)]
struct Peer {
    pings_sent: u64,
    pings_seen: u64,
    pongs_seen: u64,
}

/// One core: sends `PER_PAIR` pings to every peer, answers every ping with
/// a pong (never refused: `send_or_queue`), and checks that pings and pongs
/// from each peer arrive with consecutive sequence numbers.
fn ping_pong_core(mut ep: Endpoint) -> Endpoint {
    let me = ep.id().index();
    let mut peers = vec![Peer::default(); CORES];
    let done = |p: &[Peer]| {
        p.iter()
            .enumerate()
            .all(|(i, p)| i == me || (p.pings_seen == PER_PAIR && p.pongs_seen == PER_PAIR))
    };
    while !done(&peers) || ep.stats().overflow_pending > 0 {
        for (to, peer) in peers.iter_mut().enumerate() {
            if to == me || peer.pings_sent == PER_PAIR {
                continue;
            }
            let ping = Message::Ping {
                seq: peer.pings_sent,
                sent_at: me as u64,
            };
            if ep.send(CoreId(to as u16), ping).is_ok() {
                peer.pings_sent += 1;
            }
        }
        let mut replies = Vec::new();
        let got = drain_all(&mut ep, |from, msg| {
            let peer = &mut peers[from.index()];
            match msg {
                Message::Ping { seq, sent_at } => {
                    assert_eq!((seq, sent_at), (peer.pings_seen, from.index() as u64));
                    peer.pings_seen += 1;
                    replies.push((from, Message::Pong { seq, sent_at }));
                }
                Message::Pong { seq, sent_at } => {
                    assert_eq!((seq, sent_at), (peer.pongs_seen, me as u64));
                    peer.pongs_seen += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        });
        for (to, pong) in replies {
            assert!(ep.send_or_queue(to, pong).is_ok());
        }
        let _ = ep.flush();
        if got == 0 {
            thread::yield_now();
        }
    }
    ep
}

#[test]
fn every_pair_ping_pongs_without_loss_or_reordering() {
    let eps = Bus::new(CORES, 16).unwrap();
    let handles: Vec<_> = eps
        .into_iter()
        .map(|ep| thread::spawn(move || ping_pong_core(ep)))
        .collect();
    let eps: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let peers = (CORES - 1) as u64;
    for ep in &eps {
        let s = ep.stats();
        assert_eq!(s.received, 2 * PER_PAIR * peers, "{:?}", ep.id());
        assert_eq!(s.sent, 2 * PER_PAIR * peers, "{:?}", ep.id());
        assert_eq!(s.overflow_pending, 0);
    }
}

#[test]
fn concurrent_broadcasts_reach_every_other_core_exactly_once() {
    const EACH: u64 = 2_000;
    let eps = Bus::new(CORES, 8).unwrap();
    let handles: Vec<_> = eps
        .into_iter()
        .map(|mut ep| {
            thread::spawn(move || {
                let me = ep.id().index();
                let mut next = vec![0u64; CORES];
                let mut published = 0;
                let want = EACH * (CORES as u64 - 1);
                let mut seen = 0;
                while seen < want || published < EACH {
                    if published < EACH {
                        let m = Message::Send {
                            port: me as u32,
                            value: published,
                        };
                        if ep.broadcast(m).is_ok() {
                            published += 1;
                        }
                    }
                    seen += drain_all(&mut ep, |from, m| {
                        assert_ne!(from.index(), me);
                        let expect = Message::Send {
                            port: from.0 as u32,
                            value: next[from.index()],
                        };
                        assert_eq!(m, expect);
                        next[from.index()] += 1;
                    }) as u64;
                    thread::yield_now();
                }
                assert_eq!(ep.drain(64, |_, _| {}), 0, "a broadcast came twice");
                next
            })
        })
        .collect();
    for (me, h) in handles.into_iter().enumerate() {
        let next = h.join().unwrap();
        for (from, n) in next.into_iter().enumerate() {
            assert_eq!(n, if from == me { 0 } else { EACH });
        }
    }
}
