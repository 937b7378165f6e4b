//! Single-threaded SPSC push/pop loops for instruction-count profiles:
//! `valgrind --tool=callgrind <bench binary> --bench percore|rtrb [burst]`
//! (or `perf stat -e instructions`). Each round pushes `burst` messages
//! (default 16) and pops them again, 100k rounds, on a 1024-slot ring; the
//! counts are repeatable whatever the machine is doing, unlike the threaded
//! throughput of `rings.rs`. Without `--bench` (as under `cargo test
//! --benches`) it does nothing.

use std::hint::black_box;

const ROUNDS: u64 = 100_000;

fn percore(burst: u64) -> u64 {
    let (mut tx, mut rx) = percore_ring::spsc::channel::<u64>(1024).unwrap();
    let mut sum = 0u64;
    for r in 0..ROUNDS {
        for i in 0..burst {
            if tx.try_push(black_box(r + i)).is_err() {
                unreachable!();
            }
        }
        for _ in 0..burst {
            sum = sum.wrapping_add(black_box(rx.try_pop().unwrap()));
        }
        black_box(rx.try_pop().is_err());
    }
    sum
}

fn rtrb(burst: u64) -> u64 {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(1024);
    let mut sum = 0u64;
    for r in 0..ROUNDS {
        for i in 0..burst {
            if tx.push(black_box(r + i)).is_err() {
                unreachable!();
            }
        }
        for _ in 0..burst {
            sum = sum.wrapping_add(black_box(rx.pop().unwrap()));
        }
        black_box(rx.pop().is_err());
    }
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let which = args.iter().find(|a| *a == "percore" || *a == "rtrb");
    let burst = args
        .iter()
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(16);
    let sum = match which.map(String::as_str) {
        Some("rtrb") => rtrb(burst),
        _ => percore(burst),
    };
    println!(
        "{} burst {burst}: checksum {sum}",
        which.map_or("percore", |s| s)
    );
}
