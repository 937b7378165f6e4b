//! The submission/completion rings of ring-3 programs (`uring` in
//! `userspace/programs` checks the program's side): every operation
//! through the ring answers as the syscall does, bad entries get their
//! error, a full completion ring is backpressure, the kernel takes
//! submissions without a trap while awake; `exit` through the ring ends
//! the process; a program that corrupts its ring's indices is ended with
//! a report while the kernel goes on; nothing leaks.

use alloc::format;
use alloc::string::String;

use percore_abi::ring::Corrupt;
use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, user};
use percore_kernel::process::{self, Exit};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, start_reactors};
use crate::user::{expect_code, run};

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
];

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
    expect_code("hello after", run("hello", core, "3")?, 3)
}
