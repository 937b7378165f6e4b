//! Round trips: what is appended and flushed is recovered and read back
//! exactly, whatever the record sizes, block size and flush points, also
//! across a recovery and a resumed encoder.

mod common;

use common::{Image, append, flush, payload};
use percore_disklog::{Encoder, Reader, Superblock, recover};
use proptest::prelude::*;

fn read_all(img: &Image, from: u64) -> Vec<(u64, Vec<u8>)> {
    Reader::new(img.disk(), from)
        .unwrap()
        .map(|r| r.map(|r| (r.seq, r.payload)).unwrap())
        .collect()
}

proptest! {
    #[test]
    fn appended_records_come_back(
        bs_log in 9u32..13,
        sizes in prop::collection::vec((0usize..700, any::<bool>()), 0..60),
        from in 0u64..70,
        window in any::<prop::sample::Index>(),
    ) {
        let bs = 1 << bs_log;
        let sb = Superblock::new(bs, 2 + 64 * 1024 / u64::from(bs), 0xABCD).unwrap().with_max_payload(700).unwrap();
        let mut img = Image::new(&sb);
        let (min, max) = (sb.min_window_blocks(), sb.max_window_blocks());
        let mut enc = Encoder::new(sb, min + window.index(max - min + 1)).unwrap();
        let mut want = Vec::new();
        for (seq, &(len, flush_now)) in sizes.iter().enumerate() {
            let data = payload(seq as u64, len);
            prop_assert_eq!(append(&mut enc, &mut img, &data), seq as u64);
            want.push((seq as u64, data));
            if flush_now {
                flush(&mut enc, &mut img);
            }
        }
        flush(&mut enc, &mut img);
        prop_assert_eq!(enc.durable_seq(), sizes.len() as u64);
        let r = recover(img.disk()).unwrap();
        prop_assert_eq!(r.records, sizes.len() as u64);
        prop_assert_eq!(r.next_seq, sizes.len() as u64);
        prop_assert_eq!(r.end, enc.end());
        prop_assert!(r.corrupt.is_empty());
        prop_assert_eq!(r.tail, None);
        let tail: Vec<_> = want.iter().filter(|(s, _)| *s >= from).cloned().collect();
        prop_assert_eq!(read_all(&img, from), tail);
    }

    #[test]
    fn resumed_log_continues(first in 0usize..20, second in 1usize..20) {
        let sb = Superblock::new(512, 200, 7).unwrap().with_max_payload(300).unwrap();
        let mut img = Image::new(&sb);
        let mut enc = Encoder::new(sb, 4).unwrap();
        for seq in 0..first as u64 {
            append(&mut enc, &mut img, &payload(seq, (seq * 37 % 300) as usize));
        }
        flush(&mut enc, &mut img);
        let r = recover(img.disk()).unwrap();
        let mut enc = Encoder::resume(&r, 4).unwrap();
        for seq in first as u64..(first + second) as u64 {
            prop_assert_eq!(append(&mut enc, &mut img, &payload(seq, (seq * 37 % 300) as usize)), seq);
        }
        flush(&mut enc, &mut img);
        let r = recover(img.disk()).unwrap();
        prop_assert_eq!(r.records, (first + second) as u64);
        prop_assert!(r.corrupt.is_empty() && r.tail.is_none());
        let got = read_all(&img, 0);
        for (i, (seq, data)) in got.iter().enumerate() {
            prop_assert_eq!(*seq, i as u64);
            prop_assert_eq!(data, &payload(i as u64, (i as u64 * 37 % 300) as usize));
        }
    }
}

#[test]
fn log_fills_up_and_refuses_more() {
    let sb = Superblock::new(512, 3, 1)
        .unwrap()
        .with_max_payload(200)
        .unwrap();
    let mut img = Image::new(&sb);
    let mut enc = Encoder::new(sb, 2).unwrap();
    let mut n = 0;
    loop {
        match enc.append(&payload(n, 100)) {
            Ok(_) => n += 1,
            Err(percore_disklog::AppendError::WindowFull) => flush(&mut enc, &mut img),
            Err(percore_disklog::AppendError::LogFull) => break,
            Err(e) => panic!("{e}"),
        }
    }
    flush(&mut enc, &mut img);
    assert_eq!(n, 1024 / 136);
    let r = recover(img.disk()).unwrap();
    assert_eq!((r.records, r.tail), (n, None));
}

#[test]
fn another_logs_records_are_not_this_logs() {
    let old = Superblock::new(512, 64, 1).unwrap();
    let mut img = Image::new(&old);
    let mut enc = Encoder::new(old, 130).unwrap();
    for seq in 0..5 {
        enc.append(&payload(seq, 50)).unwrap();
    }
    flush(&mut enc, &mut img);
    // A new log over the old one's bytes, without zeroing them.
    Superblock::new(512, 64, 2).unwrap().encode(&mut img.bytes);
    let r = recover(img.disk()).unwrap();
    assert_eq!(r.records, 0);
    assert_eq!(r.tail.unwrap().offset, 0);
    // Resuming scrubs the old bytes; the next recovery is clean.
    let mut enc = Encoder::resume(&r, 130).unwrap();
    enc.append(b"new").unwrap();
    flush(&mut enc, &mut img);
    let r = recover(img.disk()).unwrap();
    assert_eq!((r.records, r.tail), (1, None));
}

#[test]
fn damaged_superblock_is_not_a_log() {
    let sb = Superblock::new(512, 8, 1).unwrap();
    let mut img = Image::new(&sb);
    img.bytes[20] ^= 1;
    assert_eq!(
        recover(img.disk()).err(),
        Some(percore_disklog::OpenError::NoSuperblock)
    );
}

#[test]
fn block_size_must_match_the_device() {
    let sb = Superblock::new(1024, 8, 1).unwrap();
    let img = Image::new(&sb);
    let disk = percore_disklog::SliceDisk::new(&img.bytes, 512);
    assert_eq!(
        recover(disk).err(),
        Some(percore_disklog::OpenError::BlockSize {
            log: 1024,
            device: 512
        })
    );
}

#[test]
fn a_reader_follows_a_growing_log() {
    let sb = Superblock::new(512, 64, 5)
        .unwrap()
        .with_max_payload(200)
        .unwrap();
    let mut img = Image::new(&sb);
    let mut enc = Encoder::new(sb, 4).unwrap();
    let mut position = Reader::new(img.disk(), 0).unwrap().position();
    let mut seen = 0;
    for round in 0..20u64 {
        for seq in round * 3..round * 3 + 3 {
            append(&mut enc, &mut img, &payload(seq, (seq * 13 % 200) as usize));
        }
        flush(&mut enc, &mut img);
        let mut reader = Reader::resume(img.disk(), position).unwrap();
        for rec in reader.by_ref() {
            let rec = rec.unwrap();
            assert_eq!(rec.seq, seen);
            assert_eq!(rec.payload, payload(seen, (seen * 13 % 200) as usize));
            seen += 1;
        }
        assert_eq!(reader.tail(), None);
        position = reader.position();
        assert_eq!(position.offset, enc.end());
    }
    assert_eq!(seen, 60);
    let bad = percore_disklog::Position { offset: 3, seq: 0 };
    assert!(matches!(
        Reader::resume(img.disk(), bad),
        Err(percore_disklog::OpenError::BadPosition { offset: 3 })
    ));
}
