//! The `disk` figure: percore's disk benchmark (`tests/src/disk_bench.rs`,
//! `cargo xtask bench disk`) on Linux, on the same QEMU disk: 4 KiB random
//! reads and writes with `O_DIRECT` on the virtio-blk disk (`/dev/vda`),
//! at queue depth 1 (`pread`/`pwrite`, one request at a time) and 32
//! (`io_uring`, 32 requests in flight per thread), from vCPU 0 alone and
//! from a thread pinned on every vCPU at once, for the same time per row
//! (`linux_ref_disk_ms` on the kernel command line, an environment
//! variable here), with the same block numbers: slot `s` of the thread on
//! vCPU `c` in row `r` draws from the same generator as percore's worker
//! `s` on core `c`. Latency is from submit to completion in TSC cycles
//! (as percore measures it); every read is checked against the stamp the
//! host wrote into each block (three words), and writes store the stamp
//! again. The block layer's I/O scheduler is set to `none` (percore has
//! none either).
//!
//! Prints, per row, `bench disk_rand{read,write}_qd{1,32}_{1core,allcores}_{iops,p50_ns,p99_ns}`.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Barrier};

use io_uring::{IoUring, opcode, types};

use crate::sys;

/// Bytes per request.
const IO: usize = 4096;
const WORDS: usize = IO / 8;
/// Keep these in step with `tests/src/disk_bench.rs`.
const SEED: u64 = 0x7065_7263_6f72_6564;
const STAMP: u64 = 0x6469_736b_6265_6e63;
const SAMPLES_PER_CORE: usize = 1 << 18;
const DEFAULT_ROW_MS: u64 = 2000;
const DEVICE: &str = "vda";

fn stamp_word(lba: u64, word: usize) -> u64 {
    match word {
        0 => STAMP ^ lba,
        w if w == WORDS - 1 => STAMP.rotate_left(32) ^ !lba,
        w => STAMP.wrapping_mul(w as u64 | 1),
    }
}

/// One request's buffer, aligned for `O_DIRECT`.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; IO]);

impl Block {
    fn stamped(lba: u64) -> Block {
        let mut block = Block([0; IO]);
        for word in 0..WORDS {
            block.set(word, stamp_word(lba, word));
        }
        block
    }

    fn word(&self, word: usize) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.0[word * 8..word * 8 + 8]);
        u64::from_le_bytes(bytes)
    }

    fn set(&mut self, word: usize, value: u64) {
        self.0[word * 8..word * 8 + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn restamp(&mut self, lba: u64) {
        self.set(0, stamp_word(lba, 0));
        self.set(WORDS - 1, stamp_word(lba, WORDS - 1));
    }

    fn holds(&self, lba: u64) -> bool {
        [0, WORDS / 2, WORDS - 1]
            .iter()
            .all(|&w| self.word(w) == stamp_word(lba, w))
    }
}

/// splitmix64, as percore's `Rng`.
struct Rng(u64);

impl Rng {
    fn new(row: u64, core: u64, slot: u64) -> Rng {
        Rng(SEED ^ (row << 48) ^ (core << 32) ^ slot)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// TSC cycles per second, against CLOCK_MONOTONIC over 100 ms.
fn tsc_hz() -> u64 {
    let (ns0, c0) = (sys::now_ns(), rdtsc());
    sys::sleep_until(ns0 + 100_000_000);
    let (ns1, c1) = (sys::now_ns(), rdtsc());
    ((c1 - c0) as u128 * 1_000_000_000 / u128::from((ns1 - ns0).max(1))) as u64
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

#[derive(Clone, Copy)]
struct Row {
    op: Op,
    depth: usize,
    all_cores: bool,
}

impl Row {
    fn name(&self) -> String {
        let op = match self.op {
            Op::Read => "read",
            Op::Write => "write",
        };
        let cores = if self.all_cores { "allcores" } else { "1core" };
        format!("disk_rand{op}_qd{}_{cores}", self.depth)
    }
}

/// percore's rows, in its order (the row's index seeds the generators).
const ROWS: [Row; 8] = {
    const fn row(op: Op, depth: usize, all_cores: bool) -> Row {
        Row {
            op,
            depth,
            all_cores,
        }
    }
    [
        row(Op::Read, 1, false),
        row(Op::Read, 32, false),
        row(Op::Read, 1, true),
        row(Op::Read, 32, true),
        row(Op::Write, 1, false),
        row(Op::Write, 32, false),
        row(Op::Write, 1, true),
        row(Op::Write, 32, true),
    ]
};

/// What one thread brings back from a row.
#[derive(Default)]
struct Part {
    samples: Vec<u64>,
    errors: u64,
    wrong_data: u64,
    end: u64,
}

impl Part {
    /// Records a request that completed at `now`; `result` is what the
    /// system call or io_uring returned.
    fn record(&mut self, op: Op, block: &Block, lba: u64, latency: u64, now: u64, result: i64) {
        self.samples.push(latency);
        self.end = self.end.max(now);
        if result != IO as i64 {
            self.errors += 1;
        } else if op == Op::Read && !block.holds(lba) {
            self.wrong_data += 1;
        }
    }
}

/// The disk: its file descriptor and size in 4 KiB blocks.
#[derive(Clone, Copy)]
struct Disk {
    fd: RawFd,
    blocks: u64,
}

/// One thread's part of a row at queue depth 1: one request at a time.
fn one_at_a_time(disk: Disk, op: Op, mut rng: Rng, deadline: u64) -> Part {
    let mut part = Part::default();
    let mut block = Block::stamped(0);
    while part.samples.len() < SAMPLES_PER_CORE && rdtsc() < deadline {
        let lba = rng.below(disk.blocks);
        let offset = (lba * IO as u64) as libc::off_t;
        if op == Op::Write {
            block.restamp(lba);
        }
        let submitted = rdtsc();
        // SAFETY: `block` is a live, aligned buffer of IO bytes; `fd` is open.
        let done = unsafe {
            match op {
                Op::Read => libc::pread(disk.fd, block.0.as_mut_ptr().cast(), IO, offset),
                Op::Write => libc::pwrite(disk.fd, block.0.as_ptr().cast(), IO, offset),
            }
        };
        let now = rdtsc();
        part.record(op, &block, lba, now - submitted, now, done as i64);
    }
    part
}

/// The requests of one thread at queue depth above 1: one per slot.
struct Slots {
    rngs: Vec<Rng>,
    blocks: Vec<Block>,
    lbas: Vec<u64>,
    /// When each slot's request was submitted (TSC).
    submitted: Vec<u64>,
}

impl Slots {
    /// Queues slot `slot`'s next request on `ring`.
    fn submit(
        &mut self,
        ring: &mut IoUring,
        disk: Disk,
        op: Op,
        slot: usize,
    ) -> Result<(), String> {
        let lba = self.rngs[slot].below(disk.blocks);
        self.lbas[slot] = lba;
        let block = &mut self.blocks[slot];
        let fd = types::Fd(disk.fd);
        let offset = lba * IO as u64;
        let entry = match op {
            Op::Read => opcode::Read::new(fd, block.0.as_mut_ptr(), IO as u32)
                .offset(offset)
                .build(),
            Op::Write => {
                block.restamp(lba);
                opcode::Write::new(fd, block.0.as_ptr(), IO as u32)
                    .offset(offset)
                    .build()
            }
        };
        self.submitted[slot] = rdtsc();
        // SAFETY: the entry's buffer is this slot's block, which outlives
        // the ring's use of it (every request is reaped before `in_flight`
        // returns); the fd stays open for the whole row.
        unsafe { ring.submission().push(&entry.user_data(slot as u64)) }
            .map_err(|_| String::from("io_uring submission queue full"))
    }
}

/// One thread's part of a row at queue depth `rngs.len()`: that many
/// requests in flight through an io_uring, each slot resubmitted as it
/// completes (every completion reaped at once is resubmitted in one
/// `io_uring_enter`).
fn in_flight(disk: Disk, op: Op, rngs: Vec<Rng>, deadline: u64) -> Result<Part, String> {
    let depth = rngs.len();
    let mut ring = IoUring::new(2 * depth as u32).map_err(|e| format!("io_uring: {e}"))?;
    let mut slots = Slots {
        rngs,
        blocks: vec![Block::stamped(0); depth],
        lbas: vec![0; depth],
        submitted: vec![0; depth],
    };
    let mut part = Part::default();
    for slot in 0..depth {
        slots.submit(&mut ring, disk, op, slot)?;
    }
    let mut pending = depth;
    let mut done = Vec::with_capacity(2 * depth);
    while pending > 0 {
        ring.submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter: {e}"))?;
        let now = rdtsc();
        done.clear();
        done.extend(
            ring.completion()
                .map(|c| (c.user_data() as usize, c.result())),
        );
        for &(slot, result) in &done {
            let latency = now - slots.submitted[slot];
            part.record(
                op,
                &slots.blocks[slot],
                slots.lbas[slot],
                latency,
                now,
                i64::from(result),
            );
            if now < deadline && part.samples.len() + pending <= SAMPLES_PER_CORE {
                slots.submit(&mut ring, disk, op, slot)?;
            } else {
                pending -= 1;
            }
        }
    }
    Ok(part)
}

fn run_row(disk: Disk, index: usize, row: Row, row_ms: u64, hz: u64) -> Result<Figures, String> {
    let cpus = if row.all_cores { sys::cpus() } else { 1 };
    let start = rdtsc() + hz / 20;
    let deadline = start + hz * row_ms / 1000;
    let barrier = Arc::new(Barrier::new(cpus));
    let threads: Vec<_> = (0..cpus)
        .map(|cpu| {
            let barrier = barrier.clone();
            std::thread::spawn(move || -> Result<Part, String> {
                sys::pin(cpu)?;
                let rngs: Vec<Rng> = (0..row.depth)
                    .map(|slot| Rng::new(index as u64, cpu as u64, slot as u64))
                    .collect();
                barrier.wait();
                while rdtsc() < start {
                    std::hint::spin_loop();
                }
                match row.depth {
                    1 => Ok(one_at_a_time(
                        disk,
                        row.op,
                        rngs.into_iter().next().unwrap_or(Rng(SEED)),
                        deadline,
                    )),
                    _ => in_flight(disk, row.op, rngs, deadline),
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    let (mut errors, mut wrong_data, mut end) = (0, 0, start);
    for thread in threads {
        let part = thread
            .join()
            .map_err(|_| String::from("a disk thread panicked"))??;
        samples.extend_from_slice(&part.samples);
        errors += part.errors;
        wrong_data += part.wrong_data;
        end = end.max(part.end);
    }
    let requests = samples.len() as u64;
    let iops = (u128::from(requests) * u128::from(hz) / u128::from((end - start).max(1))) as u64;
    let to_ns = |c: u64| (u128::from(c) * 1_000_000_000 / u128::from(hz)) as u64;
    samples.sort_unstable();
    let at = |p: usize| samples.get(samples.len().saturating_sub(1) * p / 100);
    Ok(Figures {
        iops,
        p50: to_ns(at(50).copied().unwrap_or(0)),
        p99: to_ns(at(99).copied().unwrap_or(0)),
        requests,
        errors,
        wrong_data,
    })
}

struct Figures {
    iops: u64,
    p50: u64,
    p99: u64,
    requests: u64,
    errors: u64,
    wrong_data: u64,
}

/// Waits up to 5 s for the disk to appear; its size in 512-byte sectors.
fn find_disk() -> Result<u64, String> {
    let size = format!("/sys/block/{DEVICE}/size");
    for _ in 0..50 {
        if let Ok(text) = std::fs::read_to_string(&size) {
            return text
                .trim()
                .parse()
                .map_err(|_| format!("{size} holds `{}`", text.trim()));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!(
        "no virtio disk ({size} missing): is the machine given one, and virtio_blk loaded?"
    ))
}

pub fn disk() -> Result<(), String> {
    let sectors = find_disk()?;
    // Best effort: some kernels have no scheduler to choose.
    let _ = std::fs::write(format!("/sys/block/{DEVICE}/queue/scheduler"), "none");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/dev/{DEVICE}"))
        .map_err(|e| format!("opening /dev/{DEVICE} with O_DIRECT: {e}"))?;
    let disk = Disk {
        fd: file.as_raw_fd(),
        blocks: sectors * 512 / IO as u64,
    };
    let row_ms = std::env::var("linux_ref_disk_ms")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROW_MS);
    let hz = tsc_hz();
    println!(
        "== disk (Linux): {} vCPUs, /dev/{DEVICE} {} MiB, 4 KiB random, O_DIRECT, QD1 pread/pwrite, QD32 io_uring, {row_ms} ms per row",
        sys::cpus(),
        (disk.blocks * IO as u64) >> 20
    );
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "row", "IOPS", "p50 us", "p99 us", "requests", "errors", "wrong"
    );
    let mut lines = Vec::new();
    let (mut errors, mut wrong_data) = (0, 0);
    for (index, row) in ROWS.iter().enumerate() {
        let f = run_row(disk, index, *row, row_ms, hz)?;
        let name = row.name();
        println!(
            "{name:<30} {:>9} {:>9.1} {:>9.1} {:>9} {:>7} {:>7}",
            f.iops,
            f.p50 as f64 / 1000.0,
            f.p99 as f64 / 1000.0,
            f.requests,
            f.errors,
            f.wrong_data
        );
        lines.push(format!("bench {name}_iops {} ops/s", f.iops));
        lines.push(format!("bench {name}_p50_ns {} ns", f.p50));
        lines.push(format!("bench {name}_p99_ns {} ns", f.p99));
        errors += f.errors;
        wrong_data += f.wrong_data;
    }
    for line in lines {
        println!("{line}");
    }
    drop(file);
    match (errors, wrong_data) {
        (0, 0) => Ok(()),
        _ => Err(format!(
            "{errors} requests failed, {wrong_data} reads returned wrong data"
        )),
    }
}
