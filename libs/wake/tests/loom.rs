//! Model checks of the lost-wake-up protocol with loom:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p percore-wake --release --test loom
//! ```
//!
//! Each model runs every interleaving of a waiting task (register, then
//! re-check) against the side that publishes progress and then wakes. A lost
//! wake-up leaves the waiter blocked in `loom::future::block_on` with every
//! other thread finished, which loom reports as a deadlock.
#![cfg(loom)]

use std::task::Poll;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use percore_wake::{WaitList, WakerSlot};

/// A waiter on a `WakerSlot` and one waker: the waiter always finishes.
#[test]
fn waker_slot_never_loses_a_wake() {
    loom::model(|| {
        let ready = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(WakerSlot::new());
        let waker = {
            let (ready, slot) = (ready.clone(), slot.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                slot.wake();
            })
        };
        loom::future::block_on(std::future::poll_fn(|cx| {
            if ready.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            slot.register(cx.waker());
            if ready.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        waker.join().unwrap();
    });
}

/// A waiter that registers twice (a spurious poll: the second registration
/// replaces the first) racing one wake: never stuck.
#[test]
fn waker_slot_reregistration_races_a_wake() {
    loom::model(|| {
        let ready = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(WakerSlot::new());
        let producer = {
            let (ready, slot) = (ready.clone(), slot.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                slot.wake();
            })
        };
        let mut polls = 0;
        loom::future::block_on(std::future::poll_fn(|cx| {
            polls += 1;
            if ready.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            slot.register(cx.waker());
            if polls == 1 {
                // The spurious second registration of the same task.
                slot.register(cx.waker());
            }
            if ready.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        producer.join().unwrap();
    });
}

/// Two waiters on a `WaitList` and one waker: both always finish.
#[test]
fn wait_list_wakes_every_waiter() {
    loom::model(|| {
        let ready = Arc::new(AtomicBool::new(false));
        let list = Arc::new(WaitList::new());
        let waiter = |ready: Arc<AtomicBool>, list: Arc<WaitList>| {
            move || {
                loom::future::block_on(std::future::poll_fn(|cx| {
                    if ready.load(Ordering::Acquire) {
                        return Poll::Ready(());
                    }
                    list.register(cx.waker());
                    if ready.load(Ordering::Acquire) {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                }))
            }
        };
        let other = thread::spawn(waiter(ready.clone(), list.clone()));
        let waker = {
            let (ready, list) = (ready.clone(), list.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                list.wake_all();
            })
        };
        waiter(ready, list)();
        other.join().unwrap();
        waker.join().unwrap();
    });
}
