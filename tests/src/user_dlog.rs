//! The disk-log calls from ring 3 (`kernel/src/syscall/disk.rs`), with the
//! `dlog` and `badptr` programs. The tests of machine `udlog` run on a
//! fresh disk; the host then reads the image and checks every record the
//! `dlog` runs reported (`tools/xtask/src/udlog.rs`).
//!
//! - `user_dlog_appends_flushes_reads_back`: `dlog` through syscalls on
//!   one core (its first open of the log beside the shell's `log`), through the ring on another, and waiting through the
//!   runtime's `Poll`; each flushes, reads its records back and checks
//!   them (exit code 0).
//! - `user_dlog_bad_arguments`: `badptr dlog` — the disk-log calls' bad
//!   pointers, lengths, handles and flags, on a machine with a disk.
//! - `user_dlog_killed_before_flush_releases_its_handle`: rounds of `dlog
//!   noflush` (and `inflush`: a flush under way) killed after their
//!   appends: each ends, no frame, process or
//!   growing heap left (as `user_processes_leak_nothing`), the kernel
//!   keeps running, `ps` showed the log handle, and the log stays readable
//!   and writable (a `dlog` run afterwards flushes and reads back).
//! - `user_dlog_read_names_a_damaged_record`: booted again on the same
//!   image after the host flipped bytes in one record
//!   (`opt/percore/expect-dlog-corrupt`, of `expect-dlog-records`):
//!   `dlog scan` reads the whole log through the calls and must get
//!   `corrupt` for exactly that record, and every other one.
//! - `user_dlog_blank_read_only_disk_does_not_open` (machine
//!   `disk-readonly`: a blank disk attached read-only, where no log can be
//!   made): `dlog` exits with code 3 (the log does not open), the first
//!   time through the open job's failure, the second at `dlog_open`.
//! - `user_dlog_without_disk_says_no_device` (every machine without a
//!   disk): `dlog` exits with code 2 (`no-device`).

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::CoreId;
use percore_kernel::reactor::{block_on, sleep};
use percore_kernel::storage::virtio;
use percore_kernel::{shell, syscall};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, start_reactors};
use crate::smp::expectation;
use crate::user::{PATIENCE, ended, expect_code, kill_and_join, run};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "user_dlog_appends_flushes_reads_back",
        Kind::Machine("udlog"),
        appends_flushes_reads_back,
    ),
    Test::new(
        "user_dlog_bad_arguments",
        Kind::Machine("udlog"),
        bad_arguments,
    ),
    Test::new(
        "user_dlog_killed_before_flush_releases_its_handle",
        Kind::Machine("udlog"),
        killed_before_flush,
    ),
    Test::new(
        "user_dlog_read_names_a_damaged_record",
        Kind::Machine("udlog"),
        damaged_record,
    ),
    Test::new(
        "user_dlog_blank_read_only_disk_does_not_open",
        Kind::Machine("disk-readonly"),
        read_only_disk,
    ),
    Test::new(
        "user_dlog_without_disk_says_no_device",
        Kind::Normal,
        without_disk,
    ),
];

/// The `dlog` exit code for "no disk".
const NO_DEVICE_EXIT: i64 = 2;
/// The `dlog` exit code for "the log does not open".
const NOT_OPEN_EXIT: i64 = 3;
/// Records each killed `dlog` appends.
const KILLED_RECORDS: u64 = 40;

fn appends_flushes_reads_back(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let last = CoreId(cores() - 1);
    // The first open of the boot, from a process and from the shell's
    // `log` at once: one opens, the other takes its log.
    let (pid, handle) =
        syscall::spawn("dlog", last, "300 11").map_err(|e| format!("spawn dlog: {e:?}"))?;
    let status = block_on(shell::commands::execute("log"));
    if !status.contains("at open:") {
        return Err(format!(
            "the shell's `log` beside a dlog open said: {status}"
        ));
    }
    expect_code("dlog 300 11", block_on(ended(pid, handle))?, 0)?;
    expect_code(
        "dlog 200 12 ring",
        run("dlog", CoreId(0), "200 12 ring")?,
        0,
    )?;
    expect_code(
        "dlog 100 14 poll",
        run("dlog", CoreId(0), "100 14 poll")?,
        0,
    )?;
    // More than the log's window holds unwritten (256 KiB): appends that
    // find it full wait for the write that makes room.
    expect_code("dlog 4000 13", run("dlog", last, "4000 13")?, 0)
}

fn bad_arguments(_: &Kernel) -> Result<(), String> {
    start_reactors();
    expect_code(
        "badptr dlog",
        run("badptr", CoreId(cores() - 1), "dlog")?,
        0,
    )
}

/// Records appended to the machine's log since boot.
fn appended() -> u64 {
    virtio::machine_log().map_or(0, |(log, _)| log.stats().appended)
}

/// Waits until the log has `target` appends, at most [`PATIENCE`].
async fn appended_at_least(target: u64) -> Result<(), String> {
    let mut waited = Duration::ZERO;
    while appended() < target {
        if waited > PATIENCE {
            return Err(format!(
                "{} records appended, waiting for {target}",
                appended()
            ));
        }
        sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    Ok(())
}

/// The `handles` column of `ps` for `pid`.
fn ps_handles(pid: u32) -> Result<u64, String> {
    let ps = block_on(shell::commands::execute("ps"));
    let header = ps.lines().next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|w| w == "handles")
        .ok_or_else(|| format!("ps has no handles column:\n{ps}"))?;
    ps.lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("{pid}")))
        .and_then(|row| row.split_whitespace().nth(column)?.parse().ok())
        .ok_or_else(|| format!("ps shows no pid {pid}:\n{ps}"))
}

/// One `dlog noflush` killed after its appends.
fn killed_round(round: u64) -> Result<(), String> {
    let core = CoreId((round % u64::from(cores())) as u16);
    let before = appended();
    // Odd rounds are killed with their flush under way.
    let mode = if round % 2 == 1 { "inflush" } else { "noflush" };
    let args = format!("{KILLED_RECORDS} {} {mode}", 100 + round);
    let (pid, handle) =
        syscall::spawn("dlog", core, &args).map_err(|e| format!("spawn dlog {args}: {e:?}"))?;
    block_on(appended_at_least(before + KILLED_RECORDS))?;
    let handles = ps_handles(pid)?;
    if handles == 0 {
        return Err(format!(
            "ps shows no handle for dlog {pid}, which holds its log"
        ));
    }
    kill_and_join(pid, handle, "dlog")
}

fn killed_before_flush(_: &Kernel) -> Result<(), String> {
    start_reactors();
    // Opens the log and warms up what grows once (the log's buffers).
    expect_code("dlog 10 21", run("dlog", CoreId(0), "10 21")?, 0)?;
    killed_round(0)?;
    crate::user::leak_rounds("user_dlog_killed", 4, |r| killed_round(u64::from(r)))?;
    // The log stays readable and writable: this run's flush also makes
    // the killed runs' records durable (the host reads them all).
    expect_code("dlog 30 22", run("dlog", CoreId(cores() - 1), "30 22")?, 0)
}

fn without_disk(_: &Kernel) -> Result<(), String> {
    start_reactors();
    if virtio::disk().is_ok() {
        // The machine has a disk (its log is the `udlog` tests' business).
        log::info!("user_dlog_without_disk: this machine has a disk; nothing to check");
        return Ok(());
    }
    let exit = run("dlog", CoreId(cores() - 1), "10 1")?;
    expect_code("dlog without a disk", exit, NO_DEVICE_EXIT)
}

fn damaged_record(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let expect = |name: &str| {
        expectation(&format!("opt/percore/expect-dlog-{name}"))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                format!("no opt/percore/expect-dlog-{name} (the host damages the image)")
            })
    };
    let (damaged, total) = (expect("corrupt")?, expect("records")?);
    let args = format!("{total} {damaged} scan");
    expect_code("dlog scan", run("dlog", CoreId(cores() - 1), &args)?, 0)
}

fn read_only_disk(_: &Kernel) -> Result<(), String> {
    start_reactors();
    for round in ["first", "second"] {
        let exit = run("dlog", CoreId(cores() - 1), "10 1")?;
        expect_code(
            &format!("dlog on a blank read-only disk ({round})"),
            exit,
            NOT_OPEN_EXIT,
        )?;
    }
    if virtio::machine_log().is_some() {
        return Err("a log opened on a blank read-only disk".into());
    }
    Ok(())
}
