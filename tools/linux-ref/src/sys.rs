//! The few Linux calls the figures need, wrapped: pinning, clocks, futexes,
//! real-time priority, `/proc/interrupts`, and leaving QEMU.

use std::sync::atomic::AtomicU32;

/// Online CPUs (vCPUs of the guest), from `/sys/devices/system/cpu/online`
/// ("0-3"). Not sysconf: musl counts the caller's affinity mask, which
/// pinning narrows.
pub fn cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let count: usize = text
        .trim()
        .split(',')
        .filter_map(|range| match range.split_once('-') {
            Some((a, b)) => Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?),
            None => range.parse::<usize>().ok().map(|_| 1),
        })
        .sum();
    count.max(1)
}

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; cpu is below CPU_SETSIZE
    // on any machine QEMU offers.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "pinning to cpu {cpu}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC in ns (through the vDSO: no system call).
pub fn now_ns() -> u64 {
    clock(libc::CLOCK_MONOTONIC)
}

/// Time since the kernel started keeping time (CLOCK_BOOTTIME), in ns.
pub fn boottime_ns() -> u64 {
    clock(libc::CLOCK_BOOTTIME)
}

pub fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

/// Sleeps until CLOCK_MONOTONIC reads `deadline_ns`.
pub fn sleep_until(deadline_ns: u64) {
    let ts = timespec(deadline_ns);
    // SAFETY: `ts` is a valid timespec; a null remainder is allowed with TIMER_ABSTIME.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}

/// Blocks while `word` still holds `expected` (or until a wake-up).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAIT only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one thread blocked on `word`.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not touch it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

/// Makes the calling thread SCHED_FIFO at `priority`, as cyclictest does.
/// (A raw system call: musl's `sched_setscheduler` only returns ENOSYS.)
pub fn set_fifo(priority: i32) -> Result<(), String> {
    // SAFETY: sched_param is plain integers (musl adds a few unused ones):
    // all-zero is valid.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = priority;
    // SAFETY: `param` is a valid sched_param for the call; tid 0 is this thread.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            libc::SCHED_FIFO,
            &raw const param,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "SCHED_FIFO {priority}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// The sum over all CPUs of the `/proc/interrupts` rows named `names`
/// (`LOC` local timer, `RES` rescheduling IPIs, `CAL` function-call IPIs).
pub fn interrupts(names: &[&str]) -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/interrupts")
        .map_err(|e| format!("reading /proc/interrupts: {e}"))?;
    let cpus = text
        .lines()
        .next()
        .map_or(0, |l| l.split_whitespace().count());
    let mut total = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next().and_then(|w| w.strip_suffix(':')) else {
            continue;
        };
        if names.contains(&name) {
            total += words
                .take(cpus)
                .filter_map(|w| w.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(total)
}

/// Ends the QEMU machine through its `isa-debug-exit` device (port 0xf4):
/// QEMU exits with `(code << 1) | 1`, as it does for percore.
pub fn exit_qemu(code: u32) -> Result<(), String> {
    // The serial driver sends in the background: wait until every line
    // printed has left the UART, or QEMU would end before it shows them.
    std::io::Write::flush(&mut std::io::stdout()).map_err(|e| format!("stdout: {e}"))?;
    // SAFETY: tcdrain only waits on file descriptor 1. It fails (ENOTTY)
    // when the output is not a terminal; then there is nothing to drain and
    // the machine must still end.
    unsafe { libc::tcdrain(1) };
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(0xf4, 4, 1) } != 0 {
        return Err(format!("ioperm: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit, which ioperm granted;
    // writing it ends the machine and touches no memory.
    unsafe { std::arch::asm!("out dx, eax", in("dx") 0xf4u16, in("eax") code) };
    Err(String::from(
        "QEMU did not exit: no isa-debug-exit device at 0xf4",
    ))
}
