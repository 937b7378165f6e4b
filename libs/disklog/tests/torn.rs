//! Crashes during an append: the last write lands only partly. Every
//! flushed record survives, nothing unflushed is returned wrong, the tail
//! is measured and truncated, and resuming erases it.

mod common;

use common::{Image, append, flush, payload};
use percore_disklog::{Encoder, Reader, Recovery, Superblock, recover};
use proptest::prelude::*;

const MAX: u32 = 600;

struct Crash {
    /// The image with every record before `durable` flushed.
    base: Image,
    durable: u64,
    /// The write in flight: its first block, data, and the log offsets
    /// where each new record ends.
    lba: u64,
    data: Vec<u8>,
    new_ends: Vec<u64>,
    durable_end: u64,
}

/// `durable` records flushed, then `new` more appended and their write
/// prepared but not yet landed.
fn crash(block_size: u32, durable: u64, new: &[usize]) -> Crash {
    let sb = Superblock::new(block_size, 128, 3)
        .unwrap()
        .with_max_payload(MAX)
        .unwrap();
    let mut base = Image::new(&sb);
    let mut enc = Encoder::new(sb, sb.max_window_blocks()).unwrap();
    for seq in 0..durable {
        append(
            &mut enc,
            &mut base,
            &payload(seq, (seq * 53 % 400) as usize),
        );
    }
    flush(&mut enc, &mut base);
    let durable_end = enc.end();
    let mut new_ends = Vec::new();
    for (i, &len) in new.iter().enumerate() {
        enc.append(&payload(durable + i as u64, len)).unwrap();
        new_ends.push(enc.end());
    }
    let p = enc.pending().unwrap();
    Crash {
        lba: p.lba,
        data: p.data.to_vec(),
        base,
        durable,
        new_ends,
        durable_end,
    }
}

/// Every record read is the one appended with its sequence number.
fn check_records(img: &Image, r: &Recovery, new: &[usize], durable: u64) {
    let mut n = 0;
    for rec in Reader::new(img.disk(), 0).unwrap() {
        let rec = rec.unwrap();
        assert_eq!(rec.seq, n);
        let len = if n < durable {
            (n * 53 % 400) as usize
        } else {
            new[(n - durable) as usize]
        };
        assert!(rec.payload == payload(n, len));
        n += 1;
    }
    assert_eq!(n, r.records);
}

impl Crash {
    /// Whether new record `i` is whole once the write landed up to log
    /// offset `landed`: its last non-zero byte landed (the zeros after it
    /// were zeros on disk already).
    fn whole(&self, i: usize, landed: u64, first: u64) -> bool {
        let start = if i == 0 {
            self.durable_end
        } else {
            self.new_ends[i - 1]
        };
        let bytes = &self.data[(start - first) as usize..(self.new_ends[i] - first) as usize];
        let last = bytes.iter().rposition(|&b| b != 0).unwrap() as u64;
        landed > start + last
    }
}

#[test]
fn torn_at_every_byte_of_the_last_write() {
    for block_size in [512, 4096] {
        let new = [100, 450, 7];
        let c = crash(block_size, 9, &new);
        let first = c.lba as usize * block_size as usize - block_size as usize;
        for k in 0..=c.data.len() {
            let mut img = Image {
                bytes: c.base.bytes.clone(),
                block_size,
            };
            img.write(c.lba, &c.data[..k]);
            let landed = (first + k) as u64;
            let complete = (0..new.len())
                .take_while(|&i| c.whole(i, landed, first as u64))
                .count() as u64;
            let r = recover(img.disk()).unwrap();
            assert_eq!(r.records, c.durable + complete, "bs {block_size} k {k}");
            assert!(
                r.corrupt.is_empty(),
                "bs {block_size} k {k}: {:?}",
                r.corrupt
            );
            let valid_end = if complete == 0 {
                c.durable_end
            } else {
                c.new_ends[complete as usize - 1]
            };
            assert_eq!(r.end, valid_end);
            // Dropped: exactly the non-zero bytes landed past the valid end.
            let garbage = &img.bytes[img.at(valid_end)..img.at(landed.max(valid_end))];
            let dropped = garbage
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |i| i as u64 + 1);
            assert_eq!(
                r.tail.map_or(0, |t| t.bytes),
                dropped,
                "bs {block_size} k {k}"
            );
            check_records(&img, &r, &new, c.durable);
            // Resume: the tail is overwritten, the log goes on cleanly.
            let mut enc = Encoder::resume(&r, r.superblock.max_window_blocks()).unwrap();
            append(&mut enc, &mut img, b"after the crash");
            flush(&mut enc, &mut img);
            let again = recover(img.disk()).unwrap();
            assert_eq!(
                (again.records, again.tail),
                (r.records + 1, None),
                "bs {block_size} k {k}"
            );
            assert!(again.corrupt.is_empty());
        }
    }
}

proptest! {
    /// A 4 KiB-block write tears at 512-byte sectors in any pattern (not
    /// only a prefix): flushed records all survive, and every record
    /// returned is exactly one that was appended.
    #[test]
    fn torn_sectors_in_any_order(
        durable in 0u64..12,
        new in prop::collection::vec(0usize..MAX as usize, 1..6),
        landed in prop::collection::vec(any::<bool>(), 64),
    ) {
        let c = crash(4096, durable, &new);
        let mut img = Image { bytes: c.base.bytes.clone(), block_size: 4096 };
        let at = c.lba as usize * 4096;
        for (s, sector) in c.data.chunks(512).enumerate() {
            if landed[s % landed.len()] {
                img.bytes[at + s * 512..][..512].copy_from_slice(sector);
            }
        }
        let r = recover(img.disk()).unwrap();
        prop_assert!(r.records >= durable);
        prop_assert!(r.corrupt.iter().all(|c| c.first_seq >= durable));
        let mut seq = 0;
        for rec in Reader::new(img.disk(), 0).unwrap() {
            match rec {
                Ok(rec) => {
                    prop_assert!(rec.seq >= seq);
                    let len = if rec.seq < durable { (rec.seq * 53 % 400) as usize } else { new[(rec.seq - durable) as usize] };
                    prop_assert_eq!(rec.payload, payload(rec.seq, len));
                    seq = rec.seq + 1;
                }
                Err(percore_disklog::ReadError::Corrupt(lost)) => {
                    prop_assert_eq!(lost.first_seq, seq);
                    seq = lost.last_seq + 1;
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
        prop_assert_eq!(seq, r.next_seq);
        prop_assert!(r.end <= c.new_ends[c.new_ends.len() - 1]);
    }
}
