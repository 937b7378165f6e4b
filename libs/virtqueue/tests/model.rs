//! Property test: random interleavings of driver and (honest) device steps
//! against a simple model of which requests are in flight, what the device
//! completed in which order, and who is asleep. Checks, after every step:
//! ids are unique and reused only after completion, `add` fails exactly
//! when the model says the descriptors are short, completions come back in
//! the device's order with its lengths, and neither side ever sleeps with
//! work for it unannounced (no lost notification, no lost interrupt), in
//! both suppression modes.

mod common;

use std::collections::{HashMap, VecDeque};

use common::{Bus, SimDevice};
use percore_virtqueue::{AddError, Completion, HostRegion, Layout, RequestId, Virtqueue};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Add a request with this many readable and writable segments.
    Add(usize, usize),
    Kick,
    /// Device fetches what is available (only when awake).
    Fetch,
    /// Device completes its pending request `i % len`, writing `w % (cap + 1)`.
    Complete(usize, u32),
    DeviceSleep,
    Poll,
    EnableInterrupts,
    DisableInterrupts,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => (0usize..3, 0usize..3).prop_map(|(r, w)| Op::Add(r, w)),
            2 => Just(Op::Kick),
            2 => Just(Op::Fetch),
            3 => (any::<usize>(), any::<u32>()).prop_map(|(i, w)| Op::Complete(i, w)),
            1 => Just(Op::DeviceSleep),
            3 => Just(Op::Poll),
            1 => Just(Op::EnableInterrupts),
            1 => Just(Op::DisableInterrupts),
        ],
        0..300,
    )
}

struct Model {
    /// Requests in flight: id -> (descriptors, writable capacity).
    in_flight: HashMap<RequestId, (u16, u32)>,
    free: u16,
    /// Completions published by the device, not yet polled.
    used: VecDeque<Completion>,
    device_asleep: bool,
    driver_asleep: bool,
}

proptest! {
    #[test]
    fn queue_matches_model(size_log in 0u32..4, event_idx in any::<bool>(), ops in ops()) {
        let size = 1u16 << size_log;
        let region = HostRegion::new(Layout::new(size).unwrap(), 0x40_0000).unwrap();
        let mut q = Virtqueue::new(region, size, event_idx).unwrap();
        let mut dev = SimDevice::new(size, event_idx);
        let mut bus = Bus::new(0x1000);
        let mut m = Model {
            in_flight: HashMap::new(),
            free: size,
            used: VecDeque::new(),
            device_asleep: false,
            driver_asleep: false,
        };
        for op in ops {
            let kicked = matches!(op, Op::Kick);
            match op {
                Op::Add(r, w) => {
                    let readable: Vec<_> = (0..r).map(|i| bus.alloc(8 + i as u32, 1)).collect();
                    let writable: Vec<_> = (0..w).map(|i| bus.alloc(16 + i as u32, 0)).collect();
                    let need = r + w;
                    match q.add(&readable, &writable) {
                        Ok(id) => {
                            prop_assert!(need >= 1 && need <= usize::from(m.free));
                            prop_assert!(id.index() < usize::from(size));
                            let capacity = writable.iter().map(|s| s.len).sum();
                            prop_assert!(m.in_flight.insert(id, (need as u16, capacity)).is_none());
                            m.free -= need as u16;
                        }
                        Err(AddError::Empty) => prop_assert_eq!(need, 0),
                        Err(AddError::TooManySegments { .. }) => prop_assert!(need > usize::from(size)),
                        Err(AddError::Full { needed, free }) => {
                            prop_assert_eq!((needed, free), (need, m.free));
                            prop_assert!(need > usize::from(m.free));
                        }
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
                Op::Kick => {
                    if q.kick(&mut || ()) {
                        m.device_asleep = false;
                    }
                }
                Op::Fetch => {
                    if !m.device_asleep {
                        dev.busy(q.memory());
                        dev.fetch(q.memory());
                    }
                }
                Op::DeviceSleep => {
                    if !m.device_asleep {
                        m.device_asleep = dev.prepare_sleep(q.memory());
                    }
                }
                Op::Complete(i, w) if !dev.pending.is_empty() => {
                    let i = i % dev.pending.len();
                    let head = dev.pending[i].head;
                    let written = w % (dev.pending[i].capacity() + 1);
                    let before = dev.interrupts;
                    dev.complete(q.memory(), &mut bus, i, written);
                    let id = *m.in_flight.keys().find(|id| id.index() == usize::from(head)).unwrap();
                    m.used.push_back(Completion { id, written });
                    if dev.interrupts != before {
                        m.driver_asleep = false;
                    }
                }
                Op::Complete(..) => {}
                Op::Poll => {
                    let got = q.poll_used().unwrap();
                    prop_assert_eq!(got, m.used.pop_front());
                    if let Some(done) = got {
                        let (descs, _) = m.in_flight.remove(&done.id).unwrap();
                        m.free += descs;
                    }
                }
                Op::EnableInterrupts => {
                    let sleep = q.enable_interrupts();
                    prop_assert_eq!(sleep, m.used.is_empty());
                    m.driver_asleep = sleep;
                }
                Op::DisableInterrupts => {
                    q.disable_interrupts();
                    m.driver_asleep = false;
                }
            }
            prop_assert_eq!(q.free_descriptors(), m.free);
            prop_assert_eq!(usize::from(q.in_flight()), m.in_flight.len());
            // No lost interrupt: a sleeping driver has nothing to poll.
            prop_assert!(!m.driver_asleep || m.used.is_empty(), "driver sleeps on completions");
            // No lost notification: once the driver has kicked, a sleeping
            // device has nothing unseen (between add and kick it may).
            if kicked {
                prop_assert!(!m.device_asleep || dev.unseen(q.memory()) == 0, "device sleeps on requests");
            }
        }
    }
}
