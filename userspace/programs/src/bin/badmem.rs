//! Does one forbidden thing, named by its argument, and must be killed for
//! it: `read-kernel`, `write-kernel`, `exec-kernel`, `exec-data`,
//! `exec-stack`, `write-text`, `null`, `ud`, `divide`, `privileged`,
//! `read-at ADDR`, `write-at ADDR` (ADDR in hex: another process's mapping).
//! Exits 0 only if it was not stopped (the test then fails).
#![no_std]
#![no_main]

use percore_runtime::{println, sys};

percore_runtime::entry!(main);

/// A `ret` instruction in writable (hence not executable) data.
static mut DATA_CODE: [u8; 16] = [0xC3; 16];
/// Where the kernel image lives (`boot::KERNEL_BASE`).
const KERNEL: u64 = 0xFFFF_FFFF_8000_0000;

fn main() -> i64 {
    let mut args = [0u8; 32];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let what = core::str::from_utf8(&args[..len]).unwrap_or("");
    println!("badmem: {what}");
    let (what, at) = match what.split_once(' ') {
        Some((case, addr)) => (
            case,
            u64::from_str_radix(addr.trim().trim_start_matches("0x"), 16).unwrap_or(0),
        ),
        None => (what, 0),
    };
    // SAFETY: deliberately invalid, every arm; the kernel must kill us.
    unsafe {
        match what {
            "read-kernel" => {
                core::ptr::read_volatile(KERNEL as *const u64);
            }
            "write-kernel" => core::ptr::write_volatile(KERNEL as *mut u64, 0),
            "exec-kernel" => {
                let f: extern "C" fn() = core::mem::transmute(KERNEL as usize);
                f();
            }
            "exec-data" => {
                let f: extern "C" fn() = core::mem::transmute(&raw mut DATA_CODE as usize);
                f();
            }
            "exec-stack" => {
                let code = [0xC3u8; 16];
                let f: extern "C" fn() = core::mem::transmute(code.as_ptr() as usize);
                f();
            }
            "write-text" => core::ptr::write_volatile(main as *const () as *mut u8, 0),
            "null" => {
                core::ptr::read_volatile(core::ptr::null::<u64>());
            }
            "ud" => core::arch::asm!("ud2"),
            "divide" => {
                core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div rcx", out("rax") _, out("rdx") _, out("rcx") _)
            }
            "privileged" => core::arch::asm!("hlt"),
            "read-at" => {
                core::ptr::read_volatile(at as *const u64);
            }
            "write-at" => core::ptr::write_volatile(at as *mut u64, 0xBAD),
            _ => {
                println!("badmem: unknown case `{what}`");
                return 2;
            }
        }
    }
    0
}
