//! Host-driven tests of the disk log on the real disk: boots in sequence
//! on one image file, with the host killing, damaging and checking the
//! image between them (the guest side is `tests/src/disklog.rs`; its
//! tests are `machine:disklog-kill` and `machine:disklog-errors`).
//!
//! **Durability under SIGKILL** (`disklog-kill`, [`KILL_RUNS`] kill points
//! per run): boot 1 appends and flushes records in a loop and prints
//! `disklog-acked SEQ` after each acknowledged flush; the host SIGKILLs
//! QEMU after a random number of acknowledgements plus a random delay
//! (seeded: the seed is printed; `PERCORE_KILL_SEED=N` repeats a run),
//! while the guest is appending more. The host reader (`percore-disklog`,
//! the kernel's own recovery code) then checks the image: every
//! acknowledged record is there with its payload (recomputed from its
//! sequence number) and checksum, nothing corrupt; it reports the torn
//! tail. Boot 2 recovers on the same image, finds every acknowledged
//! record and appends 64 more; the host checks the image again. After the
//! first kill point, the host flips bytes inside the record in the middle
//! of that image and boot 3 must report exactly that record as corrupt
//! (the host reader too) and read all the others.
//!
//! The drive is attached with `cache=none`: QEMU opens the image with
//! `O_DIRECT`, so a completed write is in the host's block device, not in
//! QEMU's or the page cache's memory, and the guest's virtio-blk FLUSH
//! (the driver sends `VIRTIO_BLK_T_FLUSH`; QEMU offers the write cache
//! with `cache=none`) becomes an `fdatasync` of the image file: what the
//! guest acknowledged after a flush is durable for the file, and a
//! SIGKILL of QEMU (which ends the process without any flush of its own)
//! cannot lose it. (With the default `writeback`, completed writes sit in
//! the host's page cache, which also survives the death of QEMU — only a
//! host crash loses them; `cache=unsafe` ignores flushes and is never
//! used here.)
//!
//! **Device errors** (`disklog-errors`): boot 1 with blkdebug failing
//! every write that touches a sector 1 MiB into the log: the guest appends
//! and flushes until a flush fails, then checks that flushers on every
//! core get the error; boot 2 without blkdebug recovers every acknowledged
//! record (checked by the guest and by the host reader); boot 3 on the
//! same image attached read-only reads the log and is refused appends.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use percore_disklog::{HEADER_LEN, ReadError, Reader, Record, Recovery, recover};

use crate::disk::{DiskSpec, TEST_DISK_BYTES, TempImage};
use crate::disklog;
use crate::error::Error;
use crate::qemu::{Captured, Exit, Firmware, Machine};
use crate::test::{Tally, report};

/// Kill points per `cargo xtask test` run.
const KILL_RUNS: u64 = 3;
/// Where the guest's log starts in the image (`LOG_START` in
/// `tests/src/disklog.rs`).
const LOG_START: u64 = 8 * 1024 * 1024;
/// The cache mode of every drive here (see the module doc).
const CACHE: &str = "none";

/// Whether the machine `name` is one of these sequences.
pub fn drives(name: &str) -> bool {
    matches!(name, "disklog-kill" | "disklog-errors")
}

/// Asked about the serial lines so far: whether to SIGKILL QEMU now.
pub type KillCheck<'a> = &'a mut dyn FnMut(&[String]) -> bool;
/// A boot of the test kernel with a `run ...` command.
pub type Boot<'a> = &'a dyn Fn(&Machine, &str) -> Result<Captured, Error>;
/// The same, killed when the check says.
pub type BootUntil<'a> = &'a dyn Fn(&Machine, &str, KillCheck<'_>) -> Result<Captured, Error>;
/// Items a log reader gives.
type Items = Vec<Result<Record, ReadError<std::io::Error>>>;

/// How to boot: a plain captured boot, and one killed when the check says.
pub struct Boots<'a> {
    pub boot: Boot<'a>,
    pub boot_until: BootUntil<'a>,
}

/// Runs sequence `name` (the guest's tests of that machine are `tests`).
pub fn run(name: &str, tests: &[&str], boots: &Boots, tally: &mut Tally) -> Result<(), Error> {
    let started = Instant::now();
    match name {
        "disklog-kill" => {
            let seed = std::env::var("PERCORE_KILL_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(1, |d| d.as_nanos() as u64)
                });
            println!(
                "disklog-kill: seed {seed} (PERCORE_KILL_SEED={seed} repeats these kill points)"
            );
            let mut rng = SplitMix(seed);
            for run in 0..KILL_RUNS {
                kill_run(run, &mut rng, tests, boots, tally)?;
            }
        }
        "disklog-errors" => errors(tests, boots, tally)?,
        _ => {}
    }
    println!("   ({name}: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// The payload of the record with key `key` (`record` in
/// `tests/src/disklog.rs`: keep in step).
pub fn record(key: u64) -> Vec<u8> {
    let len = (key.wrapping_mul(31) % 200) as usize + 8;
    let mut data: Vec<u8> = (0..len)
        .map(|i| (key.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect();
    data[..8].copy_from_slice(&key.to_le_bytes());
    data
}

/// A small seeded generator (splitmix64): kill points that a seed repeats.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn machine(image: &mut TempImage, spec: &DiskSpec) -> Result<Machine, Error> {
    let mut machine = Machine::new(Firmware::Bios, 2);
    let spec = DiskSpec {
        cache: Some(CACHE),
        ..spec.clone()
    };
    machine.extra.extend(image.qemu_args(&spec)?);
    Ok(machine)
}

fn with_expect(mut machine: Machine, expect: &[(&str, u64)]) -> Machine {
    for (name, value) in expect {
        machine
            .fw_cfg
            .push((format!("opt/percore/expect-{name}"), value.to_string()));
    }
    machine
}

/// The log in `image`: what recovery found, and every item the reader gives.
fn read_log(image: &Path) -> Result<(Recovery, Items), String> {
    let mut region = disklog::open(image, LOG_START).map_err(|e| e.to_string())?;
    let recovery = recover(&mut region).map_err(|e| format!("recovery: {e}"))?;
    let reader = Reader::new(&mut region, 0).map_err(|e| format!("reader: {e}"))?;
    Ok((recovery, reader.collect()))
}

/// Every record in the image is keyed by its sequence number, dense from
/// 0, at least `at_least` of them, none corrupt except `corrupt`. Returns
/// the recovery and the records read.
fn check_image(
    image: &Path,
    at_least: u64,
    corrupt: Option<u64>,
) -> Result<(Recovery, Vec<Record>), String> {
    let (recovery, items) = read_log(image)?;
    let mut records = Vec::new();
    let mut want = 0;
    for item in items {
        match item {
            Ok(r) if Some(r.seq) == corrupt => {
                return Err(format!("the damaged record {} read as data", r.seq));
            }
            Ok(r) if r.seq == want && r.payload == record(r.seq) => {
                want += 1;
                records.push(r);
            }
            Ok(r) => {
                return Err(format!(
                    "record seq {}: wrong payload or order (want {want})",
                    r.seq
                ));
            }
            Err(ReadError::Corrupt(c))
                if Some(want) == corrupt && (c.first_seq, c.last_seq) == (want, want) =>
            {
                want += 1
            }
            Err(e) => return Err(format!("at seq {want}: {e}")),
        }
    }
    let lost: Vec<(u64, u64)> = recovery
        .corrupt
        .iter()
        .map(|c| (c.first_seq, c.last_seq))
        .collect();
    let want_lost: Vec<(u64, u64)> = corrupt.map(|s| (s, s)).into_iter().collect();
    if lost != want_lost {
        return Err(format!(
            "recovery reports corrupt {lost:?}, expected {want_lost:?}"
        ));
    }
    if want < at_least || recovery.next_seq != want {
        return Err(format!(
            "{want} records read, next seq {}, at least {at_least} acknowledged",
            recovery.next_seq
        ));
    }
    Ok((recovery, records))
}

/// `disklog-acked N` lines: the last N.
fn last_acked(lines: &[String]) -> Option<u64> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("disklog-acked ")?.trim().parse().ok())
}

fn verdict(tally: &mut Tally, name: &str, result: Result<String, String>) {
    match &result {
        Ok(what) => println!("test {name} ... ok ({what})"),
        Err(why) => println!("test {name} ... FAILED: {why}"),
    }
    tally.record(name, result.is_ok());
}

fn kill_run(
    run: u64,
    rng: &mut SplitMix,
    tests: &[&str],
    boots: &Boots,
    tally: &mut Tally,
) -> Result<(), Error> {
    let label = format!("disklog-kill-{run}");
    let mut image = TempImage::new(&label, TEST_DISK_BYTES)?;
    let writer = machine(&mut image, &DiskSpec::default())?;
    // The kill point: after 2..=40 acknowledgements, then 0..60 ms more.
    let acks = 2 + rng.below(39);
    let delay = Duration::from_millis(rng.below(60));
    let mut seen_at: Option<Instant> = None;
    let mut kill = |lines: &[String]| {
        if seen_at.is_none()
            && lines
                .iter()
                .filter(|l| l.starts_with("disklog-acked "))
                .count() as u64
                >= acks
        {
            seen_at = Some(Instant::now());
        }
        seen_at.is_some_and(|t| t.elapsed() >= delay)
    };
    let captured = (boots.boot_until)(&writer, "run disk_log_kill_writer", &mut kill)?;
    let name = format!("qemu/{label}/killed_while_appending");
    let acked = last_acked(&captured.lines);
    if captured.exit != Exit::Killed || acked.is_none() {
        crate::test::print_tail(&captured.lines);
        verdict(
            tally,
            &name,
            Err(format!(
                "the writer ended with {:?} (last ack {acked:?}) before the kill",
                captured.exit
            )),
        );
        return Ok(());
    }
    let acked = acked.unwrap_or(0);
    verdict(
        tally,
        &name,
        Ok(format!(
            "SIGKILL after {acks} acks + {} ms: last acknowledged seq {}",
            delay.as_millis(),
            acked.saturating_sub(1)
        )),
    );
    let name = format!("qemu/{label}/image_holds_every_acknowledged_record");
    let found = check_image(&image.path, acked, None);
    let recovered = found.as_ref().map(|(r, _)| r.records).unwrap_or(0);
    verdict(
        tally,
        &name,
        found
            .as_ref()
            .map(|(r, _)| {
                format!(
                    "records flushed {acked}, in the image {}, torn tail {} bytes dropped",
                    r.records,
                    r.tail.map_or(0, |t| t.bytes)
                )
            })
            .map_err(Clone::clone),
    );
    if found.is_err() {
        return Ok(());
    }
    println!(
        "disklog-kill run {run}: records flushed {acked}, recovered {recovered}, tail bytes dropped {}",
        found
            .as_ref()
            .map_or(0, |(r, _)| r.tail.map_or(0, |t| t.bytes))
    );
    // Boot 2: recovery in the kernel, then more appends.
    let test = "disk_log_kill_recovery";
    if tests.contains(&test) {
        let m = with_expect(
            machine(&mut image, &DiskSpec::default())?,
            &[("log-acked", acked)],
        );
        let captured = (boots.boot)(&m, &format!("run {test}"))?;
        report(&label, &[test], &captured, tally);
        if let Some(line) = captured
            .lines
            .iter()
            .find(|l| l.starts_with("disklog-open "))
        {
            println!("   guest: {line}");
        }
        let name = format!("qemu/{label}/image_after_recovery_and_appends");
        let result =
            check_image(&image.path, recovered + 64, None).and_then(|(r, _)| match r.tail {
                None => Ok(format!("{} records, no torn tail", r.records)),
                Some(t) => Err(format!(
                    "a torn tail of {} bytes after a clean run",
                    t.bytes
                )),
            });
        verdict(tally, &name, result);
    }
    // Boot 3 (first kill point only): one record damaged in the middle.
    let test = "disk_log_kill_corruption";
    if run == 0 && tests.contains(&test) {
        corruption(&label, &mut image, test, boots, tally)?;
    }
    Ok(())
}

/// Flips bytes inside the middle record's payload, then boots `test`.
fn corruption(
    label: &str,
    image: &mut TempImage,
    test: &str,
    boots: &Boots,
    tally: &mut Tally,
) -> Result<(), Error> {
    let name = format!("qemu/{label}/host_reader_reports_the_damaged_record");
    let (recovery, records) = match check_image(&image.path, 1, None) {
        Ok(found) => found,
        Err(why) => {
            verdict(tally, &name, Err(why));
            return Ok(());
        }
    };
    let Some(victim) = records.get(records.len() / 2).cloned() else {
        verdict(tally, &name, Err("no records to damage".into()));
        return Ok(());
    };
    let block = u64::from(recovery.superblock.block_size);
    let at =
        LOG_START + block + victim.offset + HEADER_LEN as u64 + victim.payload.len() as u64 / 2;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image.path)?;
    let mut bytes = [0u8; 4];
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(&mut bytes)?;
    for b in &mut bytes {
        *b ^= 0xA5;
    }
    file.seek(SeekFrom::Start(at))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    let total = recovery.next_seq;
    verdict(
        tally,
        &name,
        check_image(&image.path, total, Some(victim.seq)).map(|_| {
            format!(
                "flipped 4 bytes at image byte {at}, in record {} of {total}",
                victim.seq
            )
        }),
    );
    let m = with_expect(
        machine(image, &DiskSpec::default())?,
        &[("log-corrupt", victim.seq), ("log-records", total)],
    );
    let captured = (boots.boot)(&m, &format!("run {test}"))?;
    report(label, &[test], &captured, tally);
    Ok(())
}

/// The device-error sequence (see the module doc).
fn errors(tests: &[&str], boots: &Boots, tally: &mut Tally) -> Result<(), Error> {
    let label = "disklog-errors";
    let mut image = TempImage::new(label, TEST_DISK_BYTES)?;
    let bad_sector = (LOG_START + 1024 * 1024) / 512;
    let failing = DiskSpec {
        failing_sector: Some(bad_sector),
        failing_iotype: Some("write"),
        ..DiskSpec::default()
    };
    let test = "disk_log_errors_reach_callers";
    let m = with_expect(
        machine(&mut image, &failing)?,
        &[("disk-bad-sector", bad_sector)],
    );
    let captured = (boots.boot)(&m, &format!("run {test}"))?;
    report(label, &[test], &captured, tally);
    let Some(acked) = last_acked(&captured.lines) else {
        return Ok(());
    };
    if let Some(line) = captured
        .lines
        .iter()
        .find(|l| l.starts_with("disklog-errors "))
    {
        println!("   guest: {line}");
    }
    let name = format!("qemu/{label}/image_holds_every_acknowledged_record");
    let result = check_image(&image.path, acked, None)
        .map(|(r, _)| format!("{acked} acknowledged, {} in the image", r.records));
    verdict(tally, &name, result);
    for (test, read_only) in [
        ("disk_log_errors_recovery", false),
        ("disk_log_errors_read_only", true),
    ] {
        if !tests.contains(&test) {
            continue;
        }
        let spec = DiskSpec {
            read_only,
            ..DiskSpec::default()
        };
        let m = with_expect(machine(&mut image, &spec)?, &[("log-acked", acked)]);
        let captured = (boots.boot)(&m, &format!("run {test}"))?;
        report(label, &[test], &captured, tally);
    }
    Ok(())
}

/// The test whose log the host checks in a matrix machine's image.
pub const EVERY_CORE_TEST: &str = "disk_log_appends_from_every_core";

/// After a matrix boot that ran [`EVERY_CORE_TEST`]: the image's log holds
/// exactly the records the guest reported (`disklog-image ... records=N`),
/// sequence numbers dense from 0, each payload the record of the key in
/// its first bytes, every key once, nothing corrupt, no torn tail.
pub fn check_every_core(label: &str, image: &Path, captured: &Captured, tally: &mut Tally) {
    let name = format!("qemu/{label}/disk_log_image_read_by_the_host");
    let result = (|| {
        let reported: u64 = captured
            .lines
            .iter()
            .find_map(|l| {
                let rest = l.strip_prefix("disklog-image ")?;
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix("records=")?.parse().ok())
            })
            .ok_or("the guest reported no `disklog-image` line")?;
        let (recovery, items) = read_log(image)?;
        let mut keys = std::collections::BTreeSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let r = item.map_err(|e| format!("at record {i}: {e}"))?;
            let key = u64::from_le_bytes(
                r.payload
                    .get(..8)
                    .ok_or("short payload")?
                    .try_into()
                    .map_err(|_| "short")?,
            );
            if r.seq != i as u64 || r.payload != record(key) || !keys.insert(key) {
                return Err(format!(
                    "record seq {} (key {key:#x}) is wrong or repeated",
                    r.seq
                ));
            }
        }
        if keys.len() as u64 != reported || recovery.records != reported || recovery.tail.is_some()
        {
            return Err(format!(
                "{} records read ({} recovered, tail {:?}), the guest appended {reported}",
                keys.len(),
                recovery.records,
                recovery.tail
            ));
        }
        Ok(format!(
            "{reported} records, every payload recomputed from its key"
        ))
    })();
    verdict(tally, &name, result);
}
