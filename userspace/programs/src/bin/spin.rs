//! An endless loop: the kernel must preempt it. With no argument the loop
//! makes no syscall at all; with `syscalls` it makes nothing but quick
//! syscalls (`getpid`), which the kernel answers without going back to
//! its reactor, so only the end of the slice stops it.
#![no_std]
#![no_main]

use percore_runtime::sys;

percore_runtime::entry!(main);

fn main() -> i64 {
    let mut text = [0u8; 16];
    let len = sys::args(&mut text).unwrap_or(0).min(text.len());
    let syscalls = &text[..len] == b"syscalls";
    let mut counter: u64 = 0;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
        if syscalls {
            core::hint::black_box(sys::getpid());
        }
    }
}
