//! Loom model tests: every ring type under all interleavings (bounded by
//! `LOOM_MAX_PREEMPTIONS`). Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p percore-ring --release --test loom
//! ```
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use percore_ring::mpsc::fanin::{self, Policy};
use percore_ring::priority::{self, Level};
use percore_ring::wait::Doorbell;
use percore_ring::{Receiver, Sender, link, mpsc, spmc, spsc};

/// Waits by yielding to loom's scheduler (a spin loop without a yield
/// would never let the other thread run in the model).
struct LoomYield;

impl percore_ring::wait::WaitStrategy for LoomYield {
    fn wait(&mut self, _attempt: u32) {
        thread::yield_now();
    }
}

#[test]
fn spsc_push_pop_wraps_past_full() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel::<u32>(2).unwrap();
        let h = thread::spawn(move || (0..3).for_each(|i| tx.push(i, &mut LoomYield)));
        for i in 0..3 {
            assert_eq!(rx.pop(&mut LoomYield), i);
        }
        assert!(rx.is_empty());
        h.join().unwrap();
    });
}

/// Under loom the consumer of a 4-slot ring releases slots in runs of two
/// (half the ring): the producer must never overwrite a slot the
/// consumer has not finished reading although `head` lags behind, and
/// draining the ring must release every slot.
#[test]
fn spsc_batched_release() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel::<u32>(4).unwrap();
        let h = thread::spawn(move || {
            (0..5).for_each(|i| tx.push(i, &mut LoomYield));
            tx
        });
        for i in 0..5 {
            assert_eq!(rx.pop(&mut LoomYield), i);
        }
        let mut tx = h.join().unwrap();
        assert!(rx.is_empty());
        assert_eq!(tx.slots(), 4);
    });
}

/// A producer that fills the 4-slot ring and keeps pushing while the
/// consumer releases in runs of two: slots are only reused after `head`
/// (Release/Acquire) says so, and a consumer that found the ring empty has
/// released every slot, so a producer sees all the space freed by a
/// consumer that then goes idle.
#[test]
fn spsc_full_ring_then_idle_consumer() {
    loom::model(|| stream_then_idle(4, 6));
}

/// One loom execution: a producer thread pushes `0..messages` into a ring
/// of `capacity` slots while this thread pops them in order; then the
/// consumer finds the ring empty and goes idle, and the producer must see
/// every slot free.
fn stream_then_idle(capacity: usize, messages: u32) {
    let (mut tx, mut rx) = spsc::channel::<u32>(capacity).unwrap();
    let h = thread::spawn(move || {
        (0..messages).for_each(|i| tx.push(i, &mut LoomYield));
        tx
    });
    for i in 0..messages {
        assert_eq!(rx.pop(&mut LoomYield), i);
    }
    let mut tx = h.join().unwrap();
    assert!(rx.try_pop().is_err());
    assert_eq!(tx.slots(), capacity);
}

/// The consumer's hold (a reload that found a short run makes the next
/// reload wait): a 32-slot ring holds after runs of 2 or 3 (under loom the
/// wait is a yield to the scheduler). The hold only delays the same
/// Acquire load of `tail`, so every message still arrives in order, and a
/// consumer that then finds the ring empty has released every slot.
#[test]
fn spsc_hold_delays_but_never_hides() {
    loom::model(|| stream_then_idle(32, 4));
}

#[test]
fn spsc_chunks_in_place() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel::<u32>(2).unwrap();
        let h = thread::spawn(move || {
            let mut next = 0;
            while next < 3 {
                let want = if next == 0 { 2 } else { 1 };
                match tx.write_chunk_uninit(want) {
                    Ok(chunk) => next += chunk.fill_from_iter(next..3) as u32,
                    Err(_) => thread::yield_now(),
                }
            }
        });
        let mut expect = 0;
        while expect < 3 {
            let k = rx.slots();
            if k == 0 {
                thread::yield_now();
                continue;
            }
            let mut chunk = rx.read_chunk(k).unwrap();
            let (a, b) = chunk.as_mut_slices();
            for v in a.iter_mut().chain(b) {
                assert_eq!(*v, expect);
                *v += 100; // edit in place
                expect += 1;
            }
            chunk.commit_all();
        }
        h.join().unwrap();
    });
}

#[test]
fn spsc_drop_with_messages_in_flight() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel::<loom::sync::Arc<()>>(2).unwrap();
        let value = loom::sync::Arc::new(());
        let v2 = value.clone();
        let h = thread::spawn(move || {
            let _ = tx.try_push(v2.clone());
            let _ = tx.try_push(v2);
        });
        let _ = rx.try_pop();
        h.join().unwrap();
        drop(rx);
        assert_eq!(loom::sync::Arc::strong_count(&value), 1);
    });
}

#[test]
fn mpsc_cas_two_producers() {
    loom::model(|| {
        let (tx, mut rx) = mpsc::cas::channel::<u32>(2).unwrap();
        let hs: Vec<_> = (0..2)
            .map(|p| {
                let mut tx = tx.clone();
                thread::spawn(move || tx.push(p, &mut LoomYield))
            })
            .collect();
        drop(tx);
        let mut got = [rx.pop(&mut LoomYield), rx.pop(&mut LoomYield)];
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn mpsc_cas_full_edge() {
    loom::model(|| {
        let (mut tx, mut rx) = mpsc::cas::channel::<u32>(2).unwrap();
        let mut tx2 = tx.clone();
        let h = thread::spawn(move || {
            tx2.push(8, &mut LoomYield);
            tx2.push(9, &mut LoomYield);
        });
        // May find the ring full (both of the other producer's messages in
        // it): then the value comes back and nothing is lost.
        let pushed = match tx.try_push(1) {
            Ok(()) => true,
            Err(e) => {
                assert_eq!(e.into_inner(), 1);
                false
            }
        };
        let n = if pushed { 3 } else { 2 };
        let mut got: Vec<u32> = (0..n).map(|_| rx.pop(&mut LoomYield)).collect();
        h.join().unwrap();
        let at = |v| got.iter().position(|&x| x == v).unwrap();
        assert!(at(8) < at(9), "per-producer order");
        got.sort_unstable();
        assert_eq!(got, if pushed { vec![1, 8, 9] } else { vec![8, 9] });
    });
}

#[test]
fn mpsc_fanin_fair_select() {
    loom::model(|| {
        let (txs, mut inbox) = fanin::channel::<u32>(2, 2, Policy::Fair).unwrap();
        let hs: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(p, mut tx)| thread::spawn(move || tx.push(p as u32, &mut LoomYield)))
            .collect();
        let mut got = [inbox.pop(&mut LoomYield), inbox.pop(&mut LoomYield)];
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn spmc_work_each_message_once() {
    loom::model(|| {
        let (mut tx, rx) = spmc::work::channel::<u32>(2).unwrap();
        let mut rx2 = rx.clone();
        let h = thread::spawn(move || rx2.try_pop().ok());
        tx.push(1, &mut LoomYield);
        tx.push(2, &mut LoomYield);
        let mut rx = rx;
        let theirs = h.join().unwrap();
        let mut got: Vec<u32> = theirs.into_iter().collect();
        while let Ok(v) = rx.try_pop() {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn broadcast_wraps_and_gates_on_subscriber() {
    loom::model(|| {
        let mut publisher = spmc::broadcast::create::<u32>(2, 1).unwrap();
        let mut sub = publisher.subscribe().unwrap();
        let h = thread::spawn(move || {
            let mut expect = 0;
            while expect < 3 {
                let chunk = sub.read_available();
                if chunk.is_empty() {
                    thread::yield_now();
                    continue;
                }
                let (a, b) = chunk.as_slices();
                for v in a.iter().chain(b) {
                    assert_eq!(*v, expect);
                    expect += 1;
                }
                chunk.release();
            }
        });
        for i in 0..3 {
            while publisher.try_publish(i).is_err() {
                thread::yield_now();
            }
        }
        h.join().unwrap();
    });
}

#[test]
fn broadcast_subscriber_join_and_leave() {
    loom::model(|| {
        let mut publisher = spmc::broadcast::create::<u32>(1, 2).unwrap();
        let mut leaver = publisher.subscribe().unwrap();
        // The leaver reads at most one message, then unsubscribes while the
        // publisher may be blocked on it.
        let h = thread::spawn(move || {
            let _ = leaver.try_recv();
        });
        publisher.try_publish(0).unwrap();
        // Join mid-stream, on the publisher's thread.
        let mut joiner = publisher.subscribe().unwrap();
        while publisher.try_publish(1).is_err() {
            thread::yield_now();
        }
        assert_eq!(joiner.try_recv(), Some(1));
        h.join().unwrap();
        publisher.try_publish(2).unwrap();
        assert_eq!(joiner.try_recv(), Some(2));
        assert_eq!(publisher.subscribers(), 1);
    });
}

#[test]
fn priority_never_hides_a_message() {
    loom::model(|| {
        let (mut tx, mut rx) = priority::channel::<u32>(2, 2).unwrap();
        let h = thread::spawn(move || {
            tx.try_push(Level(0), 0).unwrap();
            tx.try_push(Level(1), 1).unwrap();
        });
        let mut got = Vec::new();
        if let Ok((_, v)) = rx.try_pop() {
            got.push(v);
        }
        h.join().unwrap();
        // Everything pushed must be findable once the producer is done.
        while let Ok((_, v)) = rx.try_pop() {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
    });
}

#[test]
fn link_crosses_segments() {
    loom::model(|| {
        let (mut tx, mut rx) = link::channel::<u32>();
        let h = thread::spawn(move || (0..3).for_each(|i| tx.push(i)));
        for i in 0..3 {
            assert_eq!(rx.pop(&mut LoomYield), i);
        }
        h.join().unwrap();
    });
}

#[test]
fn link_drop_with_messages_in_flight() {
    loom::model(|| {
        let (mut tx, mut rx) = link::channel::<loom::sync::Arc<()>>();
        let value = loom::sync::Arc::new(());
        let v2 = value.clone();
        let h = thread::spawn(move || (0..3).for_each(|_| tx.push(v2.clone())));
        let _ = rx.try_pop();
        h.join().unwrap();
        drop(rx);
        assert_eq!(loom::sync::Arc::strong_count(&value), 1);
    });
}

#[test]
fn doorbell_never_loses_a_wakeup() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel::<u32>(2).unwrap();
        let bell = loom::sync::Arc::new(Doorbell::new());
        let rang = loom::sync::Arc::new(AtomicBool::new(false));
        let (b2, r2) = (bell.clone(), rang.clone());
        let h = thread::spawn(move || {
            tx.try_push(1).unwrap();
            if b2.should_ring() {
                r2.store(true, Ordering::Relaxed);
            }
        });
        // Consumer: announce sleep, re-check, "halt" only if still empty.
        bell.prepare_sleep();
        let slept = rx.is_empty();
        h.join().unwrap();
        if slept {
            assert!(
                rang.load(Ordering::Relaxed),
                "consumer halted and nobody rang"
            );
        }
    });
}
