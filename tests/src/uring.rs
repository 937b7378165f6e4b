//! The submission/completion rings of ring-3 programs (`uring` in
//! `userspace/programs` checks the program's side): every operation
//! through the ring answers as the syscall does, bad entries get their
//! error, a full completion ring is backpressure, the kernel takes
//! submissions without a trap while awake; `exit` through the ring ends
//! the process; a program that corrupts its ring's indices is ended with
//! a report while the kernel goes on; nothing leaks.

use alloc::format;
use alloc::string::String;

use core::time::Duration;

use futures_util::future::{Either, select};
use percore_abi::ring::Corrupt;
use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, user};
use percore_kernel::mem::heap;
use percore_kernel::process::{self, Exit};
use percore_kernel::reactor::{block_on, sleep};
use percore_kernel::shell::commands::execute;

use crate::harness::{Kind, Test};
use crate::reactor::{cores, start_reactors};
use crate::user::{ended, expect_code, run};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("uring_ops_answer_as_syscalls", Kind::Normal, ops),
    Test::new("uring_poll_and_executor", Kind::Normal, poll),
    Test::new("uring_exit_through_the_ring", Kind::Normal, exit),
    Test::new(
        "uring_corrupt_indices_end_the_process",
        Kind::Normal,
        corrupt,
    ),
    Test::new("uring_ring_closed_and_set_up_again", Kind::Normal, remap),
    Test::new(
        "uring_other_process_memory_kills_the_reader",
        Kind::Normal,
        other_process,
    ),
    Test::new(
        "uring_fuzz_kernel_survives_and_leaks_nothing",
        Kind::Normal,
        fuzz,
    ),
];

/// Calls (syscalls and ring entries) of the long fuzz run.
const FUZZ_CALLS: u64 = 400_000;
/// How long one fuzz run may take (about 20 s under TCG on an idle host).
const FUZZ_PATIENCE: Duration = Duration::from_secs(150);
/// Calls of the warm-up run before the baseline is taken.
const WARM_UP_CALLS: u64 = 50_000;
/// What the heap may differ by after the fuzz run: structures that grow
/// once and are kept, or shrink (timer wheel levels, task slots, queues,
/// on every core), move it by up to about 1.7 KiB either way (seen on the
/// 8-core machine); the smallest leak, one 16-byte block per 800 calls,
/// would be 8000 bytes.
const HEAP_SLACK: usize = 8 * 1024;

/// `uring ops` passes every check on the first and the last core, and its
/// rings' frames are given back.
fn ops(_: &Kernel) -> Result<(), String> {
    start_reactors();
    run("hello", CoreId(0), "0")?;
    let frames = user::frames_in_use();
    for core in [0, cores() - 1] {
        expect_code("uring ops", run("uring", CoreId(core), "ops")?, 0)?;
    }
    if user::frames_in_use() != frames || process::count() != 0 {
        return Err(format!(
            "frames {frames} -> {}, {} processes left",
            user::frames_in_use(),
            process::count()
        ));
    }
    Ok(())
}

/// The runtime's readiness layer and executor over the ring (`uring poll`).
fn poll(_: &Kernel) -> Result<(), String> {
    start_reactors();
    expect_code("uring poll", run("uring", CoreId(cores() - 1), "poll")?, 0)
}

fn exit(_: &Kernel) -> Result<(), String> {
    start_reactors();
    expect_code("uring exit", run("uring", CoreId(cores() - 1), "exit")?, 7)
}

/// A submission tail or completion head no program could have written
/// ends the process with the matching report; the kernel still runs
/// programs afterwards.
fn corrupt(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = CoreId(cores() - 1);
    match run("uring", core, "corrupt-sq")? {
        Exit::BadRing(Corrupt::SubmissionTail { tail: 1000, .. }) => {}
        other => return Err(format!("corrupt-sq: ended {other:?}")),
    }
    match run("uring", core, "corrupt-cq")? {
        Exit::BadRing(Corrupt::CompletionHead { head: 1000, .. }) => {}
        other => return Err(format!("corrupt-cq: ended {other:?}")),
    }
    match run("uring", core, "corrupt-after")? {
        Exit::BadRing(Corrupt::SubmissionTail { tail: 1000, .. }) => {}
        other => return Err(format!("corrupt-after: ended {other:?}")),
    }
    expect_code("hello after", run("hello", core, "3")?, 3)
}

/// A ring closed (by a syscall, or through the ring itself) and set up
/// again works as the first did, on the first and the last core; a read
/// where a closed ring was is a page fault that ends the process; every
/// ring frame is given back.
fn remap(_: &Kernel) -> Result<(), String> {
    start_reactors();
    run("hello", CoreId(0), "0")?;
    let frames = user::frames_in_use();
    for core in [0, cores() - 1] {
        expect_code("uring remap", run("uring", CoreId(core), "remap")?, 0)?;
        match run("uring", CoreId(core), "unmapped")? {
            Exit::Fault(fault) if fault.vector == 14 => {}
            other => return Err(format!("uring unmapped: ended {other:?}")),
        }
    }
    if user::frames_in_use() != frames {
        return Err(format!("frames {frames} -> {}", user::frames_in_use()));
    }
    Ok(())
}

/// A program that reads or writes at the address of another process's
/// mapping (a canary's submission ring, which only the canary has) is
/// killed by a page fault, on the canary's core and on another; the
/// canary's checksum over that mapping and its data stays the same.
fn other_process(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let canary_core = CoreId(cores() - 1);
    let (pid, end) = percore_kernel::syscall::spawn("canary", canary_core, "30 ring")
        .map_err(|e| format!("canary: {e:?}"))?;
    // Let the canary map and fill its ring.
    block_on(sleep(Duration::from_millis(20)));
    let target = percore_abi::ring::RING_BASE + 4096;
    for core in [canary_core, CoreId(0)] {
        for case in ["read-at", "write-at"] {
            match run("badmem", core, &format!("{case} {target:x}"))? {
                Exit::Fault(fault) if fault.vector == 14 => {}
                other => {
                    return Err(format!(
                        "badmem {case} {target:#x} on core {core}: ended {other:?}, expected a page fault"
                    ));
                }
            }
        }
    }
    expect_code("canary with a ring", block_on(ended(pid, end))?, 0)
}

/// `fuzz` with a fresh seed (printed), [`FUZZ_CALLS`] calls, then a
/// corrupted ring index: it must end with a corrupt-ring report, every
/// completion having come back once (else it exits 3); a canary on
/// another core keeps its memory; afterwards the shell answers (`ps`),
/// programs still run, and the kernel heap and frames are back at their
/// baseline (taken after a short fuzz run of the same kind, which warms up
/// what the kernel grows once and keeps).
fn fuzz(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let core = CoreId(cores() - 1);
    let canary_core = CoreId(if cores() > 1 { 0 } else { core.0 });
    let seed = percore_kernel::time::uptime_ns();
    let ended_by_corruption = |exit: Exit| match exit {
        Exit::BadRing(_) => Ok(()),
        other => Err(format!(
            "fuzz seed {seed}: ended {other:?}, expected a corrupt-ring report"
        )),
    };
    let canary = || {
        percore_kernel::syscall::spawn("canary", canary_core, "20")
            .map_err(|e| format!("canary: {e:?}"))
    };
    // The warm-up: the same kinds of calls, a canary, a shell command.
    let (pid, end) = canary()?;
    ended_by_corruption(run_or_show(
        "fuzz",
        core,
        &format!("{seed} {WARM_UP_CALLS} corrupt"),
    )?)?;
    expect_code("canary", block_on(ended(pid, end))?, 0)?;
    block_on(execute("ps"));
    let frames = user::frames_in_use();
    let heap = heap::used_bytes();
    let (pid, end) = canary()?;
    log::info!("uring_fuzz: seed {seed}, {FUZZ_CALLS} calls on core {core}");
    let started = percore_kernel::time::uptime_ns();
    ended_by_corruption(run_or_show(
        "fuzz",
        core,
        &format!("{seed} {FUZZ_CALLS} corrupt"),
    )?)?;
    log::info!(
        "uring_fuzz: {FUZZ_CALLS} calls in {} ms",
        (percore_kernel::time::uptime_ns() - started) / 1_000_000
    );
    expect_code("canary", block_on(ended(pid, end))?, 0)?;
    let ps = block_on(execute("ps"));
    if !ps.contains("pid") || !ps.contains("ring_ops") {
        return Err(format!("ps after the fuzz said: {ps}"));
    }
    let (frames_now, heap_now) = (user::frames_in_use(), heap::used_bytes());
    log::info!("uring_fuzz: frames {frames} -> {frames_now}, heap {heap} -> {heap_now} bytes");
    if frames_now != frames || heap_now.abs_diff(heap) > HEAP_SLACK || process::count() != 0 {
        return Err(format!(
            "fuzz seed {seed}: frames {frames} -> {frames_now}, heap {heap} -> {heap_now} bytes, {} processes left",
            process::count()
        ));
    }
    expect_code("hello after the fuzz", run("hello", core, "5")?, 5)
}

/// Like `user::run`, but a process still running after the patience
/// shows its `ps` row in the error (and is killed).
fn run_or_show(name: &str, core: CoreId, args: &str) -> Result<Exit, String> {
    let (pid, handle) = percore_kernel::syscall::spawn(name, core, args)
        .map_err(|e| format!("spawn {name}: {e:?}"))?;
    let patient = async {
        match select(handle, core::pin::pin!(sleep(FUZZ_PATIENCE))).await {
            Either::Left((exit, _)) => Ok(exit),
            Either::Right(_) => Err(format!("{name} still running after {FUZZ_PATIENCE:?}")),
        }
    };
    match block_on(patient) {
        Ok(exit) => Ok(exit),
        Err(why) => {
            let ps =
                percore_kernel::reactor::block_on(percore_kernel::shell::commands::execute("ps"));
            process::kill(pid);
            Err(format!("{why}; ps:\n{ps}"))
        }
    }
}
