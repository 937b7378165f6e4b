//! `cargo xtask bench disk [--smp N[,N...]] [--runs R] [--row-ms MS] [--cache MODE] [-- QEMU ARGS]`:
//! the in-kernel disk benchmark (`tests/src/disk_bench.rs`) on a machine
//! with a virtio-blk disk, once per core count, and with several core
//! counts a table of IOPS by cores.
//!
//! The disk is a raw image of [`BENCH_DISK_BYTES`] under `target/`,
//! removed afterwards, filled before the first boot with every 4 KiB
//! block's stamp (so every read has data to check, and reads go to data,
//! not to a hole the host answers with zeros). It is attached as
//! `-drive if=none,id=disk0,file=IMAGE,format=raw,cache=MODE,aio=threads
//! -device virtio-blk-pci,drive=disk0` (one request queue per vCPU, QEMU's
//! default): the same arguments `bench compare` gives the Linux guest.
//!
//! Why `cache=writeback` (QEMU's default) is the default mode: the image
//! is then served from the host's page cache, so the figures are the
//! guests' drivers and QEMU's virtio-blk device, the part percore and
//! Linux do differently; with `cache=none` every request also goes to the
//! host's own disk (on the development machines a virtual disk shared with
//! other work), whose latency and noise would be the same for both guests
//! but larger than the difference between them. `--cache none` measures
//! that instead.

use std::io::Write;
use std::time::Duration;

use crate::args::Args;
use crate::build::{self, KernelKind};
use crate::disk::{DiskSpec, TempImage, attach_args};
use crate::error::Error;
use crate::linux;
use crate::qemu::{self, Exit, Firmware, Machine};
use crate::test::{BenchFigure, FW_CFG_NAME, bench_boots, timeout};
use crate::tools;

/// Size of the benchmark's disk.
pub const BENCH_DISK_BYTES: u64 = 256 * 1024 * 1024;
/// Bytes per request, and the unit of the stamps.
const IO: usize = 4096;
const WORDS: usize = IO / 8;
/// See `stamp_word`.
const STAMP: u64 = 0x6469_736b_6265_6e63;
/// Milliseconds per row unless `--row-ms` says otherwise.
pub const DEFAULT_ROW_MS: u64 = 2000;
/// QEMU's cache mode for the image unless `--cache` says otherwise.
pub const DEFAULT_CACHE: &str = "writeback";
/// The fw_cfg file telling percore's benchmark the time per row.
pub const ROW_MS_FW_CFG: &str = "opt/percore/bench-disk-ms";

/// The 8-byte word `word` of 4 KiB block `lba`'s stamp. Keep in step with
/// `stamp_word` in `tests/src/disk_bench.rs` and `tools/linux-ref/src/disk.rs`.
pub fn stamp_word(lba: u64, word: usize) -> u64 {
    match word {
        0 => STAMP ^ lba,
        w if w == WORDS - 1 => STAMP.rotate_left(32) ^ !lba,
        w => STAMP.wrapping_mul(w as u64 | 1),
    }
}

/// The benchmark's disk: an image filled with stamps and how it is attached.
pub struct BenchDisk {
    image: TempImage,
    cache: String,
}

impl BenchDisk {
    /// A fresh image of [`BENCH_DISK_BYTES`], every block stamped.
    pub fn new(cache: &str) -> Result<BenchDisk, Error> {
        BenchDisk::with_size(cache, BENCH_DISK_BYTES)
    }

    /// A fresh image of `bytes` (a multiple of 4 KiB), every block stamped.
    pub fn with_size(cache: &str, bytes: u64) -> Result<BenchDisk, Error> {
        let image = TempImage::new("bench", bytes)?;
        let mut file = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::OpenOptions::new().write(true).open(&image.path)?,
        );
        let mut block = [0u8; IO];
        for lba in 0..bytes / IO as u64 {
            for (word, bytes) in block.as_chunks_mut::<8>().0.iter_mut().enumerate() {
                bytes.copy_from_slice(&stamp_word(lba, word).to_le_bytes());
            }
            file.write_all(&block)?;
        }
        file.flush()?;
        Ok(BenchDisk {
            image,
            cache: cache.to_string(),
        })
    }

    /// QEMU arguments attaching the image; the same for both guests.
    pub fn qemu_args(&self) -> Vec<String> {
        attach_args(
            &format!(
                "file={},format=raw,cache={},aio=threads",
                self.image.path.display(),
                self.cache
            ),
            &DiskSpec::default(),
        )
    }

    /// Attaches the disk to `machine` and tells percore the time per row.
    pub fn attach(&self, machine: &mut Machine, row_ms: u64) {
        machine.extra.extend(self.qemu_args());
        machine
            .fw_cfg
            .push((ROW_MS_FW_CFG.into(), row_ms.to_string()));
    }
}

/// Random-I/O rows of the benchmark (on both guests).
const ROWS: u64 = 8;
/// percore's disk-log rows: two timed append rows and the recovery row
/// (`bench log_...` lines).
const LOG_ROWS: u64 = 3;

/// How long a boot running the disk benchmark may take: the usual limit
/// (`PERCORE_QEMU_TIMEOUT_SECS`) plus twice the time of its rows.
pub fn boot_timeout(row_ms: u64) -> Duration {
    // The log rows: two timed rows, and about two rows' worth for filling
    // and reopening the recovery row's log.
    timeout() + Duration::from_millis(2 * (ROWS + 4) * row_ms)
}

/// Parses `1,2,4`.
fn core_counts(list: &str) -> Result<Vec<u32>, Error> {
    list.split(',')
        .map(|n| match n.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::Usage(format!("invalid core count `{n}` in --smp"))),
        })
        .collect()
}

/// `cargo xtask bench disk`.
pub fn run(args: &mut Args) -> Result<(), Error> {
    let smp = core_counts(&args.option::<String>("--smp")?.unwrap_or("4".into()))?;
    let runs: usize = args.option("--runs")?.unwrap_or(1);
    let row_ms: u64 = args.option("--row-ms")?.unwrap_or(DEFAULT_ROW_MS);
    let cache: String = args
        .option("--cache")?
        .unwrap_or_else(|| DEFAULT_CACHE.into());
    let extra = args.passthrough().to_vec();
    std::mem::take(args).finish()?;
    if runs == 0 {
        return Err(Error::Usage("--runs must be at least 1".into()));
    }
    let disk = BenchDisk::new(&cache)?;
    let mut by_cores: Vec<(u32, Vec<BenchFigure>)> = Vec::new();
    for &cores in &smp {
        println!("\n== bench disk: {cores} cores, cache={cache}, {row_ms} ms per row");
        let mut machine = Machine::new(Firmware::Bios, cores);
        machine.kvm = tools::kvm_available();
        disk.attach(&mut machine, row_ms);
        machine.extra.extend(extra.iter().cloned());
        let figures = bench_boots(&machine, "bench_disk", runs, boot_timeout(row_ms))?;
        by_cores.push((cores, figures));
    }
    if by_cores.len() > 1 {
        print_scaling(&by_cores);
    }
    Ok(())
}

/// The smoke test `cargo xtask test` runs (it also matches the filter
/// `disk`): both guests run the disk benchmark, with short rows on a small
/// disk, and print every row without a failed request or wrong data.
pub const SMOKE: &str = "qemu/bench-disk/both_guests_run";
const SMOKE_BYTES: u64 = 16 * 1024 * 1024;
const SMOKE_ROW_MS: u64 = 100;

/// [`SMOKE`]: Ok with what ran, or why not.
pub fn smoke() -> Result<String, Error> {
    let ovmf = tools::ensure(tools::Need::AnyQemu)?;
    let built = build::kernel(KernelKind::Tests, false)?;
    let disk = BenchDisk::with_size(DEFAULT_CACHE, SMOKE_BYTES)?;
    let mut machine = Machine::new(Firmware::Bios, 2);
    disk.attach(&mut machine, SMOKE_ROW_MS);
    let limit = boot_timeout(SMOKE_ROW_MS);
    let mut percore = machine.clone();
    percore
        .fw_cfg
        .push((FW_CFG_NAME.into(), "run bench_disk".into()));
    let vars = qemu::vars_copy(&ovmf, "disk-smoke")?;
    let captured = qemu::run_captured(percore.command(&built.images, &ovmf, &vars), limit, false);
    let _ = std::fs::remove_file(&vars);
    let captured = captured?;
    let ours = rows_of(&captured.lines) + log_rows_of(&captured.lines);
    if captured.exit != Exit::Success || ours != ROWS * 3 + LOG_ROWS {
        return Err(Error::Other(format!(
            "percore's bench_disk printed {ours} of {} figures and ended with {:?}:\n{}",
            ROWS * 3 + LOG_ROWS,
            captured.exit,
            captured.lines.join("\n")
        )));
    }
    let guest = linux::prepare()?;
    let settings = format!("linux_ref_disk_ms={SMOKE_ROW_MS}");
    let captured = linux::boot_with(&guest, &machine, "disk", &settings, limit)?;
    let theirs = rows_of(&captured.lines);
    if theirs != ROWS * 3 {
        return Err(Error::Other(format!(
            "the Linux guest's disk figure printed {theirs} of {} figures:\n{}",
            ROWS * 3,
            captured.lines.join("\n")
        )));
    }
    Ok(format!("{ours} figures from percore, {theirs} from Linux"))
}

/// How many `bench log_...` lines `lines` hold.
fn log_rows_of(lines: &[String]) -> u64 {
    lines.iter().filter(|l| l.starts_with("bench log_")).count() as u64
}

/// How many `bench disk_rand...` lines `lines` hold.
fn rows_of(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter(|l| l.starts_with("bench disk_rand"))
        .count() as u64
}

/// IOPS of every row by core count.
fn print_scaling(by_cores: &[(u32, Vec<BenchFigure>)]) {
    println!("\n== IOPS by cores (medians)");
    print!("{:<36}", "row");
    for (cores, _) in by_cores {
        print!(" {:>10}", format!("smp {cores}"));
    }
    println!();
    let rows = by_cores[0]
        .1
        .iter()
        .filter(|f| f.name.ends_with("_iops"))
        .map(|f| f.name.clone());
    for row in rows {
        print!("{row:<36}");
        for (_, figures) in by_cores {
            match figures.iter().find(|f| f.name == row) {
                Some(figure) => print!(" {:>10}", figure.median()),
                None => print!(" {:>10}", "-"),
            }
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_counts_parse() {
        assert_eq!(core_counts("1,2,4").unwrap(), [1, 2, 4]);
        assert_eq!(core_counts("3").unwrap(), [3]);
        assert!(core_counts("1,0").is_err());
        assert!(core_counts("two").is_err());
    }

    #[test]
    fn stamps_name_their_block() {
        assert_ne!(stamp_word(1, 0), stamp_word(2, 0));
        assert_ne!(stamp_word(1, WORDS - 1), stamp_word(2, WORDS - 1));
        assert_eq!(stamp_word(1, 7), stamp_word(2, 7));
    }
}
