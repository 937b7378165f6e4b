//! The disk-log calls from ring 3, checked on the host: the guest's tests
//! of machine `udlog` (`tests/src/user_dlog.rs`) run the `dlog` program
//! on a fresh disk; after QEMU exits, the host reads the real image with
//! `percore-disklog` (the kernel's own recovery and reader, as `cargo
//! xtask disklog` does) and checks every run the guest reported
//! (`dlog-done seed=S records=N first=A last=B checksum=C`): records A..=B
//! are in the log, each the pattern record its first 16 bytes name
//! (seed S, index i — `record` here and in `userspace/programs/src/bin/dlog.rs`
//! are the same formula), every index 0..N once, and the FNV-1a checksum
//! of their payloads in sequence order is C. Nothing in the log may be
//! corrupt. Then the host flips bytes in the log's middle record and
//! boots `user_dlog_read_names_a_damaged_record` on the same image: the
//! `dlog` program must read `corrupt` for exactly that record through the
//! calls, and every other record.

use std::collections::BTreeSet;
use std::path::Path;

use percore_disklog::{HEADER_LEN, Reader, recover};

use crate::disk::{self, DiskSpec};
use crate::disklog;
use crate::durable::Boot;
use crate::error::Error;
use crate::qemu::{Firmware, Machine};
use crate::test::{Tally, report};

/// The machine of these tests.
pub const MACHINE: &str = "udlog";

/// Whether the machine `name` is this one.
pub fn drives(name: &str) -> bool {
    name == MACHINE
}

/// The guest test that writes records through `dlog`.
const APPENDS_TEST: &str = "user_dlog_appends_flushes_reads_back";
/// The guest test booted again after the host damaged a record.
const DAMAGED_TEST: &str = "user_dlog_read_names_a_damaged_record";

/// Boots the guest's `tests` on a 2-core machine with a fresh disk, then
/// checks the image; then, if [`DAMAGED_TEST`] is among them, flips bytes
/// in the record in the middle of the log and boots it on the same image.
pub fn run(tests: &[&str], boot: Boot, tally: &mut Tally) -> Result<(), Error> {
    let mut machine = Machine::new(Firmware::Bios, 2);
    let image = disk::attach(&mut machine, &DiskSpec::default(), MACHINE)?;
    let mut first: Vec<&str> = tests
        .iter()
        .copied()
        .filter(|t| *t != DAMAGED_TEST)
        .collect();
    if first.is_empty() {
        // The damaged test alone: records to damage come from this one.
        first.push(APPENDS_TEST);
    }
    let captured = boot(&machine, &format!("run {}", first.join(" ")))?;
    report(MACHINE, &first, &captured, tally);
    let name = format!("qemu/{MACHINE}/dlog_records_read_by_the_host");
    verdict(tally, &name, check(&image.path, &captured.lines));
    if tests.contains(&DAMAGED_TEST) {
        let name = format!("qemu/{MACHINE}/host_damages_a_record");
        match damage(&image.path) {
            Ok((seq, total)) => {
                verdict(tally, &name, Ok(format!("record {seq} of {total}")));
                for (what, value) in [("corrupt", seq), ("records", total)] {
                    machine
                        .fw_cfg
                        .push((format!("opt/percore/expect-dlog-{what}"), value.to_string()));
                }
                let captured = boot(&machine, &format!("run {DAMAGED_TEST}"))?;
                report(MACHINE, &[DAMAGED_TEST], &captured, tally);
            }
            Err(why) => verdict(tally, &name, Err(why)),
        }
    }
    Ok(())
}

fn verdict(tally: &mut Tally, name: &str, result: Result<String, String>) {
    match &result {
        Ok(what) => println!("test {name} ... ok ({what})"),
        Err(why) => println!("test {name} ... FAILED: {why}"),
    }
    tally.record(name, result.is_ok());
}

/// Flips 4 bytes in the middle of the payload of the log's middle record:
/// its sequence number, and the records in the log.
fn damage(image: &Path) -> Result<(u64, u64), String> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut region = disklog::open(image, 0).map_err(|e| e.to_string())?;
    let recovery = recover(&mut region).map_err(|e| format!("recovery: {e}"))?;
    let records = Reader::new(&mut region, 0)
        .map_err(|e| format!("reader: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading: {e}"))?;
    let victim = records
        .get(records.len() / 2)
        .ok_or("no records to damage (the other udlog tests write them)")?;
    let at = u64::from(recovery.superblock.block_size)
        + victim.offset
        + HEADER_LEN as u64
        + victim.payload.len() as u64 / 2;
    let io = |e: std::io::Error| format!("{}: {e}", image.display());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io)?;
    let mut bytes = [0u8; 4];
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(io)?;
    for b in &mut bytes {
        *b ^= 0xA5;
    }
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.write_all(&bytes))
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    Ok((victim.seq, recovery.next_seq))
}

/// splitmix64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Record `i` of seed `seed` (`record` in the `dlog` program: keep in step).
pub fn record(seed: u64, i: u64) -> Vec<u8> {
    let h = mix(seed ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let len = 16 + (h % 193) as usize;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&seed.to_le_bytes());
    out.extend_from_slice(&i.to_le_bytes());
    out.extend((0..len - 16).map(|k| (mix(h ^ k as u64) >> 17) as u8));
    out
}

/// FNV-1a, 64-bit, over `payloads` in order.
pub fn checksum<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for b in payloads.into_iter().flatten() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

/// One `dlog-done` line.
#[derive(Debug, PartialEq)]
struct Done {
    seed: u64,
    records: u64,
    first: u64,
    last: u64,
    checksum: u64,
}

fn parse_done(line: &str) -> Option<Done> {
    let rest = line.strip_prefix("dlog-done ")?;
    let field = |key: &str| {
        rest.split_whitespace().find_map(|w| {
            let value = w.strip_prefix(key)?.strip_prefix('=')?;
            match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => value.parse().ok(),
            }
        })
    };
    Some(Done {
        seed: field("seed")?,
        records: field("records")?,
        first: field("first")?,
        last: field("last")?,
        checksum: field("checksum")?,
    })
}

/// The check of the module doc on `image` (the machine's log is on the
/// whole disk: region offset 0).
fn check(image: &Path, lines: &[String]) -> Result<String, String> {
    let runs: Vec<Done> = lines.iter().filter_map(|l| parse_done(l)).collect();
    if runs.is_empty() {
        return Err("the guest reported no `dlog-done` line".into());
    }
    let mut region = disklog::open(image, 0).map_err(|e| e.to_string())?;
    let recovery = recover(&mut region).map_err(|e| format!("recovery: {e}"))?;
    if !recovery.corrupt.is_empty() {
        return Err(format!("corrupt records: {:?}", recovery.corrupt));
    }
    let reader = Reader::new(&mut region, 0).map_err(|e| format!("reader: {e}"))?;
    let records = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading: {e}"))?;
    let mut checked = 0;
    for run in &runs {
        let ours: Vec<_> = records
            .iter()
            .filter(|r| (run.first..=run.last).contains(&r.seq))
            .collect();
        if ours.len() as u64 != run.last - run.first + 1 || ours.len() as u64 != run.records {
            return Err(format!(
                "seed {}: {} records in {}..={} on the disk, the guest appended {}",
                run.seed,
                ours.len(),
                run.first,
                run.last,
                run.records
            ));
        }
        let mut indexes = BTreeSet::new();
        for r in &ours {
            let index = r
                .payload
                .get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| format!("record {}: short payload", r.seq))?;
            if r.payload != record(run.seed, index) || !indexes.insert(index) {
                return Err(format!(
                    "record {} (seed {}, index {index}) is not the pattern, or repeated",
                    r.seq, run.seed
                ));
            }
        }
        if indexes.last().is_some_and(|&i| i >= run.records) {
            return Err(format!("seed {}: an index out of range", run.seed));
        }
        let sum = checksum(ours.iter().map(|r| r.payload.as_slice()));
        if sum != run.checksum {
            return Err(format!(
                "seed {}: checksum {sum:#018x} on the disk, the guest printed {:#018x}",
                run.seed, run.checksum
            ));
        }
        checked += ours.len();
    }
    Ok(format!(
        "{} runs, {checked} records and their checksums, {} records in the log",
        runs.len(),
        recovery.records
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_guest_line() {
        let line = "dlog-done seed=7 records=3 first=10 last=12 checksum=0x00000000000000ff";
        assert_eq!(
            parse_done(line),
            Some(Done {
                seed: 7,
                records: 3,
                first: 10,
                last: 12,
                checksum: 255
            })
        );
        assert_eq!(parse_done("dlog-done seed=7"), None);
    }

    #[test]
    fn records_name_themselves_and_vary() {
        let r = record(5, 9);
        assert_eq!(&r[..8], &5u64.to_le_bytes());
        assert_eq!(&r[8..16], &9u64.to_le_bytes());
        assert!((16..=208).contains(&r.len()));
        assert_ne!(record(5, 9), record(5, 10));
        assert_ne!(
            checksum([r.as_slice()]),
            checksum([record(5, 10).as_slice()])
        );
    }
}
