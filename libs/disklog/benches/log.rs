//! `cargo bench -p percore-disklog`: the format's CPU cost on the host,
//! with an in-memory image as the disk (so no I/O time). Median of
//! `PERCORE_BENCH_REPS` (default 5) repetitions.
//!
//! Rows: appends of 128-byte records with the blocks written out every
//! record and every 64 records (encode + checksum + copy of the pending
//! blocks); recovery (full scan and check) of a 64 MiB log of 128-byte
//! records. One machine-readable line per row: `bench <name> <value> <unit>`.

use std::hint::black_box;
use std::time::Instant;

use percore_benchkit::{median, reps};
use percore_disklog::{Encoder, SliceDisk, Superblock, recover};

const BLOCK: u32 = 4096;
const LOG_BYTES: u64 = 64 << 20;

/// Appends `records` records of 128 bytes to a new log (a fresh `log_id`
/// over the previous run's bytes), writing the pending blocks into `image`
/// every `every` records. Returns seconds.
fn append(image: &mut [u8], records: u64, every: u64, log_id: u64) -> f64 {
    let sb = Superblock::new(BLOCK, LOG_BYTES / u64::from(BLOCK) + 2, log_id).unwrap();
    sb.encode(image);
    let mut enc = Encoder::new(sb, 20).unwrap();
    let payload = [0x5a; 128];
    let start = Instant::now();
    for i in 0..records {
        enc.append(&payload).unwrap();
        if (i + 1) % every == 0 {
            let p = enc.pending().unwrap();
            let at = p.lba as usize * BLOCK as usize;
            image[at..at + p.data.len()].copy_from_slice(p.data);
            let w = p.written;
            enc.mark_written(w);
        }
    }
    black_box(enc.durable_seq());
    start.elapsed().as_secs_f64()
}

fn main() {
    let records = LOG_BYTES / percore_disklog::record_span(128) as u64;
    let mut image = vec![0u8; ((LOG_BYTES / u64::from(BLOCK) + 2) * u64::from(BLOCK)) as usize];
    println!("{:<34} {:>14}", "row", "value");
    let mut log_id = 0;
    for every in [1, 64] {
        let name = format!("disklog_append128_flush{every}");
        let secs = median(
            (0..reps(5))
                .map(|_| {
                    log_id += 1;
                    append(&mut image, records, every, log_id)
                })
                .collect(),
        );
        let rate = records as f64 / secs;
        println!("{name:<34} {:>12.2}M records/s", rate / 1e6);
        println!("bench {name} {rate:.0} records/s");
    }
    let secs = median(
        (0..reps(5))
            .map(|_| {
                let start = Instant::now();
                let r = recover(SliceDisk::new(&image, BLOCK)).unwrap();
                // The last run flushed every 64 records: the rest never landed.
                assert_eq!(r.records, records / 64 * 64);
                start.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let ms = secs * 1e3;
    println!(
        "{:<34} {:>12.1} ms ({:.0} MiB/s)",
        "disklog_recover_64mib",
        ms,
        64.0 / secs
    );
    println!("bench disklog_recover_64mib {ms:.1} ms");
}
