//! Bytes flipped inside a record of a flushed log: recovery reports
//! exactly that record (by sequence number, offset and size) and never
//! returns it as data; the last record's damage is a torn tail instead.

mod common;

use common::{Image, flush, payload};
use percore_disklog::{
    Corrupt, Encoder, ReadError, Reader, Superblock, TornTail, record_span, recover,
};
use proptest::prelude::*;

/// A flushed log of records with these payload sizes; returns the image
/// and each record's (offset, span).
fn log(sizes: &[usize]) -> (Image, Vec<(u64, u64)>) {
    let sb = Superblock::new(512, 256, 11)
        .unwrap()
        .with_max_payload(1000)
        .unwrap();
    let mut img = Image::new(&sb);
    let mut enc = Encoder::new(sb, 8).unwrap();
    let mut spans = Vec::new();
    for (seq, &len) in sizes.iter().enumerate() {
        if enc.append(&payload(seq as u64, len)).is_err() {
            flush(&mut enc, &mut img);
            enc.append(&payload(seq as u64, len)).unwrap();
        }
        let span = record_span(len as u32) as u64;
        spans.push((enc.end() - span, span));
    }
    flush(&mut enc, &mut img);
    (img, spans)
}

proptest! {
    #[test]
    fn flipped_byte_names_its_record(
        sizes in prop::collection::vec(0usize..1000, 2..25),
        pick in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (mut img, spans) = log(&sizes);
        let end = spans.last().map(|&(o, s)| o + s).unwrap();
        let pos = pick.index(end as usize) as u64;
        let k = spans.iter().position(|&(o, s)| o <= pos && pos < o + s).unwrap();
        let at = img.at(pos);
        img.bytes[at] ^= flip;
        let n = sizes.len() as u64;
        let (offset, span) = spans[k];
        let r = recover(img.disk()).unwrap();
        prop_assert_eq!(r.records, n - 1);
        if k + 1 < sizes.len() {
            prop_assert_eq!(&r.corrupt, &[Corrupt { first_seq: k as u64, last_seq: k as u64, offset, bytes: span }]);
            prop_assert_eq!((r.next_seq, r.tail), (n, None));
        } else {
            prop_assert!(r.corrupt.is_empty());
            prop_assert_eq!(r.next_seq, n - 1);
            prop_assert_eq!(r.tail.map(|t| t.offset), Some(offset));
        }
        // The reader returns every other record intact, and the error in
        // the damaged one's place.
        for item in Reader::new(img.disk(), 0).unwrap() {
            match item {
                Ok(rec) => {
                    prop_assert_ne!(rec.seq, k as u64);
                    prop_assert_eq!(rec.payload, payload(rec.seq, sizes[rec.seq as usize]));
                }
                Err(ReadError::Corrupt(c)) => prop_assert_eq!(c.first_seq, k as u64),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}

#[test]
fn two_damaged_headers_in_a_row_are_one_range() {
    let sizes = [40, 900, 10, 300, 5];
    let (mut img, spans) = log(&sizes);
    for &k in &[1, 2] {
        let at = img.at(spans[k].0 + 4); // the length field
        img.bytes[at] ^= 0x40;
    }
    let r = recover(img.disk()).unwrap();
    let lost = Corrupt {
        first_seq: 1,
        last_seq: 2,
        offset: spans[1].0,
        bytes: spans[1].1 + spans[2].1,
    };
    assert_eq!(r.corrupt, [lost]);
    assert_eq!((r.records, r.next_seq, r.tail), (3, 5, None));
    let seqs: Vec<_> = Reader::new(img.disk(), 2)
        .unwrap()
        .map(|r| r.map(|r| r.seq))
        .collect();
    assert_eq!(seqs, [Err(ReadError::Corrupt(lost)), Ok(3), Ok(4)]);
}

#[test]
fn zeroed_block_in_the_middle() {
    let sizes = [300; 12];
    let (mut img, spans) = log(&sizes);
    // A lost write: block 3 of the log reads back as zeros.
    let at = img.at(3 * 512);
    img.bytes[at..at + 512].fill(0);
    let r = recover(img.disk()).unwrap();
    let first = spans.iter().position(|&(o, s)| o + s > 3 * 512).unwrap();
    let last = spans.iter().rposition(|&(o, _)| o < 4 * 512).unwrap();
    assert_eq!(r.corrupt.len(), 1);
    assert_eq!(
        (r.corrupt[0].first_seq, r.corrupt[0].last_seq),
        (first as u64, last as u64)
    );
    assert_eq!(r.records, 12 - (last - first + 1) as u64);
    assert_eq!(r.tail, None);
}

#[test]
fn garbage_after_a_clean_end_is_a_tail() {
    let (mut img, spans) = log(&[10, 20]);
    let end = spans[1].0 + spans[1].1;
    let at = img.at(end + 100);
    img.bytes[at] = 1;
    let r = recover(img.disk()).unwrap();
    assert_eq!(
        r.tail,
        Some(TornTail {
            offset: end,
            bytes: 101
        })
    );
    assert_eq!(r.records, 2);
}
