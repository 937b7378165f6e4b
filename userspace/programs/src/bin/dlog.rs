//! A program using the machine's disk log (`percore_runtime::dlog`):
//! appends N records of a seeded pattern, flushes, reads them back, and
//! prints a checksum and the sequence range — which the host checks
//! against the disk image afterwards (`tools/xtask/src/udlog.rs`).
//!
//! Arguments: `N SEED [MODE]` (defaults 100, 1):
//! - `sys` (default): appends through syscalls;
//! - `ring`: every disk-log call through the submission ring: appends 8
//!   a batch, the flush and the reads one at a time, each made again
//!   after a `poll_wait` (through the ring too) while it would block;
//! - `poll`: the log registered with the runtime's `Poll` (`Registry`,
//!   `Token`, `Interest`, as a socket): the open and the flush are waited
//!   for as its events (at least one must come); prints `dlog-poll
//!   events=E`;
//! - `noflush`: appends, never flushes, then sleeps until killed;
//! - `inflush`: appends, starts a flush (one `dlog_flush`, which returns
//!   `WouldBlock` while the write is under way), then sleeps until killed;
//! - `scan` (arguments `TOTAL DAMAGED scan`): appends nothing; reads
//!   every record of the log from sequence number 0: there must be TOTAL
//!   in all, record DAMAGED reported corrupt (as by the open's recovery)
//!   and every other one read. Prints `dlog-scan records=R corrupt=A..B`.
//!
//! Record `i` of seed `s` is [`record`] (the host has the same formula):
//! its first 16 bytes are `s` and `i`, so a record names itself. The
//! checksum is FNV-1a (64-bit) over the payloads in sequence order.
//!
//! Lines: `dlog-open …`, `dlog-appended first=A last=B`,
//! `dlog-flushed durable=D`, `dlog-done seed=S records=N first=A last=B
//! checksum=0x…`. Exit codes: 0 done and every record read back as
//! written; 1 a record wrong, missing or an unexpected error; 2 no disk
//! (`no-device`); 3 the log did not open (another error).
#![no_std]
#![no_main]

use percore_runtime::abi::ring::Submission;
use percore_runtime::abi::{DlogRecord, Error, PollEvent, Sys, decode};
use percore_runtime::dlog::{DiskLog, ReadFailed};
use percore_runtime::poll::{Events, Interest, Poll, Token};
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

/// The most records one run appends.
const MAX_RECORDS: usize = 4096;
/// The longest record.
const MAX_LEN: usize = 16 + 192;
/// Each record's sequence number, by index (too large for the stack).
static mut SEQS: [u64; MAX_RECORDS] = [0; MAX_RECORDS];
/// Each record's index, by sequence number from the first.
static mut BY_SEQ: [u64; MAX_RECORDS] = [0; MAX_RECORDS];

/// splitmix64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Record `i` of seed `seed` into `out`; its length. Keep in step with
/// `record` in `tools/xtask/src/udlog.rs`.
fn record(seed: u64, i: u64, out: &mut [u8; MAX_LEN]) -> usize {
    let h = mix(seed ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let len = 16 + (h % 193) as usize;
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out[8..16].copy_from_slice(&i.to_le_bytes());
    for (k, byte) in out[16..len].iter_mut().enumerate() {
        *byte = (mix(h ^ k as u64) >> 17) as u8;
    }
    len
}

/// FNV-1a, 64-bit, continued from `hash`.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

const FNV_START: u64 = 0xCBF2_9CE4_8422_2325;

fn main() -> i64 {
    let mut args = [0u8; 64];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let text = core::str::from_utf8(&args[..len]).unwrap_or("");
    let mut words = text.split_whitespace();
    let number = words.next().and_then(|w| w.parse::<u64>().ok());
    let seed = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    let mode = words.next().unwrap_or("sys");
    let count = number.unwrap_or(100).min(MAX_RECORDS as u64) as usize;
    let mut polled = None;
    let opened = match mode {
        "poll" => open_polled().map(|(log, info, poll)| {
            polled = Some(poll);
            (log, info)
        }),
        _ => DiskLog::open(),
    };
    let (log, info) = match opened {
        Ok(open) => open,
        Err(Error::NoDevice) => {
            println!("dlog: no disk ({})", Error::NoDevice);
            return 2;
        }
        Err(e) => {
            println!("dlog: the log does not open: {e}");
            return 3;
        }
    };
    println!(
        "dlog-open recovered={} corrupt={} next_seq={} durable_seq={}",
        info.recovered, info.corrupt, info.next_seq, info.durable_seq
    );
    let result = match mode {
        "scan" => scan(&log, number.unwrap_or(0), seed, info.corrupt),
        _ => run(&log, seed, count, mode, polled.as_mut()),
    };
    match result {
        Ok(()) => 0,
        Err(what) => {
            println!("dlog: FAIL {what}");
            1
        }
    }
}

fn run(
    log: &DiskLog,
    seed: u64,
    count: usize,
    mode: &str,
    polled: Option<&mut Polled>,
) -> Result<(), &'static str> {
    if count == 0 {
        return Err("no records to append");
    }
    // SAFETY: one thread; these are used only here.
    let (seqs, by_seq) = unsafe {
        (
            (&raw mut SEQS).as_mut().expect("a static"),
            (&raw mut BY_SEQ).as_mut().expect("a static"),
        )
    };
    match mode {
        "ring" => append_ring(log, seed, &mut seqs[..count])?,
        _ => append_sys(log, seed, &mut seqs[..count])?,
    }
    let first = seqs[..count].iter().min().copied().unwrap_or(0);
    let last = seqs[..count].iter().max().copied().unwrap_or(0);
    println!("dlog-appended first={first} last={last}");
    if mode == "inflush" {
        let _ = log.try_flush();
    }
    if mode == "noflush" || mode == "inflush" {
        loop {
            let _ = sys::sleep_ns(1_000_000_000);
        }
    }
    let mut ring = match mode {
        "ring" => Some(Ring::setup(16).map_err(|_| "ring setup failed")?),
        _ => None,
    };
    let durable = match (ring.as_mut(), polled) {
        (Some(ring), _) => ring_call(ring, Sys::DlogFlush, [log.handle().raw(), 0, 0, 0, 0, 0]),
        (None, Some(polled)) => {
            let durable = polled.until(|| log.try_flush());
            println!("dlog-poll events={}", polled.seen);
            if polled.seen == 0 {
                return Err("no event of the log came through the runtime's Poll");
            }
            durable
        }
        (None, None) => log.flush(),
    }
    .map_err(|_| "flush failed")?;
    println!("dlog-flushed durable={durable}");
    if durable <= last {
        return Err("flush returned before the last record was durable");
    }
    // What was appended, in sequence order (records of other processes
    // between them are skipped below).
    if last - first + 1 != count as u64 {
        return Err("another process appended in between: the range is not ours alone");
    }
    let mut written = FNV_START;
    for (i, seq) in seqs[..count].iter().enumerate() {
        by_seq[(seq - first) as usize] = i as u64;
    }
    let mut bytes = [0u8; MAX_LEN];
    for i in &by_seq[..count] {
        let len = record(seed, *i, &mut bytes);
        written = fnv(written, &bytes[..len]);
    }
    let read = read_back(log, ring.as_mut(), seed, first, last)?;
    if read != written {
        return Err("checksum of the records read back differs from what was appended");
    }
    println!(
        "dlog-done seed={seed} records={count} first={first} last={last} checksum={read:#018x}"
    );
    Ok(())
}

/// Appends records `0..seqs.len()`, noting each one's sequence number.
fn append_sys(log: &DiskLog, seed: u64, seqs: &mut [u64]) -> Result<(), &'static str> {
    let mut bytes = [0u8; MAX_LEN];
    for (i, seq) in seqs.iter_mut().enumerate() {
        let len = record(seed, i as u64, &mut bytes);
        *seq = log.append(&bytes[..len]).map_err(|_| "append failed")?;
    }
    Ok(())
}

/// Appends through the ring, 8 entries a batch; an entry that would block
/// (the log's window full) is appended again after a flush.
fn append_ring(log: &DiskLog, seed: u64, seqs: &mut [u64]) -> Result<(), &'static str> {
    const BATCH: usize = 8;
    let count = seqs.len();
    let mut ring = Ring::setup(16).map_err(|_| "ring setup failed")?;
    let mut buffers = [[0u8; MAX_LEN]; BATCH];
    let mut next = 0;
    while next < count {
        let batch = BATCH.min(count - next);
        for (k, buffer) in buffers[..batch].iter_mut().enumerate() {
            let i = next + k;
            let len = record(seed, i as u64, buffer);
            let args = [
                log.handle().raw(),
                buffer.as_ptr() as u64,
                len as u64,
                0,
                0,
                0,
            ];
            let entry = Submission::new(Sys::DlogAppend, i as u64, args);
            ring.submit(entry).map_err(|_| "ring full")?;
        }
        let mut done = 0;
        let mut retry = [usize::MAX; BATCH];
        while done < batch {
            let _ = ring.submit_and_wait(1);
            for c in ring.completions() {
                let i = c.user_data as usize;
                match decode(c.result) {
                    Ok(seq) => seqs[i] = seq,
                    Err(Error::WouldBlock) => retry[i - next] = i,
                    Err(_) => return Err("append through the ring failed"),
                }
                done += 1;
            }
        }
        for &i in retry.iter().filter(|&&i| i != usize::MAX) {
            log.flush().map_err(|_| "flush failed")?;
            let len = record(seed, i as u64, &mut buffers[0]);
            seqs[i] = log
                .append(&buffers[0][..len])
                .map_err(|_| "append failed")?;
        }
        next += batch;
    }
    Ok(())
}

/// Reads records `first..=last` back, checks each against the pattern,
/// and returns their checksum. The first read is made with a buffer too
/// small for the payload: it must say so, with the length, and leave the
/// record for the next read.
fn read_back(
    log: &DiskLog,
    mut ring: Option<&mut Ring>,
    seed: u64,
    first: u64,
    last: u64,
) -> Result<u64, &'static str> {
    let mut small = [0u64; 2];
    let mut want = [0u8; MAX_LEN];
    let mut hash = FNV_START;
    match read(log, ring.as_deref_mut(), first, &mut small) {
        Err(ReadFailed {
            error: Error::TooSmall,
            header,
        }) if header.seq == first && header.len >= 16 => {}
        _ => return Err("a header-only buffer did not get TooSmall with the length"),
    }
    let mut buf = [0u64; (16 + MAX_LEN).div_ceil(8)];
    let mut from = first;
    while from <= last {
        let got = read(log, ring.as_deref_mut(), from, &mut buf);
        let (header, payload) = got.map_err(|f| match f.error {
            Error::Corrupt => "a record is corrupt",
            Error::NotFound => "a record is missing",
            _ => "read failed",
        })?;
        if header.seq != from || payload.len() < 16 {
            return Err("a record came back out of order");
        }
        let i = u64::from_le_bytes(payload[8..16].try_into().unwrap_or_default());
        let len = record(seed, i, &mut want);
        if payload != &want[..len] {
            return Err("a record read back differs from what was appended");
        }
        hash = fnv(hash, payload);
        from = header.seq + 1;
    }
    match log.try_read(last + 1, &mut buf) {
        Err(ReadFailed {
            error: Error::NotFound,
            ..
        }) => Ok(hash),
        _ => Err("a read past the durable end did not say NotFound"),
    }
}

/// `dlog_read` of the record at or after `from` into `buf`, through the
/// ring when there is one.
fn read<'a>(
    log: &DiskLog,
    ring: Option<&mut Ring>,
    from: u64,
    buf: &'a mut [u64],
) -> Result<(DlogRecord, &'a [u8]), ReadFailed> {
    let Some(ring) = ring else {
        return log.read(from, buf);
    };
    let args = [
        log.handle().raw(),
        from,
        buf.as_mut_ptr() as u64,
        size_of_val(buf) as u64,
        0,
        0,
    ];
    let result = ring_call(ring, Sys::DlogRead, args);
    let header = DlogRecord {
        seq: buf[0],
        len: buf[1],
    };
    match result {
        Ok(len) => {
            // SAFETY: `buf` is initialised memory, viewed as its bytes.
            let bytes =
                unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), size_of_val(buf)) };
            Ok((header, &bytes[16..16 + len as usize]))
        }
        Err(error) => Err(ReadFailed { error, header }),
    }
}

/// Where `poll_wait`s through the ring write their events.
static mut EVENTS: [PollEvent; 8] = [PollEvent { token: 0, ready: 0 }; 8];

/// One operation through the ring, waited for; made again after a
/// `poll_wait` through the ring (an event of the log, or 100 ms) while
/// it would block.
fn ring_call(ring: &mut Ring, op: Sys, args: [u64; 6]) -> Result<u64, Error> {
    loop {
        match ring_once(ring, op, args) {
            Err(Error::WouldBlock) => {
                let events = [&raw mut EVENTS as u64, 8, 100_000_000, 0, 0, 0];
                ring_once(ring, Sys::PollWait, events)?;
            }
            other => return other,
        }
    }
}

/// Submits one entry and waits for its completion.
fn ring_once(ring: &mut Ring, op: Sys, args: [u64; 6]) -> Result<u64, Error> {
    ring.submit(Submission::new(op, 0, args))
        .map_err(|_| Error::Full)?;
    loop {
        ring.submit_and_wait(1)?;
        if let Some(completion) = ring.completions().next() {
            return decode(completion.result);
        }
    }
}

/// The `scan` mode (see the module doc).
fn scan(log: &DiskLog, total: u64, damaged: u64, corrupt_at_open: u64) -> Result<(), &'static str> {
    if corrupt_at_open != 1 {
        return Err("the open did not find exactly one corrupt record");
    }
    let mut buf = [0u64; (16 + MAX_LEN).div_ceil(8)];
    let (mut from, mut records, mut lost) = (0, 0u64, None);
    loop {
        match log.read(from, &mut buf) {
            Ok((header, _)) => {
                records += 1;
                from = header.seq + 1;
            }
            Err(ReadFailed {
                error: Error::Corrupt,
                header,
            }) => {
                if lost.is_some() || header.seq < from {
                    return Err("a second corrupt range, or one going back");
                }
                lost = Some((from, header.seq));
                from = header.seq + 1;
            }
            Err(ReadFailed {
                error: Error::NotFound,
                ..
            }) => break,
            Err(_) => return Err("a read failed"),
        }
    }
    let (first, last) = lost.ok_or("no record reported corrupt")?;
    println!("dlog-scan records={records} corrupt={first}..{last}");
    if (first, last) != (damaged, damaged) || records + 1 != total || from != total {
        return Err("not exactly the damaged record lost, or records missing");
    }
    Ok(())
}

/// The token the `poll` mode registers the log under.
const LOG: Token = Token(7);

/// The runtime's `Poll` with the log registered, and the log's events it
/// gave so far.
struct Polled {
    poll: Poll,
    events: Events,
    seen: u32,
}

impl Polled {
    /// Makes `op` again after each event (or 100 ms) while it would block.
    fn until(&mut self, mut op: impl FnMut() -> Result<u64, Error>) -> Result<u64, Error> {
        loop {
            match op() {
                Err(Error::WouldBlock) => {
                    let timeout = core::time::Duration::from_millis(100);
                    self.poll.poll(&mut self.events, Some(timeout))?;
                    let ours = self.events.iter().filter(|e| e.token() == LOG).count();
                    self.seen += ours as u32;
                }
                other => return other,
            }
        }
    }
}

/// Opens the log without waiting, registers it with a runtime `Poll`, and
/// waits for the open through it.
fn open_polled() -> Result<(DiskLog, percore_runtime::abi::DlogInfo, Polled), Error> {
    let mut log = DiskLog::try_open()?;
    let ring = Ring::setup(16)?;
    let poll = Poll::new(ring);
    poll.registry()
        .register(&mut log, LOG, Interest::READABLE | Interest::WRITABLE)?;
    let mut polled = Polled {
        poll,
        events: Events::with_capacity(8),
        seen: 0,
    };
    let mut info = percore_runtime::abi::DlogInfo::default();
    polled.until(|| log.info().map(|i| info = i).map(|()| 0))?;
    // The event of the registration itself (the kernel reports one at
    // once) is taken here: the flush's must come on its own.
    let settle = core::time::Duration::from_millis(10);
    polled.poll.poll(&mut polled.events, Some(settle))?;
    polled.seen = 0;
    Ok((log, info, polled))
}
