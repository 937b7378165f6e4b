//! Unit tests of the SPSC ring (kept small so they also run under miri).

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;

use super::*;
use crate::error::ChunkError;

/// Counts its drops, to prove nothing leaks and nothing is dropped twice.
#[derive(Debug, Default)]
struct Tracked(Rc<Cell<usize>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn capacity_rounds_up_and_rejects_zero() {
    assert_eq!(channel::<u8>(0).err(), Some(CapacityError::Zero));
    assert_eq!(
        channel::<u8>(usize::MAX).err(),
        Some(CapacityError::TooLarge)
    );
    // 2^62 slots pass the capacity rule, but not as bytes of u64s.
    assert_eq!(channel::<u64>(1 << 62).err(), Some(CapacityError::TooLarge));
    for (req, cap) in [(1, 1), (2, 2), (3, 4), (5, 8), (1024, 1024), (1025, 2048)] {
        assert_eq!(channel::<u8>(req).unwrap().0.capacity(), cap);
    }
}

#[test]
fn fifo_across_many_wraps() {
    let (mut tx, mut rx) = channel::<usize>(4).unwrap();
    let mut expect = 0;
    for i in 0..1000 {
        tx.try_push(i).unwrap();
        if i % 3 == 2 {
            while let Ok(v) = rx.try_pop() {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
    }
    while let Ok(v) = rx.try_pop() {
        assert_eq!(v, expect);
        expect += 1;
    }
    assert_eq!(expect, 1000);
}

#[test]
fn full_hands_value_back_and_frees_after_pop() {
    let (mut tx, mut rx) = channel::<u32>(2).unwrap();
    tx.try_push(1).unwrap();
    tx.try_push(2).unwrap();
    assert!(tx.is_full());
    assert_eq!(tx.try_push(3), Err(PushError::Full(3)));
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(tx.slots(), 1);
    tx.try_push(3).unwrap();
    assert_eq!(
        (rx.try_pop(), rx.try_pop(), rx.try_pop()),
        (Ok(2), Ok(3), Err(PopError::Empty))
    );
}

#[test]
fn dropping_ring_drops_exactly_unconsumed() {
    let drops = Rc::new(Cell::new(0));
    let (mut tx, mut rx) = channel::<Tracked>(4).unwrap();
    for _ in 0..3 {
        assert!(tx.try_push(Tracked(drops.clone())).is_ok());
    }
    drop(rx.try_pop().unwrap());
    assert_eq!(drops.get(), 1);
    drop(tx);
    drop(rx);
    assert_eq!(drops.get(), 3);
}

#[test]
fn write_chunk_uninit_spans_the_wrap() {
    let (mut tx, mut rx) = channel::<u32>(4).unwrap();
    tx.write_chunk_uninit(3).unwrap().fill_from_iter([0, 1, 2]);
    rx.read_chunk(3).unwrap().commit_all();
    let mut chunk = tx.write_chunk_uninit(4).unwrap();
    let (a, b) = chunk.as_mut_slices();
    assert_eq!((a.len(), b.len()), (1, 3));
    for (i, slot) in a.iter_mut().chain(b.iter_mut()).enumerate() {
        slot.write(10 + i as u32);
    }
    // SAFETY: all four slots were written above.
    unsafe { chunk.commit_all() };
    let chunk = rx.read_chunk(4).unwrap();
    assert_eq!(chunk.as_slices(), (&[10][..], &[11, 12, 13][..]));
    chunk.commit(1);
    assert_eq!(rx.slots(), 3);
    assert_eq!(
        tx.write_chunk_uninit(2).err(),
        Some(ChunkError::TooFewSlots(1))
    );
}

#[test]
fn write_chunk_drops_uncommitted_defaults() {
    let drops = Rc::new(Cell::new(0));
    let (mut tx, mut rx) = channel::<Tracked>(8).unwrap();
    let mut chunk = tx.write_chunk(4).unwrap();
    let (a, _) = chunk.as_mut_slices();
    a[0] = Tracked(drops.clone()); // the default it replaces has its own counter
    chunk.commit(1);
    assert_eq!(drops.get(), 0);
    assert_eq!(rx.slots(), 1);
    drop(tx.write_chunk(3).unwrap()); // uncommitted: nothing published
    assert_eq!(rx.slots(), 1);
    drop(rx.try_pop());
    assert_eq!(drops.get(), 1);
}

#[test]
fn read_chunk_edit_in_place_and_partial_iteration() {
    let drops = Rc::new(Cell::new(0));
    let (mut tx, mut rx) = channel::<Tracked>(4).unwrap();
    for _ in 0..4 {
        assert!(tx.try_push(Tracked(drops.clone())).is_ok());
    }
    let mut it = rx.read_chunk(4).unwrap().into_iter();
    drop(it.next());
    drop(it.next());
    drop(it);
    assert_eq!((drops.get(), rx.slots()), (2, 2));
    rx.read_chunk(2).unwrap().commit(5); // clamped to 2
    assert_eq!((drops.get(), rx.slots()), (4, 0));
    assert_eq!(rx.read_chunk(1).err(), Some(ChunkError::TooFewSlots(0)));
}

#[test]
fn slot_array_is_line_pair_aligned() {
    let (tx, _rx) = channel::<u8>(3).unwrap();
    assert_eq!(tx.slots as usize % 128, 0);
}

#[test]
fn zero_sized_messages() {
    let (mut tx, mut rx) = channel::<()>(2).unwrap();
    tx.try_push(()).unwrap();
    tx.try_push(()).unwrap();
    assert_eq!(tx.try_push(()), Err(PushError::Full(())));
    assert_eq!(rx.try_pop(), Ok(()));
}

#[test]
fn threads_deliver_in_order() {
    let n: u64 = if cfg!(miri) { 200 } else { 20_000 };
    let (mut tx, mut rx) = channel::<u64>(8).unwrap();
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            let mut v = i;
            while let Err(PushError::Full(back)) = tx.try_push(v) {
                v = back;
                std::thread::yield_now();
            }
        }
    });
    let mut got = Vec::new();
    while (got.len() as u64) < n {
        match rx.try_pop() {
            Ok(v) => got.push(v),
            Err(_) => std::thread::yield_now(),
        }
    }
    producer.join().unwrap();
    assert!(got.iter().copied().eq(0..n));
}

#[test]
fn slow_pop_path_releases_on_drain_and_at_run_ends() {
    // 64 slots: the consumer publishes `head` every 16 pops.
    let (mut tx, mut rx) = channel::<u32>(64).unwrap();
    for i in 0..64 {
        tx.try_push(i).unwrap();
    }
    assert_eq!(tx.try_push(64), Err(PushError::Full(64)));
    // Fifteen pops: inside a run, nothing published yet.
    for i in 0..15 {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    assert_eq!(tx.slots(), 0);
    // The sixteenth completes the run.
    assert_eq!(rx.try_pop(), Ok(15));
    assert_eq!(tx.slots(), 16);
    // Drain: the empty pop publishes the partial last run.
    for i in 16..64 {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(tx.slots(), 64);
    // One message at a time, as a consumer right behind the producer pops:
    // every message is seen at once, and nothing is held back.
    for i in 0..200 {
        tx.try_push(i).unwrap();
        assert_eq!(rx.try_pop(), Ok(i));
        assert_eq!(rx.try_pop(), Err(PopError::Empty));
        assert_eq!(tx.slots(), 64);
    }
}

/// Pushes `n` values from `next` and pops them all, checking each.
fn push_then_pop(tx: &mut Producer<u32>, rx: &mut Consumer<u32>, next: &mut u32, n: u32) {
    for i in 0..n {
        tx.try_push(*next + i).unwrap();
    }
    for i in 0..n {
        assert_eq!(rx.try_pop(), Ok(*next + i));
    }
    *next += n;
}

#[test]
fn hold_adapts_to_short_runs_and_backs_off_for_lone_messages() {
    // 64 slots: runs of 2..8 messages found by a reload start a hold.
    let (mut tx, mut rx) = channel::<u32>(64).unwrap();
    assert_eq!(rx.hold_below, 8);
    let mut next = 0;
    // A first short run: the next reload will wait one pause.
    assert!(rx.lone, "a fresh consumer prefetches while it waits");
    push_then_pop(&mut tx, &mut rx, &mut next, 3);
    assert_eq!((rx.hold, rx.hold_spins), (true, 1));
    assert!(!rx.lone, "a stream never prefetches the producer's line");
    // Holds that keep ending in short runs double the wait, up to the cap.
    let mut want = 1;
    for _ in 0..10 {
        push_then_pop(&mut tx, &mut rx, &mut next, 3);
        want = (want * 2).min(MAX_HOLD_SPINS);
        assert_eq!((rx.hold, rx.hold_spins), (true, want));
    }
    assert_eq!(rx.hold_spins, MAX_HOLD_SPINS);
    // A hold that ends in a lone message (a request/response exchange)
    // halves the wait, and a lone message starts no hold.
    push_then_pop(&mut tx, &mut rx, &mut next, 1);
    assert_eq!((rx.hold, rx.hold_spins), (false, MAX_HOLD_SPINS / 2));
    assert!(rx.lone);
    // Long runs start no hold either.
    push_then_pop(&mut tx, &mut rx, &mut next, 8);
    assert!(!rx.hold);
    // One message at a time: the wait decays to one pause and stays off.
    for _ in 0..10 {
        push_then_pop(&mut tx, &mut rx, &mut next, 2);
        push_then_pop(&mut tx, &mut rx, &mut next, 1);
    }
    assert_eq!((rx.hold, rx.hold_spins), (false, 1));
}

#[test]
fn hold_never_hides_a_message_or_holds_slots_back() {
    let (mut tx, mut rx) = channel::<u32>(64).unwrap();
    let mut next = 0;
    push_then_pop(&mut tx, &mut rx, &mut next, 3);
    assert!(rx.hold);
    // Held, and the ring empty: the reload still happens (after the
    // pauses) and says Empty; everything popped is handed back.
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(tx.slots(), 64);
    // Held, and a message arrives: the held reload finds it.
    push_then_pop(&mut tx, &mut rx, &mut next, 3);
    assert!(rx.hold);
    tx.try_push(next).unwrap();
    assert_eq!(rx.try_pop(), Ok(next));
    // `is_empty`, `slots` and `peek` never wait: a message pushed while a
    // hold is pending shows at once.
    push_then_pop(&mut tx, &mut rx, &mut next, 4);
    assert!(rx.hold);
    tx.try_push(99).unwrap();
    assert!(!rx.is_empty());
    assert_eq!(rx.slots(), 1);
    assert_eq!(rx.peek(), Some(&99));
    assert_eq!(rx.try_pop(), Ok(99));
}

#[test]
fn small_rings_never_hold() {
    for cap in [1, 2, 4, 8] {
        let (mut tx, mut rx) = channel::<u32>(cap).unwrap();
        assert!(rx.hold_below <= 1);
        let mut next = 0;
        for n in 1..=cap as u32 {
            push_then_pop(&mut tx, &mut rx, &mut next, n);
            assert!(!rx.hold);
        }
    }
}
