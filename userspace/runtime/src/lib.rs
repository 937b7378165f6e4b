//! The runtime of percore's ring-3 programs: the entry point (`_start`,
//! which records the registers the program started with, then runs
//! `main` and exits with its code), the syscall stubs of `percore-abi`,
//! the submission/completion ring ([`ring`]), readiness over it with
//! `percore_poll`'s names ([`poll`]) and a small async executor
//! ([`executor`]), sockets with mio's names ([`net`]), the disk log
//! ([`dlog`]),
//! a small allocator, and `print!`/`println!`. It depends on the ABI
//! crate alone.
//!
//! A program is a `#![no_std] #![no_main]` binary that names its main
//! function with [`entry!`]:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! percore_runtime::entry!(main);
//! fn main() -> i64 {
//!     percore_runtime::println!("hello");
//!     0
//! }
//! ```
#![no_std]

pub mod alloc;
pub mod dlog;
pub mod executor;
pub mod net;
pub mod poll;
pub mod print;
pub mod ring;
pub mod sys;

pub use percore_abi as abi;

/// The general-purpose registers at `_start`, in the order `rax, rbx,
/// rcx, rdx, rsi, rdi, rbp, r8..r15` (the kernel starts a program with
/// all of them zero; `regs` checks it).
pub static mut START_REGISTERS: [u64; 15] = [0; 15];

/// Names the program's main function (`fn() -> i64`, the exit code).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "Rust" fn __percore_main() -> i64 {
            $main()
        }
    };
}

unsafe extern "Rust" {
    fn __percore_main() -> i64;
}

/// The entry point: saves the registers as the kernel handed them over,
/// then calls [`start`] with a 16-byte aligned stack.
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "mov [rip + {regs}], rax",
        "mov [rip + {regs} + 8], rbx",
        "mov [rip + {regs} + 16], rcx",
        "mov [rip + {regs} + 24], rdx",
        "mov [rip + {regs} + 32], rsi",
        "mov [rip + {regs} + 40], rdi",
        "mov [rip + {regs} + 48], rbp",
        "mov [rip + {regs} + 56], r8",
        "mov [rip + {regs} + 64], r9",
        "mov [rip + {regs} + 72], r10",
        "mov [rip + {regs} + 80], r11",
        "mov [rip + {regs} + 88], r12",
        "mov [rip + {regs} + 96], r13",
        "mov [rip + {regs} + 104], r14",
        "mov [rip + {regs} + 112], r15",
        "xor ebp, ebp",
        "and rsp, -16",
        "call {start}",
        "ud2",
        regs = sym START_REGISTERS,
        start = sym start,
    )
}

extern "C" fn start() -> ! {
    // SAFETY: the program defines `__percore_main` with `entry!`.
    let code = unsafe { __percore_main() };
    sys::exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic: {info}");
    sys::exit(101)
}
