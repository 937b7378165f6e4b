//! Loom models of the driver/device handoff, with the queue's memory made
//! of loom atomics (one per 16-bit word) and a device thread that follows
//! the spec's ordering rules. Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p percore-virtqueue --release --test loom
//! ```
//!
//! Each model fails (a stale read or a lost wakeup) if the corresponding
//! Release/Acquire pair or SeqCst fence in the queue is weakened.
#![cfg(loom)]

use std::sync::atomic::Ordering::{self, Acquire, Relaxed, Release, SeqCst};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU16, fence};
use loom::thread;
use percore_virtqueue::{Completion, Layout, QueueMemory, Segment, Virtqueue, need_event};

const SIZE: u16 = 2;

/// Queue memory as loom atomics, little-endian words composed of u16s
/// (each field is always accessed at one width, so composing is exact for
/// the Relaxed data words; the ordered words are all u16).
struct Words(Vec<AtomicU16>);

#[derive(Clone)]
struct LoomMemory(Arc<Words>);

impl LoomMemory {
    fn new() -> Self {
        let words = Layout::new(SIZE).unwrap().size() / 2;
        LoomMemory(Arc::new(Words(
            (0..words).map(|_| AtomicU16::new(0)).collect(),
        )))
    }
    fn load(&self, offset: usize, words: usize, order: Ordering) -> u64 {
        (0..words).fold(0, |v, i| {
            v | u64::from(self.0.0[offset / 2 + i].load(order)) << (16 * i)
        })
    }
    fn store(&self, offset: usize, words: usize, value: u64, order: Ordering) {
        for i in 0..words {
            self.0.0[offset / 2 + i].store((value >> (16 * i)) as u16, order);
        }
    }
}

impl QueueMemory for LoomMemory {
    fn device_address(&self) -> u64 {
        0x1000
    }
    fn size(&self) -> usize {
        self.0.0.len() * 2
    }
    fn load_u16(&self, offset: usize, order: Ordering) -> u16 {
        self.load(offset, 1, order) as u16
    }
    fn store_u16(&self, offset: usize, value: u16, order: Ordering) {
        self.store(offset, 1, value.into(), order)
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        self.load(offset, 2, order) as u32
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        self.store(offset, 2, value.into(), order)
    }
    fn load_u64(&self, offset: usize, order: Ordering) -> u64 {
        self.load(offset, 4, order)
    }
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) {
        self.store(offset, 4, value, order)
    }
}

fn layout() -> Layout {
    Layout::new(SIZE).unwrap()
}

/// The device's side of one completion: element, Release `used.idx`, full
/// fence, then the interrupt decision (2.7.10). Returns whether it
/// interrupted.
fn device_complete(mem: &LoomMemory, event_idx: bool, id: u32, len: u32, old: u16) -> bool {
    let l = layout();
    let at = l.used_ring(old % SIZE);
    mem.store_u32(at, id, Relaxed);
    mem.store_u32(at + 4, len, Relaxed);
    mem.store_u16(l.used_idx(), old.wrapping_add(1), Release);
    fence(SeqCst);
    if event_idx {
        need_event(
            mem.load_u16(l.used_event(), Relaxed),
            old.wrapping_add(1),
            old,
        )
    } else {
        mem.load_u16(l.avail_flags(), Relaxed) & 1 == 0
    }
}

#[test]
fn avail_publish_is_seen_whole_by_the_device() {
    loom::model(|| {
        let mem = LoomMemory::new();
        let mut q = Virtqueue::new(mem.clone(), SIZE, true).unwrap();
        let device = thread::spawn(move || {
            let l = layout();
            if mem.load_u16(l.avail_idx(), Acquire) == 1 {
                let head = mem.load_u16(l.avail_ring(0), Relaxed);
                let at = l.desc(head);
                assert_eq!(mem.load_u64(at, Relaxed), 0xABCD_0000);
                assert_eq!(mem.load_u32(at + 8, Relaxed), 512);
                assert_eq!(mem.load_u16(at + 12, Relaxed), 2); // WRITE, no NEXT
            }
        });
        q.add(&[], &[Segment::new(0xABCD_0000, 512)]).unwrap();
        device.join().unwrap();
    });
}

#[test]
fn used_publish_is_seen_whole_by_the_driver() {
    loom::model(|| {
        let mem = LoomMemory::new();
        let mut q = Virtqueue::new(mem.clone(), SIZE, true).unwrap();
        let id = q.add(&[], &[Segment::new(0x2000, 64)]).unwrap();
        // Garbage where the element will go: a stale read would be caught.
        mem.store_u32(layout().used_ring(0), 77, Relaxed);
        mem.store_u32(layout().used_ring(0) + 4, 9999, Relaxed);
        let device = thread::spawn(move || device_complete(&mem, true, id.index() as u32, 40, 0));
        let got = q.poll_used();
        device.join().unwrap();
        match got {
            Ok(None) => assert_eq!(q.poll_used(), Ok(Some(Completion { id, written: 40 }))),
            other => assert_eq!(other, Ok(Some(Completion { id, written: 40 }))),
        }
    });
}

/// The device, having consumed entry 0 while busy (its `avail_event` left
/// stale at 0, or `NO_NOTIFY` set), goes to sleep (arms its event for entry
/// 1, fences, re-checks) while the driver adds entry 1 and kicks: if it
/// sleeps, it must have been notified.
fn kick_races_device_sleep(event_idx: bool) {
    loom::model(move || {
        let mem = LoomMemory::new();
        let mut q = Virtqueue::new(mem.clone(), SIZE, event_idx).unwrap();
        q.add(&[Segment::new(0x3000, 8)], &[]).unwrap();
        q.kick(&mut || ());
        if !event_idx {
            mem.store_u16(layout().used_flags(), 1, Relaxed); // busy: NO_NOTIFY
        }
        let notified = Arc::new(AtomicBool::new(false));
        let n2 = notified.clone();
        let device = thread::spawn(move || {
            let l = layout();
            if event_idx {
                mem.store_u16(l.avail_event(), 1, Relaxed);
            } else {
                mem.store_u16(l.used_flags(), 0, Relaxed);
            }
            fence(SeqCst);
            mem.load_u16(l.avail_idx(), Acquire) == 1 // nothing new: sleeps
        });
        q.add(&[Segment::new(0x3000, 8)], &[]).unwrap();
        q.kick(&mut || n2.store(true, Relaxed));
        let slept = device.join().unwrap();
        if slept {
            assert!(
                notified.load(Relaxed),
                "device sleeps on an unannounced request"
            );
        }
    });
}

#[test]
fn kick_never_loses_a_notification_event_idx() {
    kick_races_device_sleep(true);
}

#[test]
fn kick_never_loses_a_notification_flags() {
    kick_races_device_sleep(false);
}

/// The driver re-arms interrupts before sleeping while the device
/// completes: if the driver sleeps, the device must have interrupted.
fn completion_races_driver_sleep(event_idx: bool) {
    loom::model(move || {
        let mem = LoomMemory::new();
        let mut q = Virtqueue::new(mem.clone(), SIZE, event_idx).unwrap();
        let id = q.add(&[], &[Segment::new(0x2000, 64)]).unwrap();
        q.disable_interrupts();
        let device =
            thread::spawn(move || device_complete(&mem, event_idx, id.index() as u32, 1, 0));
        let sleeps = q.enable_interrupts();
        let interrupted = device.join().unwrap();
        if sleeps {
            assert!(interrupted, "driver sleeps on an unannounced completion");
        } else {
            assert_eq!(q.poll_used(), Ok(Some(Completion { id, written: 1 })));
        }
    });
}

#[test]
fn interrupt_never_lost_event_idx() {
    completion_races_driver_sleep(true);
}

#[test]
fn interrupt_never_lost_flags() {
    completion_races_driver_sleep(false);
}
