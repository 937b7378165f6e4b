//! A disk is input from outside: whatever its bytes, opening, recovering
//! and reading a log answers with values (records, corrupt ranges, a tail,
//! an error), never a panic, and what it returns is consistent.

mod common;

use common::{Image, flush, payload};
use percore_disklog::{Encoder, Position, ReadError, Reader, Superblock, recover};
use proptest::prelude::*;

/// Recovers and reads the whole image; checks the answers agree.
fn check(img: &Image) -> Result<(), TestCaseError> {
    let Ok(r) = recover(img.disk()) else {
        return Ok(());
    };
    let mut records = 0;
    let mut next = r.superblock.first_seq;
    for item in Reader::new(img.disk(), 0).unwrap() {
        match item {
            Ok(rec) => {
                prop_assert_eq!(rec.seq, next);
                next += 1;
                records += 1;
            }
            Err(ReadError::Corrupt(c)) => {
                prop_assert_eq!(c.first_seq, next);
                prop_assert!(c.last_seq >= c.first_seq);
                next = c.last_seq + 1;
            }
            Err(ReadError::Io(e)) => prop_assert!(false, "{e:?}"),
        }
    }
    prop_assert_eq!((records, next), (r.records, r.next_seq));
    // Resuming on whatever was found works too.
    let mut enc = Encoder::resume(&r, r.superblock.min_window_blocks()).unwrap();
    let _ = enc.append(b"more");
    Ok(())
}

fn log_image(sizes: &[usize]) -> Image {
    let sb = Superblock::new(512, 64, 99)
        .unwrap()
        .with_max_payload(400)
        .unwrap();
    let mut img = Image::new(&sb);
    let mut enc = Encoder::new(sb, sb.min_window_blocks()).unwrap();
    for (seq, &len) in sizes.iter().enumerate() {
        if enc.append(&payload(seq as u64, len)).is_err() {
            flush(&mut enc, &mut img);
            let _ = enc.append(&payload(seq as u64, len));
        }
    }
    flush(&mut enc, &mut img);
    img
}

proptest! {
    /// A valid log, then random bytes written at random places.
    #[test]
    fn damaged_log_never_panics(
        sizes in prop::collection::vec(0usize..400, 0..40),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 1usize..64), 0..8),
    ) {
        let mut img = log_image(&sizes);
        let len = img.bytes.len() - 512;
        for (at, byte, run) in damage {
            let at = 512 + at.index(len);
            let end = (at + run).min(img.bytes.len());
            img.bytes[at..end].fill(byte);
        }
        check(&img)?;
    }

    /// A valid superblock over random bytes, and random superblocks.
    #[test]
    fn random_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..8192),
        first_seq in prop_oneof![Just(0u64), Just(1u64 << 62), any::<u64>()],
        blocks in 0u64..40,
        raw_superblock in prop::collection::vec(any::<u8>(), 48),
    ) {
        if let Ok(sb) = Superblock::new(512, 20, 1) {
            let sb = Superblock { first_seq, blocks: blocks.max(2), ..sb };
            let mut img = Image { bytes: vec![0; 20 * 512], block_size: 512 };
            sb.encode(&mut img.bytes);
            img.bytes[512..512 + body.len()].copy_from_slice(&body);
            check(&img)?;
            let at = Position { offset: 8 * (first_seq % 600), seq: first_seq };
            if let Ok(reader) = Reader::resume(img.disk(), at) {
                prop_assert!(reader.count() < 1000);
            }
            let _ = Encoder::new(sb, 200);
        }
        let mut img = Image { bytes: vec![0; 4 * 512], block_size: 512 };
        img.bytes[..48].copy_from_slice(&raw_superblock);
        check(&img)?;
    }
}
