//! Host tests of the disk log on the RAM disk: appenders on many threads,
//! group commit, a power cut at every request of a workload with the
//! unflushed blocks landing in several patterns, a flipped byte, device
//! errors, a read-only disk, a stream that follows the log, and a property
//! test against a model (the acknowledged records).

extern crate std;

use alloc::vec::Vec;
use std::collections::BTreeMap;

use futures_executor::block_on;
use futures_util::{StreamExt, future};
use percore_disklog::{Corrupt, ReadError, Record};
use proptest::prelude::*;

use super::log::{AppendError, Log, OpenError, Options, Report};
use super::{BlockDevice, Fault, IoError, MemDisk};

const BS: usize = 512;
/// The log's region on the test disks: blocks 8..1032 (not at block 0, so
/// that region arithmetic is tested too).
const REGION: core::ops::Range<u64> = 8..1032;

fn disk() -> MemDisk {
    MemDisk::new(BS, 1100).unwrap()
}

fn options() -> Options {
    Options {
        log_id: 0xd15c,
        max_payload: 2000,
    }
}

fn open(disk: &MemDisk) -> (Log<&MemDisk>, Report) {
    block_on(Log::open(disk, REGION, options())).expect("open")
}

/// A recognisable payload for record `key` (never all zeros).
fn payload(key: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (key.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64 * 13) % 251) as u8 + 1)
        .collect()
}

/// The first `n` records of the stream from `from`.
fn read<D: BlockDevice>(
    log: &Log<D>,
    from: u64,
    n: usize,
) -> Vec<Result<Record, ReadError<IoError>>> {
    block_on(log.stream(from).take(n).collect())
}

/// The stream from `from` until it has covered every sequence number
/// below `end` (records and corrupt ranges), or a device error.
fn read_until<D: BlockDevice>(
    log: &Log<D>,
    from: u64,
    end: u64,
) -> Vec<Result<Record, ReadError<IoError>>> {
    let mut stream = core::pin::pin!(log.stream(from));
    let mut items = Vec::new();
    let mut next = from;
    while next < end {
        let Some(item) = block_on(stream.next()) else {
            break;
        };
        next = match &item {
            Ok(r) => r.seq + 1,
            Err(ReadError::Corrupt(c)) => c.last_seq + 1,
            Err(ReadError::Io(_)) => u64::MAX,
        };
        items.push(item);
    }
    items
}

/// Pending once (waking itself): lets the other futures of a `join` run.
async fn yield_once() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            return core::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        core::task::Poll::Pending
    })
    .await
}

/// Whether block `lba` of unflushed write `write` lands, for a crash
/// pattern.
fn lands(pattern: u64, write: usize, lba: u64) -> bool {
    match pattern {
        0 => false,
        1 => true,
        2 => lba % 2 == 0,
        3 => write == 0,
        _ => {
            let h = (pattern ^ (write as u64) << 32 ^ lba).wrapping_mul(0x2545_f491_4f6c_dd1d);
            h >> 63 == 1
        }
    }
}

#[test]
fn a_new_log_appends_flushes_and_streams_back() {
    let disk = disk();
    let (log, report) = open(&disk);
    assert!(report.formatted);
    assert_eq!((report.records, report.next_seq, report.tail), (0, 0, None));
    block_on(async {
        for i in 0..100 {
            assert_eq!(log.append(&payload(i, i as usize * 7 % 300)).await, Ok(i));
        }
        assert_eq!(log.flush().await, Ok(100));
    });
    let records = read(&log, 0, 100);
    for (i, r) in records.into_iter().enumerate() {
        let r = r.expect("record");
        assert_eq!(
            (r.seq, r.payload),
            (i as u64, payload(i as u64, i * 7 % 300))
        );
    }
    assert_eq!(read(&log, 60, 1)[0].as_ref().map(|r| r.seq), Ok(60));
    // Nothing lies outside the region: the blocks around it are untouched.
    let image = disk.image();
    assert!(image[..REGION.start as usize * BS].iter().all(|&b| b == 0));
    assert!(image[REGION.end as usize * BS..].iter().all(|&b| b == 0));
    // Reopened: the same records, nothing damaged.
    drop(log);
    let (log, report) = open(&disk);
    assert!(!report.formatted);
    assert_eq!((report.records, report.next_seq), (100, 100));
    assert!(report.corrupt.is_empty() && report.tail.is_none());
    assert_eq!(
        read(&log, 99, 1)[0].as_ref().map(|r| r.payload.clone()),
        Ok(payload(99, 99 * 7 % 300))
    );
}

#[test]
fn concurrent_flushers_share_one_write() {
    let disk = disk();
    let (log, _) = open(&disk);
    disk.set_latency(2);
    // Ten tasks on one thread, polled in turn: the first to flush writes
    // its record alone; the other nine append while that write is under
    // way and then go out together in the next one.
    let tasks = (0..10u64).map(|i| {
        let log = &log;
        async move {
            let seq = log.append(&payload(i, 50)).await.unwrap();
            let durable = log.flush().await.unwrap();
            assert!(durable > seq);
            seq
        }
    });
    let mut seqs = block_on(future::join_all(tasks));
    seqs.sort_unstable();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    let stats = log.stats();
    assert_eq!((stats.appended, stats.durable_seq), (10, 10));
    assert_eq!(
        stats.writes, 2,
        "one write for the first, one for the other nine"
    );
    assert_eq!(
        disk.requests().2,
        3,
        "a flush for the superblock and one per write"
    );
}

#[test]
fn appenders_on_many_threads_lose_nothing() {
    const THREADS: u64 = 8;
    const EACH: u64 = 150;
    let disk = disk();
    let (log, _) = open(&disk);
    disk.set_latency(1);
    let acked: Vec<Vec<(u64, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = &log;
                scope.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let key = t * 1000 + i;
                            let seq =
                                block_on(log.append(&payload(key, (key % 97) as usize))).unwrap();
                            if i % 3 == 0 {
                                let durable = block_on(log.flush()).unwrap();
                                assert!(durable > seq);
                            }
                            (seq, key)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    block_on(log.flush()).unwrap();
    let stats = log.stats();
    assert_eq!(stats.appended, THREADS * EACH);
    assert!(stats.writes <= THREADS * EACH);
    // Each thread's records are in its own order; all sequence numbers are
    // distinct and dense.
    let mut by_seq = BTreeMap::new();
    for thread in &acked {
        assert!(thread.windows(2).all(|w| w[0].0 < w[1].0));
        for &(seq, key) in thread {
            assert!(by_seq.insert(seq, key).is_none(), "seq {seq} twice");
        }
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (0..THREADS * EACH).collect::<Vec<_>>()
    );
    drop(log);
    let (log, report) = open(&disk);
    assert_eq!(report.records, THREADS * EACH);
    for r in read(&log, 0, (THREADS * EACH) as usize) {
        let r = r.unwrap();
        let key = by_seq[&r.seq];
        assert_eq!(r.payload, payload(key, (key % 97) as usize));
    }
}

/// The workload of the crash test: rounds of appends of varied sizes,
/// each round flushed. Returns the records acknowledged (flushed with
/// `Ok`) and every record appended, by sequence number.
fn workload(log: &Log<&MemDisk>) -> (u64, Vec<Vec<u8>>) {
    let mut acked = 0;
    let mut appended = Vec::new();
    block_on(async {
        for round in 0..6u64 {
            for k in 0..(round * 5 % 7 + 1) {
                let data = payload(round * 100 + k, ((round * 37 + k * 211) % 1500) as usize);
                match log.append(&data).await {
                    Ok(seq) => {
                        assert_eq!(seq, appended.len() as u64);
                        appended.push(data);
                    }
                    Err(AppendError::Io(_)) => return,
                    Err(e) => panic!("append: {e}"),
                }
            }
            match log.flush().await {
                Ok(durable) => acked = durable,
                Err(_) => return,
            }
        }
    });
    (acked, appended)
}

/// Reopens after a crash and checks the log against what was appended:
/// every acknowledged record is there with its payload, every record
/// returned is the one appended with its number, damage only ever covers
/// unacknowledged records; the tail is truncated and the log goes on.
fn check_recovered(disk: &MemDisk, acked: u64, appended: &[Vec<u8>], what: &str) -> Report {
    let (log, report) = open(disk);
    assert!(report.next_seq >= acked, "{what}: {report:?}");
    assert!(
        report.next_seq <= appended.len() as u64,
        "{what}: {report:?}"
    );
    assert!(
        report.corrupt.iter().all(|c| c.first_seq >= acked),
        "{what}: {report:?}"
    );
    let mut seen = 0;
    for item in read_until(&log, 0, report.next_seq) {
        match item {
            Ok(r) => {
                assert_eq!(r.payload, appended[r.seq as usize], "{what}: seq {}", r.seq);
                seen += 1;
            }
            Err(ReadError::Corrupt(c)) => assert!(c.first_seq >= acked, "{what}: {c:?}"),
            Err(e) => panic!("{what}: {e}"),
        }
    }
    assert_eq!(seen, report.records, "{what}");
    // Appending goes on after the recovered end; the torn tail is gone.
    let next = block_on(async {
        let seq = log.append(b"after the crash").await.unwrap();
        log.flush().await.unwrap();
        seq
    });
    assert_eq!(next, report.next_seq, "{what}");
    drop(log);
    let (log, again) = open(disk);
    assert_eq!(
        (again.records, again.next_seq, again.tail),
        (report.records + 1, next + 1, None),
        "{what}"
    );
    assert_eq!(again.corrupt, report.corrupt, "{what}");
    let last = read(&log, next, 1).pop().unwrap().unwrap();
    assert_eq!(last.payload, b"after the crash");
    report
}

#[test]
fn a_power_cut_at_every_request_loses_no_acknowledged_record() {
    // A clean run says how many requests the workload makes.
    let clean = disk();
    let (log, _) = open(&clean);
    let before = clean.requests();
    let (acked, appended) = workload(&log);
    assert_eq!(acked, appended.len() as u64);
    let after = clean.requests();
    let requests = (after.0 - before.0) + (after.1 - before.1) + (after.2 - before.2);
    // How many crashes left a torn tail, corrupt records in the middle
    // (unacknowledged ones landing out of order), unacknowledged records
    // recovered whole: each case must come up.
    let (mut torn, mut corrupt, mut extra) = (0, 0, 0);
    for cut in 0..=requests {
        for pattern in 0..8 {
            let disk = disk();
            let (log, _) = open(&disk);
            disk.cut_power_after(cut);
            let (acked, appended) = workload(&log);
            drop(log);
            disk.crash(|w, lba| lands(pattern, w, lba));
            let what = std::format!("cut {cut} pattern {pattern}");
            let report = check_recovered(&disk, acked, &appended, &what);
            torn += usize::from(report.tail.is_some());
            corrupt += usize::from(!report.corrupt.is_empty());
            extra += usize::from(report.records > acked);
        }
    }
    assert!(
        torn > 0 && corrupt > 0 && extra > 0,
        "torn {torn} corrupt {corrupt} extra {extra}"
    );
}

#[test]
fn a_flipped_byte_names_exactly_its_record() {
    let disk = disk();
    let (log, _) = open(&disk);
    block_on(async {
        for i in 0..20 {
            log.append(&payload(i, 100 + i as usize)).await.unwrap();
        }
        log.flush().await.unwrap();
    });
    let seven = read(&log, 7, 1).pop().unwrap().unwrap();
    drop(log);
    // A byte in the middle of record 7's payload, on the medium.
    let at = (REGION.start as usize + 1) * BS + seven.offset as usize + 32 + 50;
    disk.corrupt(at, 0x40);
    let (log, report) = open(&disk);
    let span = percore_disklog::record_span(107) as u64;
    let lost = Corrupt {
        first_seq: 7,
        last_seq: 7,
        offset: seven.offset,
        bytes: span,
    };
    assert_eq!(report.corrupt, [lost]);
    assert_eq!(
        (report.records, report.next_seq, report.tail),
        (19, 20, None)
    );
    let items = read_until(&log, 0, 20);
    assert_eq!(items.len(), 20);
    for (i, item) in items.iter().enumerate() {
        match (i, item) {
            (7, Err(ReadError::Corrupt(c))) => assert_eq!(*c, lost),
            (i, Ok(r)) => assert_eq!((r.seq, &r.payload), (i as u64, &payload(i as u64, 100 + i))),
            (i, other) => panic!("item {i}: {other:?}"),
        }
    }
}

#[test]
fn device_errors_reach_every_caller_and_lose_nothing_acknowledged() {
    let disk = disk();
    let (log, _) = open(&disk);
    block_on(async {
        log.append(b"first").await.unwrap();
        assert_eq!(log.flush().await, Ok(1));
        // A failing flush: both flushers whose records were in the write
        // hear of it.
        disk.set_latency(1);
        disk.fail_flushes(1);
        log.append(b"second").await.unwrap();
        let (a, b) = future::join(log.flush(), async {
            log.append(b"third").await.unwrap();
            log.flush().await
        })
        .await;
        assert_eq!(a, Err(IoError::Device));
        // `third` was appended while the failing write was under way: its
        // flusher wrote it (and `second`) again, successfully.
        assert_eq!(b, Ok(3));
        // A write that fails on a bad block, then succeeds once it is gone.
        disk.inject(REGION.start + 1..REGION.end, Fault::Write);
        log.append(b"fourth").await.unwrap();
        assert_eq!(log.flush().await, Err(IoError::Device));
        assert_eq!(log.flush().await, Err(IoError::Device));
        disk.clear_faults();
        assert_eq!(log.flush().await, Ok(4));
    });
    let stats = log.stats();
    assert_eq!((stats.durable_seq, stats.failed_writes), (4, 3));
    drop(log);
    disk.crash(|_, _| false);
    let (log, report) = open(&disk);
    assert_eq!((report.records, report.tail), (4, None));
    let got: Vec<_> = read(&log, 0, 4)
        .into_iter()
        .map(|r| r.unwrap().payload)
        .collect();
    assert_eq!(got, [&b"first"[..], b"second", b"third", b"fourth"]);
}

#[test]
fn bad_regions_options_and_read_only_disks_are_errors() {
    let disk = disk();
    let err = block_on(Log::open(&disk, 1099..1101, options())).err();
    assert!(matches!(err, Some(OpenError::Region { .. })), "{err:?}");
    let err = block_on(Log::open(&disk, 5..6, options())).err();
    assert!(matches!(err, Some(OpenError::Region { .. })), "{err:?}");
    let big = Options {
        max_payload: u32::MAX,
        ..options()
    };
    assert!(matches!(
        block_on(Log::open(&disk, REGION, big)),
        Err(OpenError::Format(_))
    ));
    // Not blank and not a log: refused, not formatted over.
    disk.corrupt(REGION.start as usize * BS + 3, 1);
    let err = block_on(Log::open(&disk, REGION, options())).err();
    assert_eq!(
        err,
        Some(OpenError::Recover(percore_disklog::OpenError::NoSuperblock))
    );
    // A log on a read-only disk reads, and refuses appends.
    let disk = self::disk();
    let (log, _) = open(&disk);
    block_on(async {
        log.append(b"kept").await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(
            log.append(&[0; 2001]).await,
            Err(AppendError::TooLarge {
                len: 2001,
                max: 2000
            })
        );
    });
    drop(log);
    let ro = MemDisk::from_image(disk.image(), BS).into_read_only();
    let (log, report) = block_on(Log::open(&ro, REGION, options())).unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(
        block_on(log.append(b"no")),
        Err(AppendError::Io(IoError::ReadOnly))
    );
    assert_eq!(
        read(&log, 0, 1)[0].as_ref().map(|r| r.payload.clone()),
        Ok(b"kept".to_vec())
    );
}

#[test]
fn try_append_says_when_the_window_is_full_and_a_flush_makes_room() {
    let disk = disk();
    let (log, _) = open(&disk);
    let mut appended = Vec::new();
    loop {
        let record = payload(appended.len() as u64, 1500);
        match log.try_append(&record) {
            Ok(Some(seq)) => {
                assert_eq!(seq, appended.len() as u64);
                appended.push(record);
            }
            Ok(None) => break,
            Err(e) => panic!("try_append: {e}"),
        }
        assert!(appended.len() < 10_000, "the window never filled");
    }
    // Full: nothing was taken, and again nothing until a flush.
    assert_eq!(log.try_append(b"x"), Ok(None));
    assert_eq!(log.stats().appended, appended.len() as u64);
    assert_eq!(block_on(log.flush()), Ok(appended.len() as u64));
    assert_eq!(log.try_append(b"x"), Ok(Some(appended.len() as u64)));
    assert_eq!(
        log.try_append(&[0; 2001]),
        Err(AppendError::TooLarge {
            len: 2001,
            max: 2000
        })
    );
    let back = read(&log, 0, appended.len());
    for (item, want) in back.iter().zip(&appended) {
        assert_eq!(item.as_ref().map(|r| &r.payload), Ok(want));
    }
    assert_eq!(back.len(), appended.len());
}

#[test]
fn a_full_log_says_so() {
    let disk = MemDisk::new(BS, 64).unwrap();
    let (log, _) = block_on(Log::open(&disk, 0..16, options())).unwrap();
    let result = block_on(async {
        for i in 0.. {
            match log.append(&payload(i, 500)).await {
                Ok(_) => {}
                Err(e) => return (i, e),
            }
        }
        unreachable!()
    });
    // 15 blocks of 512 bytes hold 14 records of 536 bytes.
    assert_eq!(result, (14, AppendError::LogFull));
    assert_eq!(block_on(log.flush()), Ok(14));
}

#[test]
fn a_stream_follows_the_log_as_it_grows() {
    let disk = disk();
    let (log, _) = open(&disk);
    disk.set_latency(1);
    let (got, ()) = block_on(future::join(
        log.stream(3).take(12).collect::<Vec<_>>(),
        async {
            for batch in 0..5u64 {
                for i in 0..3 {
                    log.append(&payload(batch * 3 + i, 20)).await.unwrap();
                }
                // Appended but not flushed: the stream must not see them yet.
                yield_once().await;
                log.flush().await.unwrap();
            }
        },
    ));
    let seqs: Vec<u64> = got.iter().map(|r| r.as_ref().unwrap().seq).collect();
    assert_eq!(seqs, (3..15).collect::<Vec<_>>());
    for r in got {
        let r = r.unwrap();
        assert_eq!(r.payload, payload(r.seq, 20));
    }
}

#[test]
fn a_stream_keeps_up_with_a_flush_per_record() {
    // The stream reads while every record is flushed alone: the blocks it
    // cached go stale at each flush, and it must never mistake them for
    // lost records.
    for latency in [0, 1, 2] {
        let disk = disk();
        let (log, _) = open(&disk);
        disk.set_latency(latency);
        // The reader takes its time over each record (a yield), so the
        // writer gets ahead of what it has cached.
        let slow = log.stream(0).then(|item| async {
            yield_once().await;
            item
        });
        let (got, ()) = block_on(future::join(slow.take(300).collect::<Vec<_>>(), async {
            for i in 0..300 {
                log.append(&payload(i, (i % 40) as usize)).await.unwrap();
                log.flush().await.unwrap();
                if i % 3 == 0 {
                    yield_once().await;
                }
            }
        }));
        for (i, r) in got.into_iter().enumerate() {
            let r = r.unwrap_or_else(|e| panic!("latency {latency}, record {i}: {e}"));
            assert_eq!((r.seq, r.payload), (i as u64, payload(i as u64, i % 40)));
        }
    }
}

#[test]
fn a_stream_names_acknowledged_records_damaged_under_it() {
    let disk = disk();
    let (log, _) = open(&disk);
    block_on(async {
        for i in 0..10 {
            log.append(&payload(i, 60)).await.unwrap();
        }
        log.flush().await.unwrap();
    });
    // The last record is damaged on the medium while the log is open: to
    // the scanner the log now ends before it, but it was acknowledged.
    let nine = read(&log, 9, 1).pop().unwrap().unwrap();
    disk.corrupt(
        (REGION.start as usize + 1) * BS + nine.offset as usize + 40,
        0x10,
    );
    let (items, ()) = block_on(future::join(
        log.stream(8).take(3).collect::<Vec<_>>(),
        async {
            log.append(b"eleven").await.unwrap();
            log.flush().await.unwrap();
        },
    ));
    assert_eq!(items[0].as_ref().map(|r| r.seq), Ok(8));
    match &items[1] {
        Err(ReadError::Corrupt(c)) => {
            assert_eq!((c.first_seq, c.last_seq, c.offset), (9, 9, nine.offset))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        items[2].as_ref().map(|r| r.payload.clone()),
        Ok(b"eleven".to_vec())
    );
}

#[derive(Clone, Debug)]
enum Op {
    Append(usize),
    Flush,
    FailNextFlush,
    FailWritesOnce,
    Crash(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..1200).prop_map(Op::Append),
        3 => Just(Op::Flush),
        1 => Just(Op::FailNextFlush),
        1 => Just(Op::FailWritesOnce),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random appends, flushes, device errors and crashes against a model:
    /// the records by sequence number (`None` once lost in a crash, which
    /// only unacknowledged ones may be) and how many are acknowledged.
    #[test]
    fn the_log_keeps_what_it_acknowledged(ops in prop::collection::vec(op(), 1..60)) {
        let disk = disk();
        let (mut log, _) = open(&disk);
        let mut model: Vec<Option<Vec<u8>>> = Vec::new();
        let mut acked = 0u64;
        for op in ops {
            match op {
                Op::Append(len) => {
                    let data = payload(model.len() as u64 * 7 + len as u64, len);
                    match block_on(log.append(&data)) {
                        Ok(seq) => {
                            prop_assert_eq!(seq, model.len() as u64);
                            model.push(Some(data));
                        }
                        Err(AppendError::Io(_)) => {}
                        Err(e) => prop_assert!(false, "append: {}", e),
                    }
                }
                Op::Flush => {
                    if let Ok(durable) = block_on(log.flush()) {
                        prop_assert_eq!(durable, model.len() as u64);
                        acked = durable;
                    }
                }
                Op::FailNextFlush => disk.fail_flushes(1),
                Op::FailWritesOnce => {
                    disk.inject(0..disk.blocks(), Fault::Write);
                    let _ = block_on(log.flush());
                    disk.clear_faults();
                }
                Op::Crash(pattern) => {
                    drop(log);
                    disk.crash(|w, lba| lands(pattern, w, lba));
                    disk.clear_faults();
                    let (reopened, report) = open(&disk);
                    log = reopened;
                    prop_assert!(report.next_seq >= acked && report.next_seq <= model.len() as u64);
                    model.truncate(report.next_seq as usize);
                    // Damage covers unacknowledged records only (or ones
                    // an earlier crash already took).
                    for c in &report.corrupt {
                        for seq in c.first_seq..=c.last_seq {
                            prop_assert!(seq >= acked || model[seq as usize].is_none());
                            model[seq as usize] = None;
                        }
                    }
                    acked = report.next_seq;
                }
            }
        }
        block_on(log.flush()).ok();
        let durable = log.stats().durable_seq;
        prop_assert!(durable >= acked);
        let mut next = 0;
        for item in read_until(&log, 0, durable) {
            match item {
                Ok(r) => {
                    prop_assert_eq!(r.seq, next);
                    prop_assert_eq!(Some(r.payload), model[r.seq as usize].clone());
                    next = r.seq + 1;
                }
                Err(ReadError::Corrupt(c)) => {
                    prop_assert_eq!(c.first_seq, next);
                    prop_assert!((c.first_seq..=c.last_seq).all(|s| model[s as usize].is_none()));
                    next = c.last_seq + 1;
                }
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
        prop_assert_eq!(next, durable);
    }
}

/// Every virtio-blk error becomes the `IoError` of the same kind, with the
/// request's numbers kept.
#[test]
fn virtio_blk_errors_map_one_to_one() {
    use crate::drivers::virtio::blk::BlkError;
    use percore_virtqueue::DeviceError;
    let cases = [
        (BlkError::NoDevice, IoError::NoDevice),
        (
            BlkError::BadLength {
                len: 100,
                block_size: 512,
            },
            IoError::BadLength(100),
        ),
        (
            BlkError::OutOfRange {
                lba: 7,
                blocks: 3,
                capacity: 8,
            },
            IoError::OutOfRange { lba: 7, blocks: 3 },
        ),
        (BlkError::ReadOnly, IoError::ReadOnly),
        (BlkError::Io, IoError::Device),
        (BlkError::Unsupported, IoError::Unsupported),
        (BlkError::BadStatus(9), IoError::BadStatus(9)),
        (
            BlkError::Device(DeviceError::BadId { id: 4096 }),
            IoError::Misbehaving,
        ),
    ];
    for (blk, io) in cases {
        assert_eq!(IoError::from(blk), io, "{blk:?}");
    }
}
