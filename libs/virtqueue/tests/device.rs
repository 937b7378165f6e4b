//! The queue against an honest simulated device: data through chained
//! descriptors, out-of-order completion, index wrap-around, and both
//! notification-suppression modes.

mod common;

use common::{Bus, SimDevice};
use percore_virtqueue::{Completion, HostRegion, Layout, Segment, Virtqueue};

fn queue(size: u16, event_idx: bool) -> Virtqueue<HostRegion> {
    // A device address unlike any host pointer, so a missed translation shows.
    let region = HostRegion::new(Layout::new(size).unwrap(), 0x7_0000_0000).unwrap();
    Virtqueue::new(region, size, event_idx).unwrap()
}

#[test]
fn request_moves_data_both_ways() {
    let mut q = queue(8, true);
    let mut dev = SimDevice::new(8, true);
    let mut bus = Bus::new(0x1000_0000);
    let header = bus.alloc(16, 0xAB);
    let data = bus.alloc(4096, 0);
    let status = bus.alloc(1, 0);
    let id = q.add(&[header], &[data, status]).unwrap();
    assert_eq!(q.free_descriptors(), 5);
    assert_eq!(dev.fetch(q.memory()), 1);
    let req = dev.pending[0].clone();
    assert_eq!(req.readable, [header]);
    assert_eq!(req.writable, [data, status]);
    assert!(bus.slice(header).iter().all(|&b| b == 0xAB));
    dev.complete(q.memory(), &mut bus, 0, 4097);
    assert_eq!(q.poll_used(), Ok(Some(Completion { id, written: 4097 })));
    assert_eq!(q.poll_used(), Ok(None));
    assert!(bus.slice(data).iter().all(|&b| b == id.index() as u8));
    assert_eq!(q.free_descriptors(), 8);
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn out_of_order_completion() {
    let mut q = queue(8, false);
    let mut dev = SimDevice::new(8, false);
    let mut bus = Bus::new(0x1000);
    let ids: Vec<_> = (0..4)
        .map(|i| q.add(&[bus.alloc(8, i)], &[bus.alloc(64, 0)]).unwrap())
        .collect();
    assert_eq!(
        q.add(&[bus.alloc(8, 0)], &[]).map_err(|e| e.to_string()),
        Err("request needs 1 descriptors, 0 free".into())
    );
    dev.fetch(q.memory());
    for (i, written) in [(3, 64), (1, 0), (1, 10), (0, 64)] {
        dev.complete(q.memory(), &mut bus, i, written);
    }
    let done: Vec<_> = std::iter::from_fn(|| q.poll_used().unwrap()).collect();
    let want = [(ids[3], 64), (ids[1], 0), (ids[2], 10), (ids[0], 64)];
    assert_eq!(done, want.map(|(id, written)| Completion { id, written }));
    assert_eq!(q.free_descriptors(), 8);
}

#[test]
fn indices_wrap_past_u16() {
    let mut q = queue(4, true);
    let mut dev = SimDevice::new(4, true);
    let mut bus = Bus::new(0x1000);
    let segment = bus.alloc(32, 1);
    let mut completed = 0u32;
    for round in 0..70_000u32 {
        let id = q.add(&[segment], &[segment]).unwrap();
        dev.fetch(q.memory());
        dev.complete(q.memory(), &mut bus, 0, round % 33);
        let done = q.poll_used().unwrap().unwrap();
        assert_eq!(
            done,
            Completion {
                id,
                written: round % 33
            }
        );
        completed += 1;
    }
    assert_eq!(completed, 70_000);
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn event_idx_notifies_only_a_sleeping_device() {
    let mut q = queue(8, true);
    let mut dev = SimDevice::new(8, true);
    let mut bus = Bus::new(0x1000);
    let s = bus.alloc(8, 0);
    let mut kicks = 0;
    let mut bell = || kicks += 1;
    assert!(dev.prepare_sleep(q.memory()));
    q.add(&[s], &[]).unwrap();
    q.add(&[s], &[]).unwrap();
    assert!(q.kick(&mut bell)); // device asleep, waiting for entry 0
    dev.fetch(q.memory()); // awake and busy: avail_event stays at 0
    q.add(&[s], &[]).unwrap();
    assert!(!q.kick(&mut bell));
    dev.fetch(q.memory());
    assert!(dev.prepare_sleep(q.memory())); // now waits for entry 3
    q.add(&[s], &[]).unwrap();
    assert!(q.kick(&mut bell));
    assert_eq!(kicks, 2);
}

#[test]
fn flag_mode_honours_no_notify() {
    let mut q = queue(8, false);
    let dev = SimDevice::new(8, false);
    let s = Segment::new(0x1000, 8);
    q.add(&[s], &[]).unwrap();
    dev.busy(q.memory());
    assert!(!q.kick(&mut || ()));
    q.add(&[s], &[]).unwrap();
    assert!(!dev.prepare_sleep(q.memory())); // entries unseen: stays awake
    assert!(q.kick(&mut || ()));
}

#[test]
fn interrupts_are_armed_and_rechecked() {
    for event_idx in [false, true] {
        let mut q = queue(8, event_idx);
        let mut dev = SimDevice::new(8, event_idx);
        let mut bus = Bus::new(0x1000);
        let w = bus.alloc(8, 0);
        for _ in 0..3 {
            q.add(&[], &[w]).unwrap();
        }
        dev.fetch(q.memory());
        q.disable_interrupts();
        dev.complete(q.memory(), &mut bus, 0, 1);
        assert_eq!(dev.interrupts, 0, "event_idx={event_idx}");
        // Re-arming sees the completion that raced in: do not sleep.
        assert!(!q.enable_interrupts());
        assert!(q.poll_used().unwrap().is_some());
        assert!(q.enable_interrupts());
        dev.complete(q.memory(), &mut bus, 0, 1);
        assert_eq!(dev.interrupts, 1, "event_idx={event_idx}");
        dev.complete(q.memory(), &mut bus, 0, 1);
        // One-shot with EVENT_IDX until re-armed; every time without.
        assert_eq!(dev.interrupts, if event_idx { 1 } else { 2 });
    }
}

#[test]
fn reset_hands_back_requests_in_flight() {
    let mut q = queue(8, true);
    let mut dev = SimDevice::new(8, true);
    let mut bus = Bus::new(0x1000);
    let a = q.add(&[bus.alloc(8, 0)], &[]).unwrap();
    let b = q.add(&[bus.alloc(8, 0)], &[bus.alloc(8, 0)]).unwrap();
    dev.fetch(q.memory());
    dev.complete(q.memory(), &mut bus, 0, 0);
    let mut abandoned = Vec::new();
    q.reset(|id| abandoned.push(id));
    assert_eq!(abandoned, [a, b]); // the completion was never polled
    assert_eq!((q.free_descriptors(), q.in_flight()), (8, 0));
    let mut dev = SimDevice::new(8, true);
    let c = q.add(&[bus.alloc(8, 0)], &[]).unwrap();
    dev.fetch(q.memory());
    dev.complete(q.memory(), &mut bus, 0, 0);
    assert_eq!(q.poll_used(), Ok(Some(Completion { id: c, written: 0 })));
}
