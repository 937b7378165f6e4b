//! The canary of the isolation tests: fills a buffer, then for ROUNDS
//! rounds (the first argument, default 100) sleeps 5 ms and checks the
//! buffer's checksum is what it was. With a second argument `ring` it
//! also sets up its submission ring and fills its entry slots, a mapping
//! at an address (`percore_abi::ring::RING_BASE` + 4096) that no other
//! process has, and checks those too. Exits 0 if nothing changed, 1 if
//! something did.
#![no_std]
#![no_main]

use percore_runtime::abi::ring::RING_BASE;
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

static mut MEMORY: [u64; 2048] = [0; 2048];

/// The ring's submission slots (256 entries of 64 bytes), as words.
const RING_WORDS: usize = 256 * 64 / 8;

fn fnv(words: &[u64], h: u64) -> u64 {
    words
        .iter()
        .fold(h, |h, w| (h ^ w).wrapping_mul(0x100_0000_01b3))
}

fn ring_slots() -> *mut u64 {
    (RING_BASE + 4096) as *mut u64
}

fn checksum(with_ring: bool) -> u64 {
    // SAFETY: one thread; read through a raw pointer, never a reference held across calls.
    let memory = unsafe { &*(&raw const MEMORY).cast::<[u64; 2048]>() };
    let h = fnv(memory, 0xcbf2_9ce4_8422_2325);
    if !with_ring {
        return h;
    }
    // SAFETY: the ring is mapped (set up below) and only read here; the
    // kernel never writes the submission slots.
    let slots = unsafe { core::slice::from_raw_parts(ring_slots(), RING_WORDS) };
    fnv(slots, h)
}

fn main() -> i64 {
    let mut args = [0u8; 16];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let mut words = core::str::from_utf8(&args[..len])
        .unwrap_or("")
        .split_whitespace();
    let rounds = words
        .next()
        .and_then(|w| w.parse::<u32>().ok())
        .unwrap_or(100);
    let ring = match words.next() {
        Some("ring") => match Ring::setup(256) {
            Ok(ring) => Some(ring),
            Err(error) => {
                println!("canary: ring setup: {error}");
                return 1;
            }
        },
        _ => None,
    };
    let pid = sys::getpid();
    // SAFETY: one thread.
    let memory = unsafe { &mut *(&raw mut MEMORY).cast::<[u64; 2048]>() };
    for (i, word) in memory.iter_mut().enumerate() {
        *word = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ pid;
    }
    if ring.is_some() {
        for i in 0..RING_WORDS {
            // SAFETY: inside the mapped ring's submission slots.
            unsafe {
                ring_slots()
                    .add(i)
                    .write_volatile((i as u64) ^ pid.rotate_left(17))
            };
        }
    }
    let expected = checksum(ring.is_some());
    for round in 0..rounds {
        let _ = sys::sleep_ns(5_000_000);
        let now = checksum(ring.is_some());
        if now != expected {
            println!("canary {pid}: checksum changed in round {round}: {now:#x} != {expected:#x}");
            return 1;
        }
    }
    println!("canary {pid}: checksum {expected:#x} unchanged over {rounds} rounds");
    0
}
