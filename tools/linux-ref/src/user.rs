//! The Linux side of `cargo xtask bench compare user`: what percore's
//! `bench_user` measures from ring 3, between processes. (`getpid` is the
//! `null-syscall` figure.)
//!
//! - `user`: a one-byte round trip over two pipes between two processes
//!   (`fork`), one pinned to vCPU 0 and one to the last vCPU
//!   (`user_msg_round_trip_p50_ns`, p50 over batches of 50, as percore's
//!   `ubench ping`); `fork` + `exec` of this program to its first line
//!   (`user_spawn_first_p50_ns`: the child prints CLOCK_MONOTONIC into a
//!   pipe first thing);
//! - `user-first`: that child (prints the clock and exits).

use crate::sys;

const SAMPLES: usize = 101;
const SPAWNS: usize = 101;

fn p50(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn pipe() -> Result<[libc::c_int; 2], String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    Ok(fds)
}

fn write_byte(fd: libc::c_int) {
    let byte = [1u8];
    // SAFETY: one byte from a valid buffer to a descriptor we own.
    unsafe { libc::write(fd, byte.as_ptr().cast(), 1) };
}

fn read_byte(fd: libc::c_int) -> bool {
    let mut byte = [0u8];
    // SAFETY: one byte into a valid buffer from a descriptor we own.
    unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) == 1 }
}

fn wait_child(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Both rows.
pub fn user() -> Result<(), String> {
    round_trip()?;
    spawn_first()
}

fn round_trip() -> Result<(), String> {
    let cpus = sys::cpus();
    if cpus < 2 {
        println!("(the round trip needs two vCPUs)");
        return Ok(());
    }
    let (to_child, to_parent) = (pipe()?, pipe()?);
    // SAFETY: the child only pins itself, echoes bytes and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: the ends this side does not use (the write end of its
        // input especially: else it never sees the end of it).
        unsafe {
            libc::close(to_child[1]);
            libc::close(to_parent[0]);
        }
        let _ = sys::pin(cpus - 1);
        while read_byte(to_child[0]) {
            write_byte(to_parent[1]);
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    sys::pin(0)?;
    let trip = || {
        write_byte(to_child[1]);
        read_byte(to_parent[0]);
    };
    for _ in 0..200 {
        trip();
    }
    let mut samples: Vec<u64> = (0..SAMPLES)
        .map(|_| {
            let t0 = sys::now_ns();
            for _ in 0..50 {
                trip();
            }
            (sys::now_ns() - t0) / 50
        })
        .collect();
    // SAFETY: closing our write end ends the child's loop.
    unsafe { libc::close(to_child[1]) };
    wait_child(pid);
    for fd in [to_child[0], to_parent[0], to_parent[1]] {
        // SAFETY: descriptors we own, closed once.
        unsafe { libc::close(fd) };
    }
    println!("bench user_msg_round_trip_p50_ns {} ns", p50(&mut samples));
    Ok(())
}

fn spawn_first() -> Result<(), String> {
    sys::pin(0)?;
    let exe = std::ffi::CString::new("/proc/self/exe").map_err(|e| e.to_string())?;
    let first = std::ffi::CString::new("user-first").map_err(|e| e.to_string())?;
    let mut samples = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let fds = pipe()?;
        let argv = [exe.as_ptr(), first.as_ptr(), std::ptr::null()];
        let t0 = sys::now_ns();
        // SAFETY: the child only redirects stdout and execs.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls only, then exec or _exit.
            unsafe {
                libc::dup2(fds[1], 1);
                libc::execv(exe.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        // SAFETY: our copy of the write end; the child holds its own.
        unsafe { libc::close(fds[1]) };
        let mut text = [0u8; 32];
        // SAFETY: reads into a valid buffer from our read end.
        let n = unsafe { libc::read(fds[0], text.as_mut_ptr().cast(), text.len()) };
        // SAFETY: closed once.
        unsafe { libc::close(fds[0]) };
        wait_child(pid);
        let t1: u64 = std::str::from_utf8(&text[..n.max(0) as usize])
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or("user-first printed no clock")?;
        samples.push(t1.saturating_sub(t0));
    }
    println!("bench user_spawn_first_p50_ns {} ns", p50(&mut samples));
    Ok(())
}

/// The exec'd child of [`spawn_first`]: the clock, first thing.
pub fn user_first() -> Result<(), String> {
    println!("{}", sys::now_ns());
    Ok(())
}
