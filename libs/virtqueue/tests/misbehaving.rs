//! A device that writes garbage: every bad value is a `DeviceError`, the
//! queue stays broken until reset, and nothing panics.

mod common;

use common::{Bus, SimDevice};
use percore_virtqueue::{AddError, DeviceError, HostRegion, Layout, RequestId, Segment, Virtqueue};
use proptest::prelude::*;

fn setup() -> (Virtqueue<HostRegion>, SimDevice, Vec<RequestId>) {
    let region = HostRegion::new(Layout::new(8).unwrap(), 0x10_0000).unwrap();
    let mut q = Virtqueue::new(region, 8, true).unwrap();
    let mut dev = SimDevice::new(8, true);
    // Three requests: heads 0 (chain 0-1-2), 3 (3-4), 5 (readable only).
    let seg = Segment::new(0x1000, 100);
    let ids = vec![
        q.add(&[seg], &[seg, seg]).unwrap(),
        q.add(&[seg], &[seg]).unwrap(),
        q.add(&[seg], &[]).unwrap(),
    ];
    dev.fetch(q.memory());
    (q, dev, ids)
}

/// The queue is broken with `error`, refuses work, and a reset hands back
/// every request in flight and makes it usable again.
fn assert_broken(mut q: Virtqueue<HostRegion>, error: DeviceError, in_flight: &[RequestId]) {
    assert_eq!(q.poll_used(), Err(error));
    assert_eq!(q.broken(), Some(error));
    assert_eq!(q.add(&[Segment::new(0, 1)], &[]), Err(AddError::Broken));
    let mut abandoned = Vec::new();
    q.reset(|id| abandoned.push(id));
    assert_eq!(abandoned, in_flight);
    assert_eq!(q.poll_used(), Ok(None));
    q.add(&[Segment::new(0, 1)], &[]).unwrap();
}

#[test]
fn id_beyond_the_queue() {
    let (mut q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 8, 0);
    let e = DeviceError::BadId { id: 8 };
    assert_eq!(q.poll_used(), Err(e));
    dev.complete_raw(q.memory(), u32::MAX, 0);
    assert_broken(q, e, &ids);
}

#[test]
fn id_of_a_free_descriptor() {
    let (q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 7, 0);
    assert_broken(q, DeviceError::NotInFlight { id: 7 }, &ids);
}

#[test]
fn id_in_the_middle_of_a_chain() {
    let (q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 1, 0);
    assert_broken(q, DeviceError::NotInFlight { id: 1 }, &ids);
}

#[test]
fn duplicate_completion() {
    let (mut q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 3, 100);
    assert_eq!(q.poll_used().unwrap().unwrap().id, ids[1]);
    dev.complete_raw(q.memory(), 3, 100);
    assert_broken(q, DeviceError::NotInFlight { id: 3 }, &[ids[0], ids[2]]);
}

#[test]
fn length_beyond_the_buffers() {
    let (mut q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 0, 200); // exactly the two writable segments
    assert!(q.poll_used().unwrap().is_some());
    dev.complete_raw(q.memory(), 3, 101);
    assert_broken(
        q,
        DeviceError::BadLength {
            id: 3,
            len: 101,
            capacity: 100,
        },
        &ids[1..],
    );
}

#[test]
fn length_into_a_readable_only_request() {
    let (q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 5, 1);
    assert_broken(
        q,
        DeviceError::BadLength {
            id: 5,
            len: 1,
            capacity: 0,
        },
        &ids,
    );
}

#[test]
fn used_idx_racing_ahead() {
    let (q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 0, 0);
    dev.set_used_idx(q.memory(), 4); // 4 entries with 3 requests in flight
    let e = DeviceError::UsedIdxJump {
        used_idx: 4,
        last_used: 0,
        in_flight: 3,
    };
    assert_broken(q, e, &ids);
}

#[test]
fn used_idx_going_backwards() {
    let (mut q, mut dev, ids) = setup();
    dev.complete_raw(q.memory(), 0, 0);
    q.poll_used().unwrap().unwrap();
    dev.set_used_idx(q.memory(), 0);
    let e = DeviceError::UsedIdxJump {
        used_idx: 0,
        last_used: 1,
        in_flight: 2,
    };
    assert_broken(q, e, &ids[1..]);
}

#[test]
fn used_idx_jump_on_an_idle_queue() {
    let region = HostRegion::new(Layout::new(4).unwrap(), 0).unwrap();
    let mut q = Virtqueue::new(region, 4, false).unwrap();
    let mut dev = SimDevice::new(4, false);
    dev.set_used_idx(q.memory(), 1);
    let e = DeviceError::UsedIdxJump {
        used_idx: 1,
        last_used: 0,
        in_flight: 0,
    };
    assert_eq!(q.poll_used(), Err(e));
}

#[derive(Debug, Clone)]
enum Garbage {
    Honest,
    Element(u32, u32),
    Idx(u16),
}

proptest! {
    /// Whatever the device writes, the driver never panics, and every
    /// completion it returns names a request in flight with a length its
    /// buffers hold.
    #[test]
    fn garbage_never_escapes(
        writes in prop::collection::vec(
            prop_oneof![
                3 => Just(Garbage::Honest),
                1 => (0u32..20, 0u32..300).prop_map(|(i, l)| Garbage::Element(i, l)),
                1 => any::<u16>().prop_map(Garbage::Idx),
            ],
            1..40,
        ),
    ) {
        let region = HostRegion::new(Layout::new(8).unwrap(), 0).unwrap();
        let mut q = Virtqueue::new(region, 8, true).unwrap();
        let mut dev = SimDevice::new(8, true);
        let mut bus = Bus::new(0x1000);
        let mut capacity = std::collections::HashMap::new();
        for write in writes {
            while let Ok(id) = q.add(&[bus.alloc(4, 0)], &[bus.alloc(100, 0)]) {
                capacity.insert(id, 100);
            }
            dev.fetch(q.memory());
            match write {
                Garbage::Honest if !dev.pending.is_empty() => dev.complete(q.memory(), &mut bus, 0, 50),
                Garbage::Honest => {}
                Garbage::Element(id, len) => dev.complete_raw(q.memory(), id, len),
                Garbage::Idx(idx) => dev.set_used_idx(q.memory(), idx),
            }
            loop {
                match q.poll_used() {
                    Ok(Some(done)) => {
                        let cap = capacity.remove(&done.id);
                        prop_assert!(cap.is_some_and(|c| done.written <= c));
                    }
                    Ok(None) => break,
                    Err(_) => {
                        let mut abandoned = Vec::new();
                        q.reset(|id| abandoned.push(id));
                        let mut expect: Vec<_> = capacity.drain().map(|(id, _)| id).collect();
                        expect.sort();
                        prop_assert_eq!(abandoned, expect);
                        dev = SimDevice::new(8, true);
                        break;
                    }
                }
            }
        }
    }
}
