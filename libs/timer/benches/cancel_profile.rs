//! The phases of `wheel.rs` one at a time, for instruction and cache
//! profiles: `valgrind --tool=callgrind [--cache-sim=yes] <bench binary>
//! --bench percore|heap [cancels] [expire|stepped|life]`. Arms 1M timers
//! with deadlines uniform in [1, 1e6] ticks, then cancels `cancels` of them
//! (default: a random half) in random order, the same workload as
//! `wheel.rs`'s `cancel` row; with `expire` it then advances once past the
//! last deadline, with `stepped` once per tick (the `expire` and
//! `expire_stepped` rows). `life` runs `wheel.rs`'s `lifecycle` workload
//! instead (1M timers armed 16 per tick, timeouts uniform in [1, 5000]
//! ticks, 90% cancelled before they fire, one advance per tick). Run with
//! 0 cancels and with the default and subtract for the cost of the cancels
//! alone. Prints a checksum. Without `--bench` (as under
//! `cargo test --benches`) it does nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;

use percore_timer::{Config, Expired, TickShift, Wheel};

const N: usize = 1_000_000;
const SHIFT: u32 = 20;

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
    let heap = args.iter().any(|a| a == "heap");
    let phase = |p: &str| args.iter().any(|a| a == p);
    if phase("life") {
        println!(
            "checksum {}",
            if heap { life_heap() } else { life_percore() }
        );
        return;
    }
    let mut s = 0x9E37_79B9_7F4A_7C15;
    let deadlines: Vec<u64> = (0..N).map(|_| 1 + rng(&mut s) % 1_000_000).collect();
    let mut order: Vec<usize> = (0..N).collect();
    for i in (1..N).rev() {
        order.swap(i, (rng(&mut s) % (i as u64 + 1)) as usize);
    }
    let cancels = args.iter().find_map(|a| a.parse().ok()).unwrap_or(N / 2);
    order.truncate(cancels);
    // Instants to advance to, in ticks: none, one jump, or every tick.
    let steps: Box<dyn Iterator<Item = u64>> = if phase("expire") {
        Box::new(std::iter::once(1_000_001))
    } else if phase("stepped") {
        Box::new(1..=1_000_001)
    } else {
        Box::new(std::iter::empty())
    };
    let mut sum = 0u64;
    if heap {
        let mut heap = BinaryHeap::with_capacity(N);
        let mut payloads: Vec<Option<u64>> = Vec::with_capacity(N);
        let keys: Vec<u32> = (0..N)
            .map(|i| {
                payloads.push(Some(i as u64));
                heap.push(Reverse((deadlines[i], i as u32)));
                i as u32
            })
            .collect();
        for &i in &order {
            sum = sum.wrapping_add(payloads[keys[i] as usize].take().unwrap());
        }
        for t in steps {
            while let Some(&Reverse((d, key))) = heap.peek() {
                if d > t {
                    break;
                }
                heap.pop();
                if let Some(p) = payloads[key as usize].take() {
                    sum = sum.wrapping_add(p);
                }
            }
        }
        black_box(&heap);
    } else {
        let config = Config::new(TickShift::new(SHIFT).unwrap()).with_capacity(N);
        let mut wheel = Wheel::new(config).unwrap();
        let handles: Vec<_> = (0..N)
            .map(|i| wheel.insert(deadlines[i] << SHIFT, i as u64).unwrap())
            .collect();
        for &i in &order {
            sum = sum.wrapping_add(wheel.cancel(handles[i]).unwrap());
        }
        for t in steps {
            wheel.advance(t << SHIFT, |e| {
                if let Expired::Oneshot { payload, .. } = e {
                    sum = sum.wrapping_add(payload);
                }
            });
        }
        black_box(&wheel);
    }
    println!("checksum {sum}");
}

const LIFE_PER_TICK: usize = 16;
const LIFE_TIMEOUT: u64 = 5_000;

/// `wheel.rs`'s lifecycle workload: per timer `(armed, deadline, cancel
/// tick or u64::MAX)`; timer `i` is armed at tick `i / 16`.
fn life_plan() -> (Vec<u64>, Vec<Vec<u32>>) {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let ticks = N / LIFE_PER_TICK + LIFE_TIMEOUT as usize + 2;
    let mut cancels = vec![Vec::new(); ticks];
    let deadlines = (0..N)
        .map(|i| {
            let armed = (i / LIFE_PER_TICK) as u64;
            let timeout = 1 + rng(&mut s) % LIFE_TIMEOUT;
            if rng(&mut s) % 10 != 0 {
                cancels[(armed + rng(&mut s) % timeout) as usize].push(i as u32);
            }
            armed + timeout
        })
        .collect();
    (deadlines, cancels)
}

fn life_percore() -> u64 {
    let (deadlines, cancels) = life_plan();
    let config = Config::new(TickShift::new(SHIFT).unwrap()).with_capacity(N / 8);
    let mut wheel = Wheel::new(config).unwrap();
    let mut handles = vec![None; N];
    let mut sum = 0u64;
    for (t, cancel) in cancels.iter().enumerate() {
        let armed = t * LIFE_PER_TICK..((t + 1) * LIFE_PER_TICK).min(N);
        for (i, &d) in deadlines
            .iter()
            .enumerate()
            .take(armed.end)
            .skip(armed.start)
        {
            handles[i] = Some(wheel.insert(d << SHIFT, i as u64).unwrap());
        }
        for &i in cancel {
            sum = sum.wrapping_add(wheel.cancel(handles[i as usize].take().unwrap()).unwrap());
        }
        wheel.advance((t as u64) << SHIFT, |e| {
            if let Expired::Oneshot { payload, .. } = e {
                sum = sum.wrapping_add(payload);
            }
        });
    }
    sum
}

fn life_heap() -> u64 {
    let (deadlines, cancels) = life_plan();
    let mut heap = BinaryHeap::with_capacity(N / 8);
    let mut payloads: Vec<Option<u64>> = Vec::with_capacity(N);
    let mut sum = 0u64;
    for (t, cancel) in cancels.iter().enumerate() {
        let armed = t * LIFE_PER_TICK..((t + 1) * LIFE_PER_TICK).min(N);
        for (i, &d) in deadlines
            .iter()
            .enumerate()
            .take(armed.end)
            .skip(armed.start)
        {
            payloads.push(Some(i as u64));
            heap.push(Reverse((d, i as u32)));
        }
        for &i in cancel {
            sum = sum.wrapping_add(payloads[i as usize].take().unwrap());
        }
        while let Some(&Reverse((d, key))) = heap.peek() {
            if d > t as u64 {
                break;
            }
            heap.pop();
            if let Some(p) = payloads[key as usize].take() {
                sum = sum.wrapping_add(p);
            }
        }
    }
    sum
}
