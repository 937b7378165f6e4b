//! Checks that no kernel register value reaches user mode: every register
//! is zero at `_start`; after a syscall every register the program did not
//! pass in holds its own value (`rax` the result, `rcx` the return address
//! and `r11` the flags, as `SYSCALL` defines); and a long loop that the
//! timer preempts (the `IRET` path) finds every register as it left it.
//! Exits with the number of wrong registers (0: none).
#![no_std]
#![no_main]

use percore_runtime::abi::Sys;
use percore_runtime::{START_REGISTERS, println, sys};

percore_runtime::entry!(main);

const NAMES: [&str; 15] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
    "r15",
];

/// A value per register: `0x1111_1111_1111_1111 * (index + 1)`-like.
const fn pattern(index: usize) -> u64 {
    0x0101_0101_0101_0101u64.wrapping_mul(index as u64 + 0x11)
}

/// Fills every register but rsp with its pattern, runs `syscall` (rax =
/// number) or a `loops`-long countdown in rcx, and stores every register
/// (in `NAMES` order) into `out`, plus the address after the syscall.
fn probe(number: u64, loops: u64, out: &mut [u64; 16]) {
    // SAFETY: the block saves and restores rbx and rbp itself, clobbers
    // only declared registers, and writes 16 words to `out`.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "push rdi",
            "push rsi",
            "mov rbx, {p1}",
            "mov rdx, {p3}",
            "mov rdi, {p5}",
            "mov rbp, {p6}",
            "mov r8, {p7}",
            "mov r9, {p8}",
            "mov r10, {p9}",
            "mov r11, {p10}",
            "mov r12, {p11}",
            "mov r13, {p12}",
            "mov r14, {p13}",
            "mov r15, {p14}",
            "test rsi, rsi",
            "jz 3f",
            "mov rcx, rsi",
            "mov rsi, {p4}",
            "2:",
            "dec rcx",
            "jnz 2b",
            "mov rcx, {p2}",
            "jmp 4f",
            "3:",
            "mov rsi, {p4}",
            "syscall",
            "4:",
            "xchg [rsp + 8], rsi", // rsi = out, saved slot = rsi
            "mov [rsi], rax",
            "mov [rsi + 8], rbx",
            "mov [rsi + 16], rcx",
            "mov [rsi + 24], rdx",
            "mov [rsi + 40], rdi",
            "mov [rsi + 48], rbp",
            "mov [rsi + 56], r8",
            "mov [rsi + 64], r9",
            "mov [rsi + 72], r10",
            "mov [rsi + 80], r11",
            "mov [rsi + 88], r12",
            "mov [rsi + 96], r13",
            "mov [rsi + 104], r14",
            "mov [rsi + 112], r15",
            "mov rax, [rsp + 8]",
            "mov [rsi + 32], rax",
            "lea rax, [rip + 4b]",
            "mov [rsi + 120], rax",
            "add rsp, 16",
            "pop rbp",
            "pop rbx",
            p1 = const pattern(1),
            p2 = const pattern(2),
            p3 = const pattern(3),
            p4 = const pattern(4),
            p5 = const pattern(5),
            p6 = const pattern(6),
            p7 = const pattern(7),
            p8 = const pattern(8),
            p9 = const pattern(9),
            p10 = const pattern(10),
            p11 = const pattern(11),
            p12 = const pattern(12),
            p13 = const pattern(13),
            p14 = const pattern(14),
            inout("rax") number => _,
            inout("rdi") out.as_mut_ptr() => _,
            inout("rsi") loops => _,
            out("rcx") _, out("rdx") _, out("r8") _, out("r9") _, out("r10") _,
            out("r11") _, out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
    }
}

fn main() -> i64 {
    let mut wrong = 0;
    // SAFETY: written once by `_start`, read here.
    let start = unsafe { core::ptr::read(&raw const START_REGISTERS) };
    for (name, value) in NAMES.iter().zip(start) {
        if value != 0 {
            println!("regs: {name} = {value:#x} at _start, not 0");
            wrong += 1;
        }
    }
    let pid = sys::getpid();
    let mut out = [0u64; 16];
    probe(Sys::GetPid as u64, 0, &mut out);
    for (i, name) in NAMES.iter().enumerate() {
        let want = match i {
            0 => pid,
            2 => out[15],
            10 => out[10] | 0x202, // r11: the flags, with IF and bit 1 set
            _ => pattern(i),
        };
        if out[i] != want || (i == 10 && out[i] & 0x202 != 0x202) {
            println!("regs: after syscall {name} = {:#x}, want {want:#x}", out[i]);
            wrong += 1;
        }
    }
    // Long enough to be preempted several times (2 ms slices).
    let mut out = [0u64; 16];
    let before = sys::info().map(|i| i.cpu_ns).unwrap_or(0);
    probe(0, 200_000_000, &mut out);
    let after = sys::info().map(|i| i.cpu_ns).unwrap_or(0);
    for (i, name) in NAMES.iter().enumerate().skip(1) {
        if out[i] != pattern(i) {
            println!(
                "regs: after preemption {name} = {:#x}, want {:#x}",
                out[i],
                pattern(i)
            );
            wrong += 1;
        }
    }
    println!(
        "regs: {wrong} wrong registers; the loop ran {} us",
        (after - before) / 1000
    );
    wrong
}
