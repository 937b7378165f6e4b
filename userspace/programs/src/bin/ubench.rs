//! The ring-3 side of `cargo xtask bench user`; one figure per run, named
//! by the arguments, printed as `bench NAME VALUE UNIT`:
//!
//! - `syscall`: `getpid` p50 over batches of 100 (`null_syscall_p50_ns`,
//!   measured as the Linux guest measures its `getpid`);
//! - `ring B`: `getpid` through the submission ring at batch size B (B
//!   entries, one `ring_enter` waiting for B completions), per operation,
//!   p50 over batches of about 512 operations (`user_ring_batchB_p50_ns`);
//! - `ping` / `pong`: a message round trip with a process on another core
//!   over the channel pair the kernel gave both as handle 0
//!   (`user_msg_round_trip_p50_ns`, p50 over batches of 50; `pong`
//!   answers until an empty message);
//! - `first`: exits with the clock's value at its first instruction's
//!   first syscall (the kernel computes spawn-to-first-instruction);
//! - `idle`: sets up a 64-entry ring and sleeps (for the idle memory figure).
#![no_std]
#![no_main]

use percore_runtime::abi::ring::Submission;
use percore_runtime::abi::{Handle, Sys};
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

const SAMPLES: usize = 201;

fn p50(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn main() -> i64 {
    let mut text = [0u8; 32];
    let len = sys::args(&mut text).unwrap_or(0).min(text.len());
    let mut words = core::str::from_utf8(&text[..len])
        .unwrap_or("")
        .split_whitespace();
    match words.next() {
        Some("syscall") => {
            let mut samples = [0u64; SAMPLES];
            for sample in &mut samples {
                let t0 = sys::clock();
                for _ in 0..100 {
                    core::hint::black_box(sys::getpid());
                }
                *sample = (sys::clock() - t0) / 100;
            }
            println!("bench null_syscall_p50_ns {} ns", p50(&mut samples));
            0
        }
        Some("ring") => {
            let batch: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
            ring(batch.clamp(1, 64))
        }
        Some("ping") => ping(),
        Some("pong") => {
            let channel = Handle::new(0, 1);
            let mut buffer = [0u8; 64];
            loop {
                match sys::recv(channel, &mut buffer) {
                    Ok(0) | Err(_) => return 0,
                    Ok(n) => {
                        let _ = sys::send(channel, &buffer[..n as usize]);
                    }
                }
            }
        }
        Some("first") => sys::clock() as i64,
        Some("idle") => {
            let _ring = Ring::setup(64);
            loop {
                let _ = sys::sleep_ns(86_400_000_000_000);
            }
        }
        _ => {
            println!("ubench: syscall | ring B | ping | pong | first | idle");
            2
        }
    }
}

fn ring(batch: u32) -> i64 {
    let Ok(mut ring) = Ring::setup(64) else {
        println!("ubench: no ring");
        return 1;
    };
    let rounds = (512 / batch).max(1);
    let mut samples = [0u64; SAMPLES];
    for sample in &mut samples {
        let t0 = sys::clock();
        for _ in 0..rounds {
            for tag in 0..batch {
                let _ = ring.submit(Submission::new(Sys::GetPid, u64::from(tag), [0; 6]));
            }
            let _ = ring.submit_and_wait(batch);
            for done in ring.completions() {
                core::hint::black_box(done);
            }
        }
        *sample = (sys::clock() - t0) / u64::from(rounds * batch);
    }
    println!(
        "bench user_ring_batch{batch}_p50_ns {} ns",
        p50(&mut samples)
    );
    0
}

fn ping() -> i64 {
    let channel = Handle::new(0, 1);
    let mut buffer = [0u8; 64];
    let mut trip = || {
        let _ = sys::send(channel, b"ping");
        let _ = sys::recv(channel, &mut buffer);
    };
    for _ in 0..200 {
        trip();
    }
    let mut samples = [0u64; 101];
    for sample in &mut samples {
        let t0 = sys::clock();
        for _ in 0..50 {
            trip();
        }
        *sample = (sys::clock() - t0) / 50;
    }
    let _ = sys::send(channel, b"");
    println!("bench user_msg_round_trip_p50_ns {} ns", p50(&mut samples));
    0
}
