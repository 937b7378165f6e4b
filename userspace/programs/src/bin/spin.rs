//! An endless loop: the kernel must preempt it. With no argument the loop
//! makes no syscall at all; with `syscalls` it makes nothing but quick
//! syscalls (`getpid`), which the kernel answers without going back to
//! its reactor, so only the end of the slice stops it; with `pollwait` it
//! makes nothing but `poll_wait` calls with a zero timeout, which go
//! through the kernel's task and return at once; with `sleep` it sleeps
//! 1 ms at a time (its CPU time must not count the sleeps).
#![no_std]
#![no_main]

use percore_runtime::abi::Sys;
use percore_runtime::sys;

percore_runtime::entry!(main);

fn main() -> i64 {
    let mut text = [0u8; 16];
    let len = sys::args(&mut text).unwrap_or(0).min(text.len());
    let syscalls = &text[..len] == b"syscalls";
    let pollwait = &text[..len] == b"pollwait";
    let sleeps = &text[..len] == b"sleep";
    let mut events = [0u64; 2];
    let mut counter: u64 = 0;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
        if syscalls {
            core::hint::black_box(sys::getpid());
        }
        if sleeps {
            let _ = sys::sleep_ns(1_000_000);
        }
        if pollwait {
            let ptr = events.as_mut_ptr() as u64;
            core::hint::black_box(sys::raw(Sys::PollWait as u64, ptr, 1, 0)).ok();
        }
    }
}
