//! Checks that a thread's SSE registers are its own: they start at zero,
//! and values it puts in `xmm0`..`xmm15` survive its syscalls (quick ones,
//! which the kernel answers without saving them, and `yield`, which lets
//! another thread run on the core) however other threads use theirs.
//!
//! `fpu SEED`: fills the registers from SEED, then makes 4000 syscalls,
//! a `yield` every 16th, checking every register after each. Exits with
//! 0 if all held, 1 if a register changed, 2 if one was not zero at start.
#![no_std]
#![no_main]

use percore_runtime::{println, sys};

percore_runtime::entry!(main);

/// Reads `xmm0`..`xmm15`' low quadwords.
fn read() -> [u64; 16] {
    let mut out = [0u64; 16];
    let p = out.as_mut_ptr();
    // SAFETY: stores 16 quadwords into `out`; touches no other memory.
    unsafe {
        core::arch::asm!(
            "movq [{p}], xmm0", "movq [{p} + 8], xmm1", "movq [{p} + 16], xmm2",
            "movq [{p} + 24], xmm3", "movq [{p} + 32], xmm4", "movq [{p} + 40], xmm5",
            "movq [{p} + 48], xmm6", "movq [{p} + 56], xmm7", "movq [{p} + 64], xmm8",
            "movq [{p} + 72], xmm9", "movq [{p} + 80], xmm10", "movq [{p} + 88], xmm11",
            "movq [{p} + 96], xmm12", "movq [{p} + 104], xmm13", "movq [{p} + 112], xmm14",
            "movq [{p} + 120], xmm15",
            p = in(reg) p,
            options(nostack, preserves_flags),
        );
    }
    out
}

/// Loads `values` into `xmm0`..`xmm15` (the program uses no SSE itself:
/// its target is soft-float, so nothing else touches them).
fn load(values: &[u64; 16]) {
    let p = values.as_ptr();
    // SAFETY: reads 16 quadwords from `values`.
    unsafe {
        core::arch::asm!(
            "movq xmm0, [{p}]", "movq xmm1, [{p} + 8]", "movq xmm2, [{p} + 16]",
            "movq xmm3, [{p} + 24]", "movq xmm4, [{p} + 32]", "movq xmm5, [{p} + 40]",
            "movq xmm6, [{p} + 48]", "movq xmm7, [{p} + 56]", "movq xmm8, [{p} + 64]",
            "movq xmm9, [{p} + 72]", "movq xmm10, [{p} + 80]", "movq xmm11, [{p} + 88]",
            "movq xmm12, [{p} + 96]", "movq xmm13, [{p} + 104]", "movq xmm14, [{p} + 112]",
            "movq xmm15, [{p} + 120]",
            p = in(reg) p,
            options(nostack, preserves_flags, readonly),
        );
    }
}

fn main() -> i64 {
    let at_start = read();
    if at_start != [0; 16] {
        println!("fpu: registers not zero at start: {at_start:x?}");
        return 2;
    }
    let mut text = [0u8; 32];
    let len = sys::args(&mut text).unwrap_or(0).min(text.len());
    let seed: u64 = core::str::from_utf8(&text[..len])
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1);
    let mut values = [0u64; 16];
    for (i, value) in values.iter_mut().enumerate() {
        *value = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64 + 1);
    }
    load(&values);
    for call in 0..4000u32 {
        if call % 16 == 15 {
            sys::yield_now();
        } else {
            core::hint::black_box(sys::getpid());
        }
        let now = read();
        if now != values {
            println!("fpu {seed}: registers changed after call {call}: {now:x?}");
            return 1;
        }
    }
    0
}
