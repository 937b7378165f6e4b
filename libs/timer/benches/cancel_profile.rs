//! The cancel phase of `wheel.rs` on its own, for instruction and cache
//! profiles: `valgrind --tool=callgrind [--cache-sim=yes] <bench binary>
//! --bench percore|heap|heap8 [cancels]`. Arms 1M timers with deadlines uniform in
//! [1, 1e6] ticks, then cancels a random half in random order (the same
//! workload as `wheel.rs`'s `cancel` row); prints a checksum and the
//! wall-clock ns per cancel. Without
//! `--bench` (as under `cargo test --benches`) it does nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;

use percore_timer::{Config, TickShift, Wheel};

const N: usize = 1_000_000;

/// xorshift64*: the same sequence on every run.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let mut s = 0x9E37_79B9_7F4A_7C15;
    let deadlines: Vec<u64> = (0..N).map(|_| 1 + rng(&mut s) % 1_000_000).collect();
    let mut order: Vec<usize> = (0..N).collect();
    for i in (1..N).rev() {
        order.swap(i, (rng(&mut s) % (i as u64 + 1)) as usize);
    }
    // An optional count of cancels (default half): run with 0 and with the
    // default and subtract, for the cost of the cancels alone.
    let cancels = args.iter().find_map(|a| a.parse().ok()).unwrap_or(N / 2);
    order.truncate(cancels);
    let mut sum = 0u64;
    if args.iter().any(|a| a == "heap") {
        sum = heap::<u32>(&deadlines, &order);
    } else if args.iter().any(|a| a == "heap8") {
        // The same heap with 8-byte keys, the size of a `TimerHandle`: what
        // the width of the caller's handle array alone costs a cancel.
        sum = heap::<u64>(&deadlines, &order);
    } else {
        let config = Config::new(TickShift::new(20).unwrap()).with_capacity(N);
        let mut wheel = Wheel::new(config).unwrap();
        let handles: Vec<_> = (0..N)
            .map(|i| wheel.insert(deadlines[i] << 20, i as u64).unwrap())
            .collect();
        let start = std::time::Instant::now();
        for &i in &order {
            sum = sum.wrapping_add(wheel.cancel(handles[i]).unwrap());
        }
        report(start, order.len());
        black_box(&wheel);
    }
    println!("checksum {sum}");
}

/// The lazy heap of `wheel.rs` with keys of type `K`: arms every timer,
/// then cancels `order`; returns the checksum.
fn heap<K: Copy + TryFrom<usize> + TryInto<usize>>(deadlines: &[u64], order: &[usize]) -> u64 {
    let key = |i: usize| K::try_from(i).ok().unwrap();
    let mut heap = BinaryHeap::with_capacity(N);
    let mut payloads: Vec<Option<u64>> = Vec::with_capacity(N);
    let keys: Vec<K> = (0..N)
        .map(|i| {
            payloads.push(Some(i as u64));
            heap.push(Reverse((deadlines[i], i as u32)));
            key(i)
        })
        .collect();
    let mut sum = 0u64;
    let start = std::time::Instant::now();
    for &i in order {
        let slot = keys[i].try_into().ok().unwrap();
        sum = sum.wrapping_add(payloads[slot].take().unwrap());
    }
    report(start, order.len());
    black_box(&heap);
    sum
}

/// Prints the wall-clock time per cancel (for direction only: under
/// callgrind it is meaningless, on a shared machine noisy).
fn report(start: std::time::Instant, cancels: usize) {
    let ns = start.elapsed().as_nanos() as f64 / cancels.max(1) as f64;
    println!("{ns:.1} ns per cancel");
}
