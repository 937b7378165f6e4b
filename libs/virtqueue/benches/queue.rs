//! `cargo bench -p percore-virtqueue`: the driver's cost per request,
//! single-threaded against the simulated device of the tests (so the
//! figures include the simulator's share, its small heap allocations per
//! request among them, and no real device latency). Median of `PERCORE_BENCH_REPS` (default 5) repetitions.
//!
//! Rows: a virtio-blk-shaped request (1 readable + 2 writable segments)
//! added, kicked, completed and polled one at a time (queue depth 1), and
//! in batches of 32 (one kick and one interrupt re-arm per batch), with
//! `EVENT_IDX` on. One machine-readable line per row:
//! `bench <name> <value> <unit>`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{Bus, SimDevice};
use percore_benchkit::reps;
use percore_virtqueue::{HostRegion, Layout, Virtqueue};

const REQUESTS: u32 = 1_000_000;

/// Nanoseconds per request, moving `REQUESTS` requests in batches of `depth`.
fn run(depth: u32) -> f64 {
    let size = 256;
    let mut q = Virtqueue::new(
        HostRegion::new(Layout::new(size).unwrap(), 0x1000_0000).unwrap(),
        size,
        true,
    )
    .unwrap();
    let mut dev = SimDevice::new(size, true);
    let mut bus = Bus::new(0x2000_0000);
    let (header, data, status) = (bus.alloc(16, 1), bus.alloc(4096, 0), bus.alloc(1, 0));
    let mut kicks = 0u64;
    let start = Instant::now();
    for _ in 0..REQUESTS / depth {
        for _ in 0..depth {
            black_box(q.add(&[header], &[data, status]).unwrap());
        }
        q.kick(&mut || kicks += 1);
        dev.fetch(q.memory());
        while !dev.pending.is_empty() {
            // Complete without touching the 4 KiB buffer: ring cost only.
            let head = dev.pending.swap_remove(0).head;
            dev.complete_raw(q.memory(), u32::from(head), 4097);
        }
        while let Some(done) = q.poll_used().unwrap() {
            black_box(done);
        }
        let _ = q.enable_interrupts();
    }
    black_box(kicks);
    start.elapsed().as_nanos() as f64 / f64::from(REQUESTS)
}

fn main() {
    println!("{:<28} {:>10}", "row", "ns/request");
    for (name, depth) in [("virtqueue_qd1_request", 1), ("virtqueue_qd32_request", 32)] {
        let mut runs: Vec<f64> = (0..reps(5)).map(|_| run(depth)).collect();
        runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let ns = runs[runs.len() / 2];
        println!("{name:<28} {ns:>10.1}");
        println!("bench {name} {ns:.1} ns");
    }
}
