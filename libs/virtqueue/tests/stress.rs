//! Real threads on real atomics: a driver thread and a simulated device
//! thread share one queue, each sleeping (yielding) whenever the protocol
//! lets it, woken only by the other's notification or interrupt. A lost
//! wakeup shows as a stall (the test fails after a generous timeout); the
//! driver checks every completion. `PERCORE_STRESS=long` runs 1M requests.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::SimDevice;
use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};

const STALL: Duration = Duration::from_secs(20);

fn requests() -> u64 {
    match std::env::var("PERCORE_STRESS").as_deref() {
        Ok("long") => 1_000_000,
        _ => 50_000,
    }
}

/// Waits until `flag` is set (and clears it), or `stop` is; panics on a stall.
fn sleep_until(flag: &AtomicBool, stop: &AtomicBool, who: &str) {
    let start = Instant::now();
    while !flag.swap(false, Ordering::Acquire) && !stop.load(Ordering::Acquire) {
        assert!(start.elapsed() < STALL, "{who} never woken: lost wakeup");
        thread::yield_now();
    }
}

fn run(event_idx: bool) {
    let size = 16;
    let region = HostRegion::new(Layout::new(size).unwrap(), 0x9000_0000).unwrap();
    let doorbell = AtomicBool::new(false);
    let interrupt = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let total = requests();
    thread::scope(|s| {
        let mut q = Virtqueue::new(&region, size, event_idx).unwrap();
        let region = &region;
        let (doorbell, interrupt, stop) = (&doorbell, &interrupt, &stop);
        s.spawn(move || {
            let mut dev = SimDevice::new(size, event_idx);
            let mut rng = 0x2545_f491_u64;
            while !stop.load(Ordering::Acquire) {
                dev.busy(region);
                dev.fetch(region);
                if dev.pending.is_empty() {
                    if dev.prepare_sleep(region) {
                        sleep_until(doorbell, stop, "device");
                    }
                    continue;
                }
                while !dev.pending.is_empty() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let req = dev.pending.swap_remove(rng as usize % dev.pending.len());
                    let before = dev.interrupts;
                    let written = (rng >> 32) as u32 % (req.capacity() + 1);
                    dev.complete_raw(region, u32::from(req.head), written);
                    if dev.interrupts != before {
                        interrupt.store(true, Ordering::Release);
                    }
                }
            }
        });
        let mut capacity = vec![None; usize::from(size)];
        let (mut added, mut done) = (0u64, 0u64);
        while done < total {
            let mut any = false;
            while added < total {
                let writable = 1 + (added % 3) as u32 * 100;
                let Ok(id) = q.add(
                    &[Segment::new(0x1000, 8)],
                    &[Segment::new(0x2000, writable)],
                ) else {
                    break;
                };
                assert!(
                    capacity[id.index()].replace(writable).is_none(),
                    "id reused in flight"
                );
                added += 1;
                any = true;
            }
            if any {
                q.kick(&mut || doorbell.store(true, Ordering::Release));
            }
            while let Some(c) = q.poll_used().unwrap() {
                let cap = capacity[c.id.index()]
                    .take()
                    .expect("completion not in flight");
                assert!(c.written <= cap);
                done += 1;
            }
            if done < total && added == total || q.free_descriptors() < 2 {
                if q.enable_interrupts() {
                    sleep_until(interrupt, stop, "driver");
                }
                q.disable_interrupts();
            }
        }
        assert_eq!(q.in_flight(), 0);
        stop.store(true, Ordering::Release);
    });
}

#[test]
fn driver_and_device_threads_event_idx() {
    run(true);
}

#[test]
fn driver_and_device_threads_flags() {
    run(false);
}
