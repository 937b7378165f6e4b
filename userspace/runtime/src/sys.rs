//! The syscalls, one function each, over the raw stubs (`syscall3` and
//! `syscall4`: number in `rax`, arguments in `rdi, rsi, rdx, r10`; `rcx`
//! and `r11` are clobbered, as `SYSCALL` does).

use percore_abi::{Error, Handle, IoVec, ProcessInfo, Sys, decode};

/// A raw syscall with up to three arguments; the raw `rax` comes back.
///
/// # Safety
/// Pointers among the arguments must be what the call expects (the kernel
/// checks them, but a valid pointer to the wrong memory is overwritten).
#[inline(always)]
pub unsafe fn syscall3(number: u64, a: u64, b: u64, c: u64) -> u64 {
    let ret: u64;
    // SAFETY: SYSCALL preserves every register but rax, rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A raw syscall with four arguments (the fourth in `r10`).
///
/// # Safety
/// As [`syscall3`].
#[inline(always)]
pub unsafe fn syscall4(number: u64, a: u64, b: u64, c: u64, d: u64) -> u64 {
    let ret: u64;
    // SAFETY: SYSCALL preserves every register but rax, rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A raw call by number with four arguments (for the bad-argument tests).
pub fn raw4(number: u64, a: u64, b: u64, c: u64, d: u64) -> Result<u64, Error> {
    // SAFETY: as `raw`.
    decode(unsafe { syscall4(number, a, b, c, d) })
}

/// A call with three plain-number arguments (no pointers the kernel writes).
pub fn call(sys: Sys, a: u64, b: u64, c: u64) -> Result<u64, Error> {
    // SAFETY: the kernel checks every pointer; it writes through none of
    // these calls' arguments.
    decode(unsafe { syscall3(sys as u64, a, b, c) })
}

/// A raw call by number (for the bad-argument tests: any number, any value).
pub fn raw(number: u64, a: u64, b: u64, c: u64) -> Result<u64, Error> {
    // SAFETY: the caller passes numbers; a pointer the kernel writes
    // through must be checked by the caller (badptr passes bad ones).
    decode(unsafe { syscall3(number, a, b, c) })
}

pub fn exit(code: i64) -> ! {
    let _ = call(Sys::Exit, code as u64, 0, 0);
    // The kernel never returns from exit; if it did, stop here.
    loop {
        core::hint::spin_loop();
    }
}

pub fn write(bytes: &[u8]) -> Result<u64, Error> {
    call(Sys::Write, bytes.as_ptr() as u64, bytes.len() as u64, 0)
}

pub fn yield_now() {
    let _ = call(Sys::Yield, 0, 0, 0);
}

pub fn getpid() -> u64 {
    call(Sys::GetPid, 0, 0, 0).unwrap_or(0)
}

/// Nanoseconds since boot.
pub fn clock() -> u64 {
    call(Sys::Clock, 0, 0, 0).unwrap_or(0)
}

pub fn sleep_ns(ns: u64) -> Result<u64, Error> {
    call(Sys::Sleep, ns, 0, 0)
}

pub fn close(handle: Handle) -> Result<u64, Error> {
    call(Sys::Close, handle.raw(), 0, 0)
}

pub fn channel() -> Result<Handle, Error> {
    call(Sys::Channel, 0, 0, 0).map(Handle::from_raw)
}

pub fn send(handle: Handle, message: &[u8]) -> Result<u64, Error> {
    call(
        Sys::Send,
        handle.raw(),
        message.as_ptr() as u64,
        message.len() as u64,
    )
}

pub fn recv(handle: Handle, buffer: &mut [u8]) -> Result<u64, Error> {
    // SAFETY: the kernel writes at most `buffer.len()` bytes into `buffer`.
    decode(unsafe {
        syscall3(
            Sys::Recv as u64,
            handle.raw(),
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
        )
    })
}

pub fn timer(period_ns: u64) -> Result<Handle, Error> {
    call(Sys::Timer, period_ns, 0, 0).map(Handle::from_raw)
}

pub fn wait(handle: Handle) -> Result<u64, Error> {
    call(Sys::Wait, handle.raw(), 0, 0)
}

pub fn write_vectored(buffers: &[IoVec]) -> Result<u64, Error> {
    call(
        Sys::WriteVectored,
        buffers.as_ptr() as u64,
        buffers.len() as u64,
        0,
    )
}

pub fn info() -> Result<ProcessInfo, Error> {
    let mut info = ProcessInfo::default();
    // SAFETY: the kernel writes one ProcessInfo into `info`.
    decode(unsafe { syscall3(Sys::ProcessInfo as u64, &raw mut info as u64, 0, 0) })?;
    Ok(info)
}

/// Copies the start arguments into `buffer`; returns their full length.
pub fn args(buffer: &mut [u8]) -> Result<usize, Error> {
    // SAFETY: the kernel writes at most `buffer.len()` bytes into `buffer`.
    decode(unsafe {
        syscall3(
            Sys::Args as u64,
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
            0,
        )
    })
    .map(|n| n as usize)
}
