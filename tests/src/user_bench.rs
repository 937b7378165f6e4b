//! `cargo xtask bench user`: ring-3 programs' ways into the kernel
//! (`ubench` in `userspace/programs` measures from user mode): a null
//! syscall, the same operation through the submission ring at batch 1, 8
//! and 64, a message round trip between two processes on two cores,
//! spawn to first instruction, and what an idle process costs in memory.
//! Not run by `cargo xtask test`: benchmarks are never pass/fail on timing.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use percore_kernel::arch::{CoreId, user};
use percore_kernel::mem::heap;
use percore_kernel::process::object::{Channel, KernelObject};
use percore_kernel::process::{self, Exit, State};
use percore_kernel::reactor::{block_on, sleep};
use percore_kernel::{Kernel, println, syscall, time};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, start_reactors};
use crate::user::{ended, expect_code, run};

/// This file's benchmark (run by `cargo xtask bench user`, never by `test`).
pub const TESTS: &[Test] = &[Test::new("bench_user", Kind::Bench, bench_user)];

/// Spawns measured for spawn-to-first-instruction.
const SPAWNS: usize = 101;

fn bench_user(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let here = CoreId(0);
    println!("-- from ring 3 (`ubench`), each figure the p50 of its samples");
    expect_code("ubench syscall", run("ubench", here, "syscall")?, 0)?;
    for batch in [1, 8, 64] {
        let args = format!("ring {batch}");
        expect_code("ubench ring", run("ubench", here, &args)?, 0)?;
    }
    round_trip()?;
    spawn_to_first()?;
    idle_memory()
}

/// `ping` on core 0 and `pong` on the last core over a channel pair.
fn round_trip() -> Result<(), String> {
    if cores() < 2 {
        println!("(the message round trip needs two cores)");
        return Ok(());
    }
    let (a, b) = Channel::pair().map_err(|e| format!("channel pair: {e}"))?;
    let far = CoreId(cores() - 1);
    let (pong, pong_end) =
        syscall::spawn_with_handles("ubench", far, "pong", vec![KernelObject::Channel(b)])
            .map_err(|e| format!("pong: {e:?}"))?;
    let (ping, ping_end) =
        syscall::spawn_with_handles("ubench", CoreId(0), "ping", vec![KernelObject::Channel(a)])
            .map_err(|e| format!("ping: {e:?}"))?;
    expect_code("ubench ping", block_on(ended(ping, ping_end))?, 0)?;
    expect_code("ubench pong", block_on(ended(pong, pong_end))?, 0)
}

/// From the spawn call to the program's first syscall (its clock reading).
fn spawn_to_first() -> Result<(), String> {
    let mut samples = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let t0 = time::uptime_ns();
        match run("ubench", CoreId(cores() - 1), "first")? {
            Exit::Code(t1) if t1 as u64 >= t0 => samples.push(t1 as u64 - t0),
            other => return Err(format!("ubench first: ended {other:?}")),
        }
    }
    samples.sort_unstable();
    println!(
        "bench user_spawn_first_p50_ns {} ns",
        samples[samples.len() / 2]
    );
    Ok(())
}

/// Frames and heap an idle process holds: image, stack, 64-entry ring,
/// page tables (frames), and the process, thread context and handle
/// table (heap).
fn idle_memory() -> Result<(), String> {
    let core = CoreId(cores() - 1);
    let (frames, bytes) = (user::frames_in_use(), heap::used_bytes());
    let (pid, end) = syscall::spawn("ubench", core, "idle").map_err(|e| format!("{e:?}"))?;
    let blocked = block_on(async {
        for _ in 0..2000 {
            let asleep = process::list()
                .iter()
                .any(|p| p.pid == pid && p.state() == State::Blocked);
            if asleep {
                return true;
            }
            sleep(Duration::from_millis(1)).await;
        }
        false
    });
    if !blocked {
        process::kill(pid);
        return Err(String::from("ubench idle never went to sleep"));
    }
    let frame_kib = (user::frames_in_use() - frames) * 4;
    let heap_kib = (heap::used_bytes().saturating_sub(bytes)).div_ceil(1024) as u64;
    process::kill(pid);
    block_on(ended(pid, end))?;
    println!(
        "idle process: {frame_kib} KiB of frames (image, 64 KiB stack, 12 KiB ring pair, page tables) + {heap_kib} KiB of heap (process, context, handle table)"
    );
    println!(
        "1000 idle processes: {} MiB",
        (frame_kib + heap_kib) * 1000 / 1024
    );
    println!("bench user_idle_process_kib {} KiB", frame_kib + heap_kib);
    Ok(())
}
