//! An endless loop with no syscall: the kernel must preempt it.
#![no_std]
#![no_main]

percore_runtime::entry!(main);

fn main() -> i64 {
    let mut counter: u64 = 0;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}
