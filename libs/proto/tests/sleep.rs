//! The sleep protocol under stress: a receiver thread that parks only when
//! `prepare_sleep` allows it, and senders that unpark it only when a send
//! says the doorbell must be rung. A lost wake-up leaves the receiver
//! parked with messages waiting; the park timeout turns that hang into a
//! counted failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use percore_proto::{Bus, CoreId, Message, TaskRef};

const SENDERS: usize = 2;
const PER_SENDER: u64 = 20_000;
const LOST: Duration = Duration::from_secs(2);

#[test]
fn no_wake_up_is_lost() {
    let mut eps = Bus::new(SENDERS + 1, 8).unwrap();
    let mut receiver = eps.remove(0);
    let receiver_done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let sleeper = {
        let done = receiver_done.clone();
        thread::spawn(move || {
            tx.send(thread::current()).unwrap();
            let want = SENDERS as u64 * PER_SENDER;
            let mut next = [0u64; SENDERS + 1];
            let (mut got, mut announces, mut sleeps, mut lost) = (0, 0u64, 0u64, 0u64);
            while got < want {
                got += receiver.drain(64, |from, m| {
                    assert_eq!(
                        m,
                        Message::Wake {
                            task: TaskRef(next[from.index()])
                        }
                    );
                    next[from.index()] += 1;
                }) as u64;
                if got >= want {
                    break;
                }
                announces += 1;
                if receiver.prepare_sleep() {
                    sleeps += 1;
                    let t = Instant::now();
                    thread::park_timeout(LOST);
                    if t.elapsed() >= LOST {
                        lost += 1;
                        break;
                    }
                    receiver.end_sleep();
                }
            }
            done.store(true, Ordering::Release);
            (announces, sleeps, lost, receiver.stats())
        })
    };
    let sleeper_thread = rx.recv().unwrap();
    let senders: Vec<_> = eps
        .into_iter()
        .map(|mut ep| {
            let sleeper = sleeper_thread.clone();
            let receiver_done = receiver_done.clone();
            thread::spawn(move || {
                let mut rings = 0u64;
                for i in 0..PER_SENDER {
                    let mut msg = Message::Wake { task: TaskRef(i) };
                    loop {
                        match ep.send(CoreId(0), msg) {
                            Ok(d) => {
                                if d.must_ring() {
                                    rings += 1;
                                    sleeper.unpark();
                                }
                                break;
                            }
                            Err(e) => msg = e.into_inner(),
                        }
                        if receiver_done.load(Ordering::Acquire) {
                            return rings; // the receiver gave up
                        }
                        thread::yield_now();
                    }
                    // Irregular pauses so the receiver really goes to sleep.
                    if i % 64 == ep.id().index() as u64 {
                        thread::sleep(Duration::from_micros(50));
                    }
                }
                rings
            })
        })
        .collect();
    let rings: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
    let (announces, sleeps, lost, stats) = sleeper.join().unwrap();
    assert_eq!(
        lost, 0,
        "lost wake-ups (receiver parked {LOST:?} with work waiting)"
    );
    assert_eq!(stats.received, SENDERS as u64 * PER_SENDER);
    assert!(
        sleeps > 10,
        "the receiver never slept ({sleeps}): test exercised nothing"
    );
    // One announced sleep is rung for at most once (a sender may ring for
    // an announcement the receiver then withdrew: a harmless spurious IPI).
    assert!(
        rings > 0 && rings <= announces,
        "rings {rings}, announces {announces}"
    );
}
