//! The canary of the isolation tests: fills a buffer, then for ARG rounds
//! (default 100) sleeps 5 ms and checks the buffer's checksum is what it
//! was. Exits 0 if it never changed, 1 if it did.
#![no_std]
#![no_main]

use percore_runtime::{println, sys};

percore_runtime::entry!(main);

static mut MEMORY: [u64; 2048] = [0; 2048];

fn checksum() -> u64 {
    // SAFETY: one thread; read through a raw pointer, never a reference held across calls.
    let memory = unsafe { &*(&raw const MEMORY).cast::<[u64; 2048]>() };
    memory.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
        (h ^ w).wrapping_mul(0x100_0000_01b3)
    })
}

fn main() -> i64 {
    let mut args = [0u8; 16];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let rounds = core::str::from_utf8(&args[..len])
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .unwrap_or(100);
    let pid = sys::getpid();
    // SAFETY: one thread.
    let memory = unsafe { &mut *(&raw mut MEMORY).cast::<[u64; 2048]>() };
    for (i, word) in memory.iter_mut().enumerate() {
        *word = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ pid;
    }
    let expected = checksum();
    for round in 0..rounds {
        let _ = sys::sleep_ns(5_000_000);
        let now = checksum();
        if now != expected {
            println!("canary {pid}: checksum changed in round {round}: {now:#x} != {expected:#x}");
            return 1;
        }
    }
    println!("canary {pid}: checksum {expected:#x} unchanged over {rounds} rounds");
    0
}
