//! Disk log tests on the RAM disk (`storage::MemDisk`), from tasks on
//! every core: appends from all cores with group-committed flushes, a
//! stream that follows the log while they append, reading everything
//! back; a simulated power cut (unflushed blocks landing in part) and
//! recovery on another core, the log going on after it; device errors
//! reaching the flushers on every core without losing what was
//! acknowledged.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use futures_util::StreamExt;
use percore_kernel::Kernel;
use percore_kernel::arch::CoreId;
use percore_kernel::reactor::{JoinHandle, block_on, priority, spawn_on};
use percore_kernel::storage::log::{Log, Options};
use percore_kernel::storage::{IoError, MemDisk};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, start_reactors};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "storage_log_appends_from_every_core",
        Kind::Normal,
        appends_from_every_core,
    ),
    Test::new(
        "storage_log_recovers_after_a_crash",
        Kind::Normal,
        recovers_after_a_crash,
    ),
    Test::new(
        "storage_log_device_errors_reach_every_core",
        Kind::Normal,
        device_errors_reach_every_core,
    ),
];

const BS: usize = 512;
/// 1 MiB of disk (the RAM disk takes twice that of the heap); the log
/// takes blocks 16.. of it.
const BLOCKS: u64 = 2048;
const REGION: core::ops::Range<u64> = 16..BLOCKS;
const PER_CORE: u64 = 120;

type SharedLog = Arc<Log<Arc<MemDisk>>>;
/// An appender task: its `(seq, key)` pairs, in the order it appended.
type Appender = JoinHandle<Result<Vec<(u64, u64)>, String>>;

/// The key of core `core`'s `i`-th record, and its payload (length and
/// bytes follow from the key).
fn key(core: u16, i: u64) -> u64 {
    u64::from(core) << 32 | i
}

fn payload(key: u64) -> Vec<u8> {
    let len = (key.wrapping_mul(31) % 300) as usize + 8;
    let mut data: Vec<u8> = (0..len)
        .map(|i| (key.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect();
    data[..8].copy_from_slice(&key.to_le_bytes());
    data
}

fn key_of(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.get(..8)?.try_into().ok()?))
}

/// A RAM disk for a test, or why not.
fn new_disk() -> Result<Arc<MemDisk>, String> {
    MemDisk::new(BS, BLOCKS).map(Arc::new).ok_or_else(|| {
        format!(
            "no room for a {} KiB RAM disk (heap in use: {} KiB)",
            BLOCKS as usize * BS / 1024,
            percore_kernel::mem::heap::used_bytes() / 1024
        )
    })
}

fn open(disk: &Arc<MemDisk>) -> Result<(SharedLog, percore_kernel::storage::log::Report), String> {
    let (log, report) = block_on(Log::open(disk.clone(), REGION, Options::new(0x5eed)))
        .map_err(|e| format!("open: {e}"))?;
    Ok((Arc::new(log), report))
}

/// On every core, a task appends `PER_CORE` records of its own and flushes
/// after every `flush_every`-th; each returns its `(seq, key)` pairs and
/// how many flushes were acknowledged up to which sequence number.
fn appenders(log: &SharedLog, round: u64, flush_every: u64) -> Vec<Appender> {
    (0..cores())
        .map(|c| {
            let log = log.clone();
            spawn_on(CoreId(c), priority(32), async move {
                let mut mine = Vec::new();
                for i in 0..PER_CORE {
                    let k = key(c, round * PER_CORE + i);
                    let seq = log
                        .append(&payload(k))
                        .await
                        .map_err(|e| format!("core {c}: append: {e}"))?;
                    mine.push((seq, k));
                    if (i + 1) % flush_every == 0 {
                        let durable = log
                            .flush()
                            .await
                            .map_err(|e| format!("core {c}: flush: {e}"))?;
                        if durable <= seq {
                            return Err(format!("core {c}: flush to {durable} left {seq} out"));
                        }
                    }
                }
                Ok(mine)
            })
        })
        .collect()
}

/// Joins the appenders: every sequence number once, dense from `first`,
/// each task's in its own order. Returns the keys by sequence number.
fn joined(tasks: Vec<Appender>, first: u64) -> Result<Vec<u64>, String> {
    let mut by_seq = Vec::new();
    for task in tasks {
        let mine = block_on(task)?;
        if mine.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(String::from("a task's records out of order"));
        }
        by_seq.extend(mine);
    }
    by_seq.sort_unstable();
    for (i, &(seq, _)) in by_seq.iter().enumerate() {
        if seq != first + i as u64 {
            return Err(format!(
                "sequence number {seq} where {} was due",
                first + i as u64
            ));
        }
    }
    Ok(by_seq.into_iter().map(|(_, k)| k).collect())
}

/// Reads `keys.len()` records from `from` on and checks each payload.
fn check_stream(log: &SharedLog, from: u64, keys: &[u64]) -> Result<(), String> {
    let log = log.clone();
    let n = keys.len();
    let got = block_on(spawn_on(CoreId(cores() - 1), priority(32), async move {
        log.stream(from).take(n).collect::<Vec<_>>().await
    }));
    for (i, (item, &k)) in got.iter().zip(keys).enumerate() {
        let want = from + i as u64;
        match item {
            Ok(r) if r.seq == want && r.payload == payload(k) => {}
            Ok(r) => {
                return Err(format!(
                    "record {}: key {:?}, want seq {want} key {k}",
                    r.seq,
                    key_of(&r.payload)
                ));
            }
            Err(e) => return Err(format!("record {want}: {e}")),
        }
    }
    Ok(())
}

/// Appends from every core (flushing every 8th record), while a task on
/// core 0 follows the log with a stream: it sees every record once, in
/// order, durable; a reopened log holds them all.
pub fn appends_from_every_core(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let disk = new_disk()?;
    let (log, report) = open(&disk)?;
    if !report.formatted || report.records != 0 {
        return Err(format!("a blank disk opened as {report:?}"));
    }
    // Each request waits a poll, so appenders overlap the writes.
    disk.set_latency(1);
    let total = u64::from(cores()) * PER_CORE;
    let follower = {
        let log = log.clone();
        spawn_on(CoreId(0), priority(32), async move {
            log.stream(0).take(total as usize).collect::<Vec<_>>().await
        })
    };
    let tasks = appenders(&log, 0, 8);
    let keys = joined(tasks, 0)?;
    block_on(log.flush()).map_err(|e| format!("flush: {e}"))?;
    let followed = block_on(follower);
    for (seq, item) in followed.iter().enumerate() {
        match item {
            Ok(r) if r.seq == seq as u64 && r.payload == payload(keys[seq]) => {}
            Ok(r) => return Err(format!("the follower read seq {} as record {seq}", r.seq)),
            Err(e) => return Err(format!("the follower, record {seq}: {e}")),
        }
    }
    let stats = log.stats();
    percore_kernel::println!(
        "storage: {} records from {} cores in {} writes",
        stats.appended,
        cores(),
        stats.writes
    );
    if stats.appended != total || stats.durable_seq != total {
        return Err(format!("stats {stats:?}, want {total} records durable"));
    }
    check_stream(&log, 0, &keys)?;
    drop(log);
    let (log, report) = open(&disk)?;
    if report.records != total || !report.corrupt.is_empty() || report.tail.is_some() {
        return Err(format!("reopened: {report:?}"));
    }
    check_stream(&log, total / 2, &keys[total as usize / 2..])
}

/// Appends and flushes from every core, then appends more without
/// flushing and cuts the power with every other unflushed block landing:
/// reopened on the last core, the log holds every acknowledged record,
/// reports (and truncates) what the crash tore, and goes on.
pub fn recovers_after_a_crash(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let disk = new_disk()?;
    let (log, _) = open(&disk)?;
    let acked = joined(appenders(&log, 0, 10), 0)?;
    block_on(log.flush()).map_err(|e| format!("flush: {e}"))?;
    let durable = acked.len() as u64;
    // More records, never flushed (the window takes them all: no write).
    let unflushed = joined(appenders(&log, 1, u64::MAX), durable)?;
    // Written, but the device's flush fails: in its cache, not durable.
    disk.fail_flushes(1);
    if block_on(log.flush()) != Err(IoError::Device) {
        return Err(String::from("a failing flush succeeded"));
    }
    let stats = log.stats();
    if stats.durable_seq != durable {
        return Err(format!("unflushed records became durable: {stats:?}"));
    }
    // The power cut keeps every other block of that write.
    drop(log);
    if disk.crash(|_, lba| lba % 2 == 0) == 0 {
        return Err(String::from("no unflushed write to tear"));
    }
    let disk2 = disk.clone();
    let reopened = block_on(spawn_on(CoreId(cores() - 1), priority(32), async move {
        Log::open(disk2, REGION, Options::new(0x5eed)).await
    }));
    let (log, report) = reopened.map_err(|e| format!("reopen: {e}"))?;
    let log = Arc::new(log);
    percore_kernel::println!(
        "storage: crash kept {} of {} records ({} acknowledged); corrupt {:?}, tail {:?}",
        report.records,
        durable + unflushed.len() as u64,
        durable,
        report.corrupt,
        report.tail
    );
    if report.next_seq < durable || report.corrupt.iter().any(|c| c.first_seq < durable) {
        return Err(format!("acknowledged records lost: {report:?}"));
    }
    check_stream(&log, 0, &acked)?;
    // The log goes on where recovery ended, from every core.
    let after = joined(appenders(&log, 2, 5), report.next_seq)?;
    drop(log);
    let (log, again) = open(&disk)?;
    if again.tail.is_some() || again.records != report.records + after.len() as u64 {
        return Err(format!(
            "after the crash and more appends: {again:?} (first {report:?})"
        ));
    }
    check_stream(&log, report.next_seq, &after)
}

/// Flushes fail on the device: the flushers on every core get the error,
/// nothing is acknowledged twice or lost; once the device works again the
/// same records become durable.
pub fn device_errors_reach_every_core(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let disk = new_disk()?;
    let (log, _) = open(&disk)?;
    disk.set_latency(1);
    disk.fail_flushes(u32::MAX);
    let tasks: Vec<_> = (0..cores())
        .map(|c| {
            let log = log.clone();
            spawn_on(CoreId(c), priority(32), async move {
                let seq = log.append(&payload(key(c, 0))).await;
                (seq, log.flush().await)
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        match block_on(task) {
            (Ok(seq), Err(IoError::Device)) => seqs.push(seq),
            other => return Err(format!("with failing flushes: {other:?}")),
        }
    }
    if log.stats().durable_seq != 0 {
        return Err(format!(
            "a failed flush acknowledged records: {:?}",
            log.stats()
        ));
    }
    disk.clear_faults();
    let durable = block_on(log.flush()).map_err(|e| format!("flush after the fault: {e}"))?;
    if durable != u64::from(cores()) {
        return Err(format!("durable to {durable}, want {}", cores()));
    }
    drop(log);
    disk.crash(|_, _| false);
    let (_, report) = open(&disk)?;
    if report.records != u64::from(cores()) || report.tail.is_some() {
        return Err(format!("reopened: {report:?}"));
    }
    Ok(())
}
