//! The disk log on the real virtio-blk disk (`storage::virtio::open_log`).
//!
//! Every record's payload is [`record`] of a key (the key in its first 8
//! bytes, the rest computed from it; `tools/xtask/src/durable.rs` has the
//! same formula): the host recomputes each payload it finds in the image
//! after the guest exits, with `percore-disklog`, the reader the kernel
//! uses. The log lies at [`LOG_START`] bytes into the disk; the guest
//! prints `disklog-image offset=BYTES records=N keys=K` for the host.
//!
//! - `disk_log_appends_from_every_core` (machines with a disk): tasks on
//!   every core append and flush; the log is streamed back; the host
//!   checks the image (every key once, sequence numbers dense).
//! - `disk_log_kill_*`: the SIGKILL durability test, driven by the host
//!   (`tools/xtask/src/durable.rs`, machine `disklog-kill`): a writer
//!   prints `disklog-acked SEQ` after each acknowledged flush (records
//!   keyed by their sequence number) until the host kills QEMU; a second
//!   boot recovers, finds every acknowledged record and appends more; a
//!   third boot, after the host flipped bytes in one record, must report
//!   exactly that record as corrupt and read the others.
//! - `disk_log_errors_*` (machine `disklog-errors`): QEMU's blkdebug fails
//!   writes on a sector inside the log: flushes fail with an error to
//!   every caller, the kernel goes on; a boot without blkdebug finds every
//!   acknowledged record; a read-only boot reads the log and refuses to
//!   append (and to make a log on a blank region).
//!
//! The host attaches these drives with `cache=none` (`O_DIRECT`): a
//! completed write is in the image file, and the guest's FLUSH (sent to the
//! device, which offers its write cache) is an `fdatasync` of it, so what a
//! flush acknowledged is durable for the file and a SIGKILL of QEMU cannot
//! lose it; `tools/xtask/src/durable.rs` says more.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

use futures_util::StreamExt;
use percore_kernel::arch::CoreId;
use percore_kernel::reactor::{block_on, spawn_on};
use percore_kernel::storage::IoError;
use percore_kernel::storage::log::{AppendError, OpenError, Options, ReadError, Report};
use percore_kernel::storage::virtio::{DiskLog, open_log};
use percore_kernel::{Kernel, println};

use crate::disk::within;
use crate::harness::{Kind, Test};
use crate::reactor::{cores, start_reactors};
use crate::smp::expectation;

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "disk_log_appends_from_every_core",
        Kind::Normal,
        appends_from_every_core,
    ),
    Test::new(
        "disk_log_kill_writer",
        Kind::Machine("disklog-kill"),
        kill_writer,
    ),
    Test::new(
        "disk_log_kill_recovery",
        Kind::Machine("disklog-kill"),
        kill_recovery,
    ),
    Test::new(
        "disk_log_kill_corruption",
        Kind::Machine("disklog-kill"),
        kill_corruption,
    ),
    Test::new(
        "disk_log_errors_reach_callers",
        Kind::Machine("disklog-errors"),
        errors_reach_callers,
    ),
    Test::new(
        "disk_log_errors_recovery",
        Kind::Machine("disklog-errors"),
        errors_recovery,
    ),
    Test::new(
        "disk_log_errors_read_only",
        Kind::Machine("disklog-errors"),
        errors_read_only,
    ),
];

/// Where the log starts on the disk: 8 MiB in (past the blocks the
/// driver's tests write), to the end of the disk.
pub const LOG_START: u64 = 8 * 1024 * 1024;
/// Records each core appends in the every-core test.
const PER_CORE: u64 = 150;
/// Records appended after recovery.
const AFTER_RECOVERY: u64 = 64;
/// The most records the kill writer appends (the host kills it long before).
const KILL_WRITER_MAX: u64 = 40_000;

/// The payload of the record with key `key` (see the module doc).
pub fn record(key: u64) -> Vec<u8> {
    let len = (key.wrapping_mul(31) % 200) as usize + 8;
    let mut data: Vec<u8> = (0..len)
        .map(|i| (key.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect();
    data[..8].copy_from_slice(&key.to_le_bytes());
    data
}

fn region() -> Result<Range<u64>, String> {
    let disk = percore_kernel::storage::virtio::disk().map_err(|e| format!("no disk: {e}"))?;
    let start = LOG_START / u64::from(disk.block_size());
    Ok(start..disk.blocks())
}

fn open(log_id: u64) -> Result<(Arc<DiskLog>, Report), String> {
    start_reactors();
    let (log, report) = block_on(open_log(Some(region()?), Options::new(log_id)))
        .map_err(|e| format!("open: {e}"))?;
    let last = match report.next_seq {
        0 => String::from("none"),
        n => format!("{}", n - 1),
    };
    println!(
        "disklog-open formatted={} records={} last_seq={last} next_seq={} corrupt={} tail_bytes={}",
        report.formatted,
        report.records,
        report.next_seq,
        report.corrupt.iter().map(|c| c.records()).sum::<u64>(),
        report.tail.map_or(0, |t| t.bytes)
    );
    Ok((Arc::new(log), report))
}

fn expected(name: &str) -> Result<u64, String> {
    expectation(&format!("opt/percore/expect-{name}"))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("the host did not say `{name}`"))
}

/// Reads records `from..to` back and checks that each is the record keyed
/// by its sequence number, except `corrupt`, which must come as exactly
/// one corrupt item (never as data).
fn check_keyed_by_seq(log: &Arc<DiskLog>, to: u64, corrupt: Option<u64>) -> Result<(), String> {
    let log = log.clone();
    // A hang guard: a stream that waits for records the log never makes
    // durable fails the test instead of running into the host's timeout.
    let items = block_on(within(
        "reading the log back",
        spawn_on(
            CoreId(cores() - 1),
            percore_kernel::reactor::priority(32),
            async move {
                let mut stream = core::pin::pin!(log.stream(0));
                let mut items = Vec::new();
                let mut next = 0;
                while next < to {
                    let Some(item) = stream.next().await else {
                        break;
                    };
                    next = match &item {
                        Ok(r) => r.seq + 1,
                        Err(ReadError::Corrupt(c)) => c.last_seq + 1,
                        Err(ReadError::Io(_)) => to,
                    };
                    items.push(item);
                }
                items
            },
        ),
    ))?;
    let mut want = 0;
    for item in items {
        match item {
            Ok(r) if Some(r.seq) == corrupt => {
                return Err(format!("corrupt record {} returned as data", r.seq));
            }
            Ok(r) if r.seq == want && r.payload == record(r.seq) => want += 1,
            Ok(r) => {
                return Err(format!(
                    "record {}: wrong seq or payload (want {want})",
                    r.seq
                ));
            }
            Err(ReadError::Corrupt(c))
                if Some(want) == corrupt && c.first_seq == want && c.last_seq == want =>
            {
                want += 1
            }
            Err(e) => return Err(format!("at seq {want}: {e}")),
        }
    }
    if want != to {
        return Err(format!("read back records up to {want}, expected {to}"));
    }
    Ok(())
}

/// Tasks on every core append [`PER_CORE`] records each (keys `core << 32
/// | i`), flushing every 10th; the log reads back with every key once.
pub fn appends_from_every_core(_: &Kernel) -> Result<(), String> {
    let (log, report) = open(0xd15c_0001)?;
    if !report.formatted {
        return Err(format!(
            "a zero-filled region did not make a new log: {report:?}"
        ));
    }
    let tasks: Vec<_> = (0..cores())
        .map(|c| {
            let log = log.clone();
            spawn_on(
                CoreId(c),
                percore_kernel::reactor::priority(32),
                async move {
                    let mut seqs = Vec::new();
                    for i in 0..PER_CORE {
                        let key = u64::from(c) << 32 | i;
                        let seq = log
                            .append(&record(key))
                            .await
                            .map_err(|e| format!("core {c}: append: {e}"))?;
                        seqs.push((seq, key));
                        if i % 10 == 9 {
                            let durable = log
                                .flush()
                                .await
                                .map_err(|e| format!("core {c}: flush: {e}"))?;
                            if durable <= seq {
                                return Err(format!("core {c}: flush to {durable} left {seq} out"));
                            }
                        }
                    }
                    Ok::<_, String>(seqs)
                },
            )
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(block_on(task)?);
    }
    all.sort_unstable();
    let total = all.len() as u64;
    if all.iter().enumerate().any(|(i, &(seq, _))| seq != i as u64) {
        return Err(String::from("sequence numbers are not 0.. dense"));
    }
    block_on(log.flush()).map_err(|e| format!("flush: {e}"))?;
    let log2 = log.clone();
    let items = block_on(within(
        "streaming the log back",
        spawn_on(
            CoreId(0),
            percore_kernel::reactor::priority(32),
            async move {
                log2.stream(0)
                    .take(total as usize)
                    .collect::<Vec<_>>()
                    .await
            },
        ),
    ))?;
    for (item, &(seq, key)) in items.iter().zip(&all) {
        match item {
            Ok(r) if r.seq == seq && r.payload == record(key) => {}
            other => return Err(format!("record {seq}: {other:?}")),
        }
    }
    if items.len() as u64 != total {
        return Err(format!("{} records streamed back of {total}", items.len()));
    }
    println!("disklog-image offset={LOG_START} records={total} keys=core-index");
    Ok(())
}

/// Boot 1 of the SIGKILL test: appends records keyed by their sequence
/// number in batches of 1 to 16, and every 8th batch 300 (a write of
/// several of the driver's 16 KiB chunks, which a kill can cut between
/// chunks: a torn tail), flushing after each batch and printing
/// `disklog-acked NEXT` (every record below NEXT is durable) once the
/// flush is acknowledged, until the host kills the machine.
pub fn kill_writer(_: &Kernel) -> Result<(), String> {
    let (log, report) = open(0x6b11_1001)?;
    if !report.formatted {
        return Err(String::from("the host's fresh image held a log already"));
    }
    let mut next = 0;
    let mut batches = 0u64;
    while next < KILL_WRITER_MAX {
        batches += 1;
        let batch = if batches % 8 == 0 {
            300
        } else {
            batches % 16 + 1
        };
        for _ in 0..batch {
            let seq = block_on(log.append(&record(next))).map_err(|e| format!("append: {e}"))?;
            if seq != next {
                return Err(format!("append got seq {seq}, expected {next}"));
            }
            next += 1;
        }
        let acked = block_on(log.flush()).map_err(|e| format!("flush: {e}"))?;
        if acked != next {
            return Err(format!(
                "flush acknowledged up to {acked}, appended up to {next}"
            ));
        }
        println!("disklog-acked {acked}");
    }
    Ok(())
}

/// Boot 2 of the SIGKILL test: recovery finds every acknowledged record
/// (`expect-log-acked`), nothing corrupt; every record reads back; 64 more
/// append after the recovered ones and are durable.
pub fn kill_recovery(_: &Kernel) -> Result<(), String> {
    let acked = expected("log-acked")?;
    let (log, report) = open(0x6b11_1002)?;
    recovered_all(&report, acked)?;
    check_keyed_by_seq(&log, report.next_seq, None)?;
    append_more(&log, report.next_seq)
}

fn recovered_all(report: &Report, acked: u64) -> Result<(), String> {
    if report.formatted || !report.corrupt.is_empty() || report.records < acked {
        return Err(format!(
            "{acked} records were acknowledged, recovery found {report:?}"
        ));
    }
    if report.next_seq != report.records {
        return Err(format!(
            "records 0.. but next seq {}: {report:?}",
            report.next_seq
        ));
    }
    Ok(())
}

fn append_more(log: &Arc<DiskLog>, from: u64) -> Result<(), String> {
    for i in 0..AFTER_RECOVERY {
        let seq = block_on(log.append(&record(from + i))).map_err(|e| format!("append: {e}"))?;
        if seq != from + i {
            return Err(format!(
                "after recovery, append got seq {seq}, expected {}",
                from + i
            ));
        }
    }
    let acked = block_on(log.flush()).map_err(|e| format!("flush: {e}"))?;
    check_keyed_by_seq(log, acked, None)?;
    println!("disklog-image offset={LOG_START} records={acked} keys=seq");
    Ok(())
}

/// Boot 3 of the SIGKILL test: the host flipped bytes inside record
/// `expect-log-corrupt` of the log boot 2 left; recovery reports exactly
/// that one, the stream never returns it and reads every other.
pub fn kill_corruption(_: &Kernel) -> Result<(), String> {
    let bad = expected("log-corrupt")?;
    let total = expected("log-records")?;
    let (log, report) = open(0x6b11_1003)?;
    let lost: Vec<(u64, u64)> = report
        .corrupt
        .iter()
        .map(|c| (c.first_seq, c.last_seq))
        .collect();
    if lost != [(bad, bad)] || report.next_seq != total || report.tail.is_some() {
        return Err(format!(
            "bytes flipped in record {bad} of {total}; recovery says {report:?}"
        ));
    }
    check_keyed_by_seq(&log, total, Some(bad))
}

/// Boot 1 of the device-error test: blkdebug fails every write touching
/// the host's bad sector (`expect-disk-bad-sector`, inside the log). The
/// log is appended and flushed until a flush fails; then flushers on every
/// core get the error too, the records acknowledged before stay readable,
/// and the device stays in service.
pub fn errors_reach_callers(_: &Kernel) -> Result<(), String> {
    let (log, report) = open(0xe220_0001)?;
    if !report.formatted {
        return Err(String::from("the host's fresh image held a log already"));
    }
    let mut acked = 0;
    let mut next = 0;
    let error = loop {
        for _ in 0..8 {
            block_on(log.append(&record(next))).map_err(|e| format!("append {next}: {e}"))?;
            next += 1;
        }
        match block_on(log.flush()) {
            Ok(end) => {
                acked = end;
                println!("disklog-acked {acked}");
            }
            Err(e) => break e,
        }
        if next > KILL_WRITER_MAX {
            return Err(String::from(
                "no write failed: the bad sector is not in the log",
            ));
        }
    };
    if error != IoError::Device {
        return Err(format!(
            "the failed flush returned {error:?}, not a device error"
        ));
    }
    let flushers: Vec<_> = (0..cores())
        .map(|c| {
            let log = log.clone();
            spawn_on(
                CoreId(c),
                percore_kernel::reactor::priority(32),
                async move {
                    log.append(&record(u64::MAX - u64::from(c)))
                        .await
                        .map_err(|e| format!("{e}"))?;
                    match log.flush().await {
                        Err(IoError::Device) => Ok(()),
                        other => Err(format!("core {c}: flush past the bad sector: {other:?}")),
                    }
                },
            )
        })
        .collect();
    for f in flushers {
        block_on(f)?;
    }
    let stats = log.stats();
    if stats.durable_seq != acked || stats.failed_writes < 2 {
        return Err(format!(
            "after the failures: {stats:?}, acknowledged up to {acked}"
        ));
    }
    check_keyed_by_seq(&log, acked, None)?;
    let disk = percore_kernel::storage::virtio::disk().map_err(|e| format!("{e}"))?;
    if let Some(failure) = disk.failure() {
        return Err(format!("the device was taken out of service: {failure}"));
    }
    println!(
        "disklog-errors acked={acked} failed_writes={}",
        stats.failed_writes
    );
    Ok(())
}

/// Boot 2 of the device-error test (no blkdebug): every acknowledged
/// record is there, nothing corrupt.
pub fn errors_recovery(_: &Kernel) -> Result<(), String> {
    let acked = expected("log-acked")?;
    let (log, report) = open(0xe220_0002)?;
    recovered_all(&report, acked)?;
    check_keyed_by_seq(&log, report.next_seq, None)?;
    println!(
        "disklog-image offset={LOG_START} records={} keys=seq",
        report.next_seq
    );
    Ok(())
}

/// Boot 3 (the drive read-only): the log opens and reads back; appends are
/// refused with `ReadOnly`; a log on a blank region cannot be made.
pub fn errors_read_only(_: &Kernel) -> Result<(), String> {
    let acked = expected("log-acked")?;
    let (log, report) = open(0xe220_0003)?;
    recovered_all(&report, acked)?;
    check_keyed_by_seq(&log, report.next_seq, None)?;
    match block_on(log.append(b"refused")) {
        Err(AppendError::Io(IoError::ReadOnly)) => {}
        other => return Err(format!("append on a read-only drive: {other:?}")),
    }
    // A blank region (the blocks before the log, zero-filled) on the same drive.
    let start = region()?.start;
    match block_on(open_log(Some(start / 2..start), Options::new(1))) {
        Err(OpenError::Io(IoError::ReadOnly)) => Ok(()),
        Err(other) => Err(format!("making a log on a read-only drive: {other}")),
        Ok(_) => Err(String::from("made a log on a read-only drive")),
    }
}
