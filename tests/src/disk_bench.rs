//! `cargo xtask bench disk`: 4 KiB random reads and writes on the
//! virtio-blk disk, at queue depth 1 and 32, from core 0 alone and from
//! every core at once. Not run by `cargo xtask test` (a benchmark is never
//! pass/fail on timing); it fails only if a request fails or a read
//! returns other data than the disk holds.
//!
//! Each row runs for a fixed time (the host may set it through fw_cfg
//! `opt/percore/bench-disk-ms`, default [`DEFAULT_ROW_MS`]). On each core
//! taking part, one pinned task runs `depth` workers at once (QD32 = 32
//! requests in flight per core); each worker picks block-aligned 4 KiB
//! blocks uniformly over the whole disk from its own seeded generator
//! ([`Rng`], the same as the Linux reference guest's), submits one request,
//! waits for it, and records its latency from submit to completion with
//! the TSC. IOPS are the requests completed by every core over the time
//! from the common start to the last completion.
//!
//! The host fills the image before the boot with every block's [`stamp`]
//! (`tools/xtask/src/disk_bench.rs`), and writes store the same stamp, so a
//! read must always find its block's stamp: three words per read are
//! compared (after its completion time is taken). Errors and wrong data
//! are counted per row; any makes the benchmark fail after its table.
//!
//! Then the disk log (`storage::log`) on the disk's last [`LOG_REGION_BYTES`]
//! (half the disk if that is smaller),
//! formatted afresh for each row (its first block zeroed; these rows run
//! last, and write the stamps back afterwards): appends per second of
//! [`LOG_RECORD`]-byte records from one task, with a flush after every
//! record and after every 64, for the row's time; and the time
//! `open` takes to recover a log holding [`RECOVERY_BYTES`] of records
//! (three quarters of the region if that is smaller)
//! (every record read and its checksum checked), with the record count it
//! found checked against the count appended.
//!
//! Memory: before the rows, the driver's cost is printed (DMA and heap
//! bytes per queue), and the kernel heap's allocation counter is read
//! around a run of requests on one core: the I/O path allocates nothing.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use core::future::{Future, poll_fn};
use core::sync::atomic::Ordering;
use core::task::Poll;

use futures_util::future::join_all;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::drivers::virtio::blk::{self, Disk};
use percore_kernel::measure::Summary;
use percore_kernel::mem::heap;
use percore_kernel::reactor::{block_on, sleep_until, spawn_with};
use percore_kernel::storage::log::{AppendError, Options};
use percore_kernel::storage::virtio::{DiskLog, open_log};
use percore_kernel::time::{Clock, Instant, cycles_to_ns};
use percore_kernel::{Kernel, println};

use crate::harness::{Kind, Test};
use crate::reactor::{pinned, start_reactors};
use crate::smp::expectation;

/// This file's benchmark (run by `cargo xtask bench disk`, never by `test`).
pub const TESTS: &[Test] = &[Test::new("bench_disk", Kind::Bench, bench_disk)];

/// Bytes per request.
pub const IO: usize = 4096;
/// Words of one request's block.
const WORDS: usize = IO / 8;
/// Time per row unless the host says otherwise.
const DEFAULT_ROW_MS: u64 = 2000;
/// Bytes at the end of the disk the log rows use.
pub const LOG_REGION_BYTES: u64 = 96 << 20;
/// Payload bytes of one record in the append rows.
pub const LOG_RECORD: usize = 256;
/// Payload bytes of the log the recovery row reopens (about; whole records).
pub const RECOVERY_BYTES: u64 = 64 << 20;
/// Payload bytes of one record of that log.
const RECOVERY_RECORD: usize = 60 * 1024;
/// Latency samples kept per core and row (2 MiB), shared out among its
/// workers: a worker whose share is full stops before the row's end (the
/// row's IOPS then count it as idle for the rest; at TCG's rates no worker
/// gets there in a 2 s row).
const SAMPLES_PER_CORE: usize = 1 << 18;
/// Requests per worker in the allocation check.
const CHECK_ROUNDS: usize = 64;
/// Seed of every generator; each worker's stream also mixes in its row,
/// core and slot.
const SEED: u64 = 0x7065_7263_6f72_6564;
/// Word 0 of a block's stamp is `STAMP ^ lba`.
const STAMP: u64 = 0x6469_736b_6265_6e63;

/// The 8-byte word `word` of 4 KiB block `lba`'s stamp, the content the
/// host writes into every block before the boot and the benchmark's writes
/// store again: the first and last words name the block, the ones between
/// are a fixed filler. Keep in step with `stamp_word` in
/// `tools/xtask/src/disk_bench.rs` and `tools/linux-ref/src/disk.rs`.
pub fn stamp_word(lba: u64, word: usize) -> u64 {
    match word {
        0 => STAMP ^ lba,
        w if w == WORDS - 1 => STAMP.rotate_left(32) ^ !lba,
        w => STAMP.wrapping_mul(w as u64 | 1),
    }
}

fn word_at(buf: &[u8], word: usize) -> u64 {
    let at = word * 8;
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or_default())
}

fn set_word(buf: &mut [u8], word: usize, value: u64) {
    buf[word * 8..word * 8 + 8].copy_from_slice(&value.to_le_bytes());
}

/// Fills `buf` with block `lba`'s whole stamp.
fn stamp(buf: &mut [u8], lba: u64) {
    for word in 0..WORDS {
        set_word(buf, word, stamp_word(lba, word));
    }
}

/// Turns a buffer holding some block's stamp into block `lba`'s (only the
/// first and last words differ between blocks).
fn restamp(buf: &mut [u8], lba: u64) {
    set_word(buf, 0, stamp_word(lba, 0));
    set_word(buf, WORDS - 1, stamp_word(lba, WORDS - 1));
}

/// Whether `buf` holds block `lba`'s stamp: its first, middle and last words.
fn stamped(buf: &[u8], lba: u64) -> bool {
    [0, WORDS / 2, WORDS - 1]
        .iter()
        .all(|&w| word_at(buf, w) == stamp_word(lba, w))
}

/// splitmix64: one stream of block numbers. Keep in step with
/// `tools/linux-ref/src/disk.rs`.
pub struct Rng(u64);

impl Rng {
    /// The stream of worker `slot` on core `core` in row `row`.
    pub fn new(row: u64, core: u64, slot: u64) -> Rng {
        Rng(SEED ^ (row << 48) ^ (core << 32) ^ slot)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift: no modulo bias worth naming).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

/// One row of the table.
#[derive(Clone, Copy)]
struct Row {
    op: Op,
    depth: usize,
    all_cores: bool,
}

impl Row {
    /// `disk_randread_qd1_1core`, `disk_randwrite_qd32_allcores`, ...
    fn name(&self) -> String {
        let op = match self.op {
            Op::Read => "read",
            Op::Write => "write",
        };
        let cores = if self.all_cores { "allcores" } else { "1core" };
        format!("disk_rand{op}_qd{}_{cores}", self.depth)
    }
}

const fn row(op: Op, depth: usize, all_cores: bool) -> Row {
    Row {
        op,
        depth,
        all_cores,
    }
}

/// Every row, in the order they run.
const ROWS: [Row; 8] = [
    row(Op::Read, 1, false),
    row(Op::Read, 32, false),
    row(Op::Read, 1, true),
    row(Op::Read, 32, true),
    row(Op::Write, 1, false),
    row(Op::Write, 32, false),
    row(Op::Write, 1, true),
    row(Op::Write, 32, true),
];

/// The part of the disk the workers use: 4 KiB blocks `first..first + blocks`.
#[derive(Clone, Copy)]
pub struct Target {
    disk: &'static Disk,
    first: u64,
    blocks: u64,
    /// Device blocks per 4 KiB block.
    per_io: u64,
}

impl Target {
    /// The whole disk.
    pub fn whole(disk: &'static Disk) -> Target {
        let bs = u64::from(disk.block_size());
        Target {
            disk,
            first: 0,
            blocks: disk.blocks() * bs / IO as u64,
            per_io: IO as u64 / bs,
        }
    }

    /// Its last `blocks` 4 KiB blocks.
    pub fn tail(disk: &'static Disk, blocks: u64) -> Target {
        let whole = Target::whole(disk);
        let blocks = blocks.min(whole.blocks);
        Target {
            first: whole.blocks - blocks,
            blocks,
            ..whole
        }
    }

    /// Writes every block's stamp (32 requests in flight), as the host
    /// does for the benchmark's image; the number of failed writes.
    pub async fn stamp_all(&self) -> u64 {
        let writers = (0..32).map(|slot| async move {
            let mut buf = vec![0u8; IO];
            stamp(&mut buf, 0);
            let mut failed = 0;
            for block in (self.first + slot..self.first + self.blocks).step_by(32) {
                restamp(&mut buf, block);
                if self.disk.write(block * self.per_io, &buf).await.is_err() {
                    failed += 1;
                }
            }
            failed
        });
        join_all(writers).await.into_iter().sum()
    }
}

/// One worker: a request at a time, with its own buffer and generator.
struct Worker {
    rng: Rng,
    buf: Vec<u8>,
    /// Latency of each completed request, in TSC cycles.
    samples: Vec<u64>,
    errors: u64,
    wrong_data: u64,
    /// When its last request completed (TSC).
    end: u64,
}

impl Worker {
    fn new(rng: Rng, samples: usize) -> Worker {
        let mut buf = vec![0u8; IO];
        stamp(&mut buf, 0);
        Worker {
            rng,
            buf,
            samples: Vec::with_capacity(samples),
            errors: 0,
            wrong_data: 0,
            end: 0,
        }
    }

    /// Requests one after another until `deadline` (TSC) or until its
    /// sample buffer is full.
    async fn run(&mut self, target: Target, op: Op, deadline: u64) {
        while self.samples.len() < self.samples.capacity() && clock::cycles() < deadline {
            let block = target.first + self.rng.below(target.blocks);
            let lba = block * target.per_io;
            if op == Op::Write {
                restamp(&mut self.buf, block);
            }
            let submitted = clock::cycles();
            let result = match op {
                Op::Read => target.disk.read(lba, &mut self.buf).await,
                Op::Write => target.disk.write(lba, &self.buf).await,
            };
            let completed = clock::cycles();
            self.samples.push(completed - submitted);
            self.end = completed;
            match result {
                Err(_) => self.errors += 1,
                Ok(()) if op == Op::Read && !stamped(&self.buf, block) => self.wrong_data += 1,
                Ok(()) => {}
            }
        }
    }
}

/// What one core brings back from a row.
#[derive(Default)]
struct CoreResult {
    samples: Vec<u64>,
    errors: u64,
    wrong_data: u64,
    end: u64,
}

/// One core's part of row `index`: `depth` workers at once from `start`
/// (TSC) to `deadline`.
async fn core_part(
    target: Target,
    index: usize,
    row: Row,
    core: u16,
    start: Instant,
    deadline: u64,
) -> CoreResult {
    let per_worker = SAMPLES_PER_CORE / row.depth;
    let mut workers: Vec<Worker> = (0..row.depth)
        .map(|slot| {
            let rng = Rng::new(index as u64, u64::from(core), slot as u64);
            Worker::new(rng, per_worker)
        })
        .collect();
    sleep_until(start).await;
    join_all(workers.iter_mut().map(|w| w.run(target, row.op, deadline))).await;
    let mut result = CoreResult::default();
    for worker in workers {
        result.samples.extend_from_slice(&worker.samples);
        result.errors += worker.errors;
        result.wrong_data += worker.wrong_data;
        result.end = result.end.max(worker.end);
    }
    result
}

/// A row's figures.
struct Figures {
    iops: u64,
    latency: Summary,
    /// Doorbell writes during the row.
    notified: u64,
    requests: u64,
    errors: u64,
    wrong_data: u64,
}

/// Doorbell writes of every queue so far.
fn notifications(disk: &Disk) -> u64 {
    disk.queues()
        .iter()
        .map(|q| q.stats.notifications.load(Ordering::Relaxed))
        .sum()
}

fn run_row(target: Target, index: usize, row: Row, row_ms: u64) -> Result<Figures, String> {
    let cores = if row.all_cores {
        cpu::online_cores() as u16
    } else {
        1
    };
    // A common start a little ahead, so every core has set up its workers.
    let start = Instant(Clock::now().0 + 20_000_000);
    let start_cycles = Clock::cycles_at(start);
    let deadline = start_cycles + clock::hz() * row_ms / 1000;
    let handles: Vec<_> = (0..cores)
        .map(|core| {
            spawn_with(
                CoreId(core),
                pinned(),
                core_part(target, index, row, core, start, deadline),
            )
        })
        .collect();
    let notified = notifications(target.disk);
    let parts = block_on(join_all(handles));
    let notified = notifications(target.disk) - notified;
    let mut samples = Vec::new();
    let (mut errors, mut wrong_data, mut end) = (0, 0, start_cycles);
    for part in parts {
        samples.extend_from_slice(&part.samples);
        errors += part.errors;
        wrong_data += part.wrong_data;
        end = end.max(part.end);
    }
    let requests = samples.len() as u64;
    let elapsed = (end - start_cycles).max(1);
    let iops = (u128::from(requests) * u128::from(clock::hz()) / u128::from(elapsed)) as u64;
    for sample in &mut samples {
        *sample = cycles_to_ns(*sample);
    }
    Ok(Figures {
        iops,
        latency: Summary::of(&mut samples),
        notified,
        requests,
        errors,
        wrong_data,
    })
}

/// Heap allocations made while 32 workers on core 0 (half reading, half
/// writing) do [`CHECK_ROUNDS`] requests each (the workers, their buffers
/// and their futures are made first); the requests done; and
/// how many of them failed or read wrong data. The same is done once
/// before, unmeasured: queues that grow to their working size (the
/// reactor's wake queue, say) do so once, not per request.
pub fn allocations_of_requests(target: Target) -> (u64, u64, u64) {
    let check = spawn_with(CoreId(0), pinned(), async move {
        let mut measured = (0, 0, 0);
        for pass in 0..2 {
            let mut workers: Vec<Worker> = (0..32)
                .map(|slot| Worker::new(Rng::new(99, pass, slot), CHECK_ROUNDS))
                .collect();
            let mut runs: Vec<_> = workers
                .iter_mut()
                .enumerate()
                .map(|(i, w)| {
                    let op = if i % 2 == 0 { Op::Read } else { Op::Write };
                    Some(Box::pin(w.run(target, op, u64::MAX)))
                })
                .collect();
            let before = heap::allocations();
            // Polls every worker on each wake-up: `join_all` would not do
            // here, it allocates as its futures finish out of order.
            poll_fn(|cx| {
                let mut pending = false;
                for run in &mut runs {
                    if let Some(future) = run {
                        match future.as_mut().poll(cx) {
                            Poll::Ready(()) => *run = None,
                            Poll::Pending => pending = true,
                        }
                    }
                }
                if pending {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let allocations = heap::allocations() - before;
            drop(runs);
            let requests: u64 = workers.iter().map(|w| w.samples.len() as u64).sum();
            let failed: u64 = workers.iter().map(|w| w.errors + w.wrong_data).sum();
            measured = (allocations, requests, measured.2 + failed);
        }
        measured
    });
    block_on(check)
}

/// The blocks of the disk the log rows use: its last [`LOG_REGION_BYTES`],
/// or its second half on a smaller disk.
fn log_region(disk: &Disk) -> core::ops::Range<u64> {
    let bs = u64::from(disk.block_size());
    let blocks = (LOG_REGION_BYTES / bs).min(disk.blocks() / 2);
    disk.blocks() - blocks..disk.blocks()
}

/// Payload bytes the recovery row puts in its log.
fn recovery_bytes(disk: &Disk) -> u64 {
    let region = log_region(disk);
    let bytes = (region.end - region.start) * u64::from(disk.block_size());
    RECOVERY_BYTES.min(bytes / 4 * 3)
}

/// A new log on the disk's last [`LOG_REGION_BYTES`]: the region's first
/// block is zeroed, so `open` formats it.
async fn fresh_log(disk: &'static Disk, log_id: u64) -> Result<DiskLog, String> {
    let bs = u64::from(disk.block_size());
    let region = log_region(disk);
    disk.write(region.start, &vec![0; bs as usize])
        .await
        .map_err(|e| format!("zeroing the log region: {e:?}"))?;
    let (log, report) = open_log(Some(region), Options::new(log_id))
        .await
        .map_err(|e| format!("opening the log: {e}"))?;
    if !report.formatted {
        return Err(format!(
            "the zeroed region opened as an old log: {report:?}"
        ));
    }
    Ok(log)
}

/// Appends of [`LOG_RECORD`] bytes for `row_ms` (or until the region is
/// full), a flush after every `per_flush`: appends per second (counting
/// only flushed ones).
async fn append_row(disk: &'static Disk, per_flush: u64, row_ms: u64) -> Result<u64, String> {
    let log = fresh_log(disk, 0x6c6f_6700 + per_flush).await?;
    let mut record = [0u8; LOG_RECORD];
    let start = clock::cycles();
    let deadline = start + clock::hz() * row_ms / 1000;
    let mut flushed = 0u64;
    'row: while clock::cycles() < deadline {
        let mut appended = 0;
        for i in 0..per_flush {
            record[..8].copy_from_slice(&(flushed + i).to_le_bytes());
            match log.append(&record).await {
                Ok(_) => appended += 1,
                // The region is full: the row ends early, with what fit.
                Err(AppendError::LogFull) => {
                    log.flush().await.map_err(|e| format!("flush: {e:?}"))?;
                    flushed += appended;
                    break 'row;
                }
                Err(e) => return Err(format!("append {}: {e:?}", flushed + i)),
            }
        }
        let durable = log.flush().await.map_err(|e| format!("flush: {e:?}"))?;
        flushed += per_flush;
        if durable < flushed {
            return Err(format!("flush made {durable} records durable of {flushed}"));
        }
    }
    let elapsed = (clock::cycles() - start).max(1);
    Ok((u128::from(flushed) * u128::from(clock::hz()) / u128::from(elapsed)) as u64)
}

/// Fills a log with [`RECOVERY_BYTES`] of records (a flush every 64) and
/// times opening it again: (records, microseconds).
async fn recovery_row(disk: &'static Disk) -> Result<(u64, u64), String> {
    let log = fresh_log(disk, 0x7265_636f).await?;
    let mut record = vec![0x5au8; RECOVERY_RECORD];
    let records = recovery_bytes(disk) / RECOVERY_RECORD as u64;
    for seq in 0..records {
        record[..8].copy_from_slice(&seq.to_le_bytes());
        log.append(&record)
            .await
            .map_err(|e| format!("append {seq}: {e:?}"))?;
        if seq % 64 == 63 {
            log.flush().await.map_err(|e| format!("flush: {e:?}"))?;
        }
    }
    log.flush().await.map_err(|e| format!("flush: {e:?}"))?;
    drop(log);
    let start = clock::cycles();
    let (_, report) = open_log(Some(log_region(disk)), Options::new(0))
        .await
        .map_err(|e| format!("reopening the log: {e}"))?;
    let elapsed = cycles_to_ns(clock::cycles() - start) / 1000;
    if report.formatted || report.records != records || !report.corrupt.is_empty() {
        return Err(format!(
            "recovery found {} records of {records} (formatted {}, {} corrupt)",
            report.records,
            report.formatted,
            report.corrupt.len()
        ));
    }
    Ok((records, elapsed))
}

/// The log rows: their table lines and `bench` lines.
fn log_rows(disk: &'static Disk, row_ms: u64) -> Result<Vec<String>, String> {
    let run = spawn_with(CoreId(0), pinned(), async move {
        let each = append_row(disk, 1, row_ms).await?;
        let batched = append_row(disk, 64, row_ms).await?;
        let (records, recovery_us) = recovery_row(disk).await?;
        // Give the region its stamps back: the next boot on this image
        // (another core count, the Linux guest) reads them.
        let region = log_region(disk);
        let blocks = (region.end - region.start) * u64::from(disk.block_size()) / IO as u64;
        let failed = Target::tail(disk, blocks).stamp_all().await;
        if failed > 0 {
            return Err(format!("{failed} writes failed restamping the log region"));
        }
        Ok::<_, String>((each, batched, records, recovery_us))
    });
    let (each, batched, records, recovery_us) = block_on(run)?;
    println!("log appends/s ({LOG_RECORD} B records), flush every record: {each}");
    println!("log appends/s ({LOG_RECORD} B records), flush every 64:     {batched}");
    let bytes = records * RECOVERY_RECORD as u64;
    let mib = recovery_bytes(disk) >> 20;
    println!(
        "log recovery at open: {mib} MiB, {records} records in {} ms ({} MiB/s)",
        recovery_us / 1000,
        (bytes * 1_000_000 / recovery_us.max(1)) >> 20
    );
    Ok(vec![
        format!("bench log_appends_flush_each {each} appends/s"),
        format!("bench log_appends_flush_64 {batched} appends/s"),
        format!("bench log_recovery_{mib}mib_us {recovery_us} us"),
    ])
}

/// `cargo xtask bench disk`: the table, then one `bench` line per figure.
fn bench_disk(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let heap_before = heap::used_bytes();
    let disk = blk::init().map_err(|e| format!("no block device: {e:?}"))?;
    let driver_heap = heap::used_bytes() - heap_before;
    let target = Target::whole(disk);
    let row_ms: u64 = expectation("opt/percore/bench-disk-ms")
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ROW_MS);
    let queues = disk.queues();
    let dma = queues.first().map_or(0, |q| q.dma_bytes());
    println!(
        "== disk benchmark: {} cores, virtio-blk {} MiB, {} queues of {} slots, 4 KiB random, {row_ms} ms per row",
        cpu::online_cores(),
        (target.blocks * IO as u64) >> 20,
        queues.len(),
        queues.first().map_or(0, |q| q.slots())
    );
    let per_queue_heap = driver_heap / queues.len().max(1);
    println!(
        "memory per queue: {dma} bytes of DMA memory, about {per_queue_heap} bytes of heap ({driver_heap} for the driver)"
    );
    let (allocations, requests, failed) = allocations_of_requests(target);
    println!("heap allocations during {requests} requests at QD32 on core 0: {allocations}");
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}",
        "row", "IOPS", "p50 us", "p99 us", "requests", "kicks", "errors", "wrong"
    );
    let mut lines = Vec::new();
    let (mut errors, mut wrong_data) = (failed, 0);
    for (index, row) in ROWS.iter().enumerate() {
        let figures = run_row(target, index, *row, row_ms)?;
        let name = row.name();
        println!(
            "{name:<30} {:>9} {:>9.1} {:>9.1} {:>9} {:>8} {:>7} {:>7}",
            figures.iops,
            figures.latency.p50 as f64 / 1000.0,
            figures.latency.p99 as f64 / 1000.0,
            figures.requests,
            figures.notified,
            figures.errors,
            figures.wrong_data
        );
        lines.push(format!("bench {name}_iops {} ops/s", figures.iops));
        lines.push(format!("bench {name}_p50_ns {} ns", figures.latency.p50));
        lines.push(format!("bench {name}_p99_ns {} ns", figures.latency.p99));
        errors += figures.errors;
        wrong_data += figures.wrong_data;
    }
    let log_error = match log_rows(disk, row_ms) {
        Ok(log_lines) => {
            lines.extend(log_lines);
            None
        }
        Err(e) => Some(e),
    };
    lines.push(format!("bench disk_queue_dma_bytes {dma} bytes"));
    lines.push(format!(
        "bench disk_queue_heap_bytes {per_queue_heap} bytes"
    ));
    lines.push(format!(
        "bench disk_io_path_allocations {allocations} count"
    ));
    for line in lines {
        println!("{line}");
    }
    if let Some(e) = log_error {
        return Err(format!("disk log rows: {e}"));
    }
    if errors > 0 || wrong_data > 0 || allocations > 0 {
        return Err(format!(
            "{errors} requests failed, {wrong_data} reads returned wrong data, {allocations} heap allocations on the I/O path"
        ));
    }
    Ok(())
}
