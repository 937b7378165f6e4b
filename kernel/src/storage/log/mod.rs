//! The disk log ("disk streams"): an append-only log of records on a
//! region of a [`BlockDevice`], in `percore-disklog`'s on-disk format (the
//! host reads the same bytes with `cargo xtask disklog`).
//!
//! - [`Log::open`]: recovers the log in the region (every record checked;
//!   corrupt records in the middle reported by sequence number, a torn
//!   tail measured and truncated on disk at once), or formats a new one
//!   when the region's first block is blank. What it found is the
//!   [`Report`].
//! - [`Log::append`]: copies a record into the log's window in memory and
//!   returns its sequence number; callable from any number of tasks on any
//!   cores at once.
//! - [`Log::flush`]: makes every record appended before it durable (the
//!   blocks written, then the device flushed). `Ok` is the acknowledgement:
//!   a record acknowledged is never lost, whatever happens after.
//! - [`Log::stream`]: the durable records from a sequence number on, read
//!   back from the device, following the log as it grows.
//!
//! # Order and group commit
//!
//! Appenders take the log's lock (a spin lock held for one record's copy
//! and checksum, never across I/O) in turn; sequence numbers are the order
//! in which they got it, and records lie on disk in that order. A flush
//! does not write alone: the first flusher to find no write in flight
//! becomes the writer for everyone — it takes every record appended so far
//! (its own and all other tasks'), writes them and flushes the device,
//! while later appenders keep appending behind it. A flusher whose records
//! are in the write under way waits for its outcome; one whose records
//! came after waits for it to end and then writes the next batch itself.
//! So under load, one device write and flush acknowledge many appenders.
//! An appender that finds the window full (records not yet written fill
//! it) waits for the write that makes room, starting it if none is under
//! way.
//!
//! Why one lock rather than a ring per core into an owner core: the format
//! has one writer numbering records in order, and what the lock guards is
//! a copy of the record into the window (and, for the writer, a copy of
//! the pending blocks), short and bounded; a hop through an owner core
//! would copy the record as often and add an intercore round trip.
//!
//! # Errors
//!
//! A failed write or flush is returned to the writer and to every flusher
//! whose records were in that attempt ([`IoError`]); nothing is
//! acknowledged, the records stay in the window, and the next flush writes
//! them again (the format rewrites the partial block it starts in with the
//! same durable bytes, so a failed or torn write cannot damage an
//! acknowledged record). A write that never completes (its future
//! dropped) is as if it failed, without an error to report.
//!
//! # Memory
//!
//! Allocated at open: the encoder's window and a copy of it for the write
//! in flight (at most 256 KiB each, and at least the largest record),
//! plus the report. Appending allocates nothing; a flush copies the
//! pending blocks into the write buffer (no allocation); a waiting flusher
//! leaves its waker in a list whose capacity is kept. A stream allocates
//! its read chunk (64 KiB) once and each record's payload.

use alloc::vec;
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::ops::Range;
use core::task::Poll;

use futures_core::Stream;
use percore_disklog::{
    AsyncBlockRead, DEFAULT_MAX_PAYLOAD, Encoder, FormatError, Superblock, Written, recover_async,
};
use percore_wake::WaitList;

use super::{BlockDevice, IoError};
use stream::Follower;

mod error;
mod stream;

pub use error::{AppendError, OpenError};
/// The format's types this API hands out.
pub use percore_disklog::{Corrupt, ReadError, Record, TornTail};

/// The most bytes of encoder window (and of write buffer) a log takes.
const WINDOW_BYTES: usize = 256 * 1024;

/// How to make a new log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The new log's nonce (records of an older log in the same place
    /// carry another one): a timestamp or a counter.
    pub log_id: u64,
    /// The largest record the new log accepts (at most 256 MiB).
    pub max_payload: u32,
}

impl Options {
    /// A new log identified by `log_id`, with records of up to 64 KiB.
    pub const fn new(log_id: u64) -> Options {
        Options {
            log_id,
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }
}

/// What [`Log::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Whether the region was blank and a new log was made.
    pub formatted: bool,
    /// Valid records in the log.
    pub records: u64,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// Records lost in the middle of the log, by sequence number (never
    /// returned as data).
    pub corrupt: Vec<Corrupt>,
    /// The torn tail cut off at the end, if any (already truncated on disk
    /// unless the device is read-only).
    pub tail: Option<TornTail>,
}

/// Counters of a log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// Records below this one are durable.
    pub durable_seq: u64,
    /// Records appended since open.
    pub appended: u64,
    /// Device writes (each followed by a flush) since open, and how many
    /// of them failed.
    pub writes: u64,
    pub failed_writes: u64,
}

/// A log on a region of a block device (see the module doc).
pub struct Log<D: BlockDevice> {
    device: D,
    /// First block of the region on the device, and its block count.
    start: u64,
    blocks: u64,
    state: spin::Mutex<State>,
    /// Tasks waiting for a write to end (flushers, appenders short of
    /// room, streams at the end of the durable log).
    progress: WaitList,
}

struct State {
    encoder: Encoder,
    /// The write buffer, here while no write is under way (its writer
    /// holds it meanwhile).
    buffer: Option<Vec<u8>>,
    /// The write under way.
    in_flight: Option<Attempt>,
    /// The most recent write that failed, and why.
    failed: Option<(u64, IoError)>,
    /// Log offset where the durable records end.
    durable_end: u64,
    attempts: u64,
    failed_writes: u64,
    appended: u64,
}

/// One write (and flush) of the pending blocks.
#[derive(Clone, Copy)]
struct Attempt {
    id: u64,
    /// Records below this sequence number are in it.
    covers: u64,
}

impl<D: BlockDevice> Log<D> {
    /// Opens the log on blocks `region` of `device`: recovers the one
    /// there, or, when the region's first block is all zeros, makes a new
    /// one as `options` say (its superblock written and flushed). A torn
    /// tail is truncated on disk before this returns (not on a read-only
    /// device).
    pub async fn open(
        device: D,
        region: Range<u64>,
        options: Options,
    ) -> Result<(Log<D>, Report), OpenError> {
        let device_blocks = device.blocks();
        if region.start >= region.end || region.end - region.start < 2 || region.end > device_blocks
        {
            return Err(OpenError::Region {
                blocks: region,
                device: device_blocks,
            });
        }
        let blocks = region.end - region.start;
        let bs = u32::try_from(device.block_size())
            .map_err(|_| OpenError::Format(FormatError::BadBlockSize(u32::MAX)))?;
        let mut first = vec![0; bs as usize];
        // The write buffer holds a whole window.
        let window = |sb: &Superblock| window_blocks(sb) * bs as usize;
        let mut buffer = Vec::new();
        device
            .read(region.start, &mut first)
            .await
            .map_err(OpenError::Io)?;
        let (encoder, report) = if first.iter().all(|&b| b == 0) {
            let sb = Superblock::new(bs, blocks, options.log_id)
                .and_then(|sb| sb.with_max_payload(options.max_payload))
                .map_err(OpenError::Format)?;
            sb.encode(&mut first);
            device
                .write(region.start, &first)
                .await
                .map_err(OpenError::Io)?;
            device.flush().await.map_err(OpenError::Io)?;
            let encoder = Encoder::new(sb, window_blocks(&sb)).map_err(OpenError::Format)?;
            buffer.reserve_exact(window(&sb));
            let report = Report {
                formatted: true,
                records: 0,
                next_seq: sb.first_seq,
                corrupt: Vec::new(),
                tail: None,
            };
            (encoder, report)
        } else {
            let region = Region {
                device: &device,
                start: region.start,
                blocks,
            };
            let r = recover_async(region).await.map_err(OpenError::Recover)?;
            let encoder =
                Encoder::resume(&r, window_blocks(&r.superblock)).map_err(OpenError::Format)?;
            buffer.reserve_exact(window(&r.superblock));
            let report = Report {
                formatted: false,
                records: r.records,
                next_seq: r.next_seq,
                corrupt: r.corrupt,
                tail: r.tail,
            };
            (encoder, report)
        };
        let log = Log {
            start: region.start,
            blocks,
            state: spin::Mutex::new(State {
                durable_end: encoder.end(),
                encoder,
                buffer: Some(buffer),
                in_flight: None,
                failed: None,
                attempts: 0,
                failed_writes: 0,
                appended: 0,
            }),
            progress: WaitList::new(),
            device,
        };
        if report.tail.is_some() && !log.device.read_only() {
            // The scrub of the tail is pending: write it out now, so the
            // log on disk ends where the report says.
            match log.write_pending().await {
                Ok(()) | Err(WriteError::Busy) => {}
                Err(WriteError::Io(e)) => return Err(OpenError::Io(e)),
            }
        }
        Ok((log, report))
    }

    /// The device the log is on.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// Appends `record` and returns its sequence number. It is durable
    /// once a [`flush`](Self::flush) called after this returns `Ok`. Waits
    /// only when the window is full (for the write that makes room).
    pub async fn append(&self, record: &[u8]) -> Result<u64, AppendError> {
        loop {
            if let Some(seq) = self.try_append(record)? {
                return Ok(seq);
            }
            let target = self.state.lock().encoder.next_seq();
            self.sync(target).await.map_err(AppendError::Io)?;
        }
    }

    /// Appends `record` if the window has room for it, without waiting:
    /// its sequence number, or `None` when the window is full (a
    /// [`flush`](Self::flush) makes room). Errors as [`append`](Self::append).
    pub fn try_append(&self, record: &[u8]) -> Result<Option<u64>, AppendError> {
        if self.device.read_only() {
            return Err(AppendError::Io(IoError::ReadOnly));
        }
        let mut s = self.state.lock();
        match s.encoder.append(record) {
            Ok(seq) => {
                s.appended += 1;
                Ok(Some(seq))
            }
            Err(percore_disklog::AppendError::WindowFull) => Ok(None),
            Err(percore_disklog::AppendError::TooLarge { len, max }) => {
                Err(AppendError::TooLarge { len, max })
            }
            Err(percore_disklog::AppendError::LogFull) => Err(AppendError::LogFull),
        }
    }

    /// Makes every record appended before this call durable, and returns
    /// the sequence number below which all records are. `Ok` is the
    /// acknowledgement: those records survive any crash after it.
    pub async fn flush(&self) -> Result<u64, IoError> {
        let target = self.state.lock().encoder.next_seq();
        self.sync(target).await?;
        Ok(target)
    }

    /// The log's counters.
    pub fn stats(&self) -> LogStats {
        let s = self.state.lock();
        LogStats {
            next_seq: s.encoder.next_seq(),
            durable_seq: s.encoder.durable_seq(),
            appended: s.appended,
            writes: s.attempts,
            failed_writes: s.failed_writes,
        }
    }

    /// The durable records with sequence numbers from `from` on, in order,
    /// read from the device; corrupt ones come as [`ReadError::Corrupt`]
    /// (never as data). At the end of the durable log it waits for more
    /// (it never ends by itself: take as many as wanted); a device error
    /// ends it after being returned.
    pub fn stream(&self, from: u64) -> impl Stream<Item = Result<Record, ReadError<IoError>>> + '_ {
        futures_util::stream::unfold(Follower::new(self, from), |mut follower| async move {
            let item = follower.next().await?;
            Some((item, follower))
        })
    }

    /// Waits until every record below `target` is durable, writing them
    /// out if no write is under way (see "group commit" in the module doc).
    async fn sync(&self, target: u64) -> Result<(), IoError> {
        loop {
            let waiting_for = {
                let s = self.state.lock();
                if s.encoder.durable_seq() >= target {
                    return Ok(());
                }
                s.in_flight
            };
            let Some(attempt) = waiting_for else {
                // No write under way: write everything pending (this
                // covers `target`), unless another task started one since.
                match self.write_pending().await {
                    Err(WriteError::Busy) => continue,
                    Err(WriteError::Io(e)) => return Err(e),
                    Ok(()) => continue,
                }
            };
            self.wait_until(|s| s.in_flight.is_none_or(|a| a.id != attempt.id))
                .await;
            let s = self.state.lock();
            if s.encoder.durable_seq() >= target {
                return Ok(());
            }
            if attempt.covers >= target
                && let Some((id, e)) = s.failed
                && id >= attempt.id
            {
                return Err(e);
            }
        }
    }

    /// Writes and flushes every pending block, if no write is under way.
    async fn write_pending(&self) -> Result<(), WriteError> {
        let (writer, lba, written) = {
            let mut s = self.state.lock();
            let s = &mut *s;
            if s.in_flight.is_some() {
                return Err(WriteError::Busy);
            }
            let Some(pending) = s.encoder.pending() else {
                return Ok(());
            };
            let mut buffer = s.buffer.take().ok_or(WriteError::Busy)?;
            buffer.clear();
            buffer.extend_from_slice(pending.data);
            s.attempts += 1;
            let attempt = Attempt {
                id: s.attempts,
                covers: pending.written.next_seq(),
            };
            s.in_flight = Some(attempt);
            let writer = Writer {
                log: self,
                id: attempt.id,
                buffer: Some(buffer),
            };
            (writer, pending.lba, pending.written)
        };
        let result = {
            let data = writer.buffer.as_deref().unwrap_or_default();
            match self.device.write(self.start + lba, data).await {
                Ok(()) => self.device.flush().await,
                Err(e) => Err(e),
            }
        };
        writer.finish(result.map(|()| written));
        result.map_err(WriteError::Io)
    }

    /// Waits until `done` holds (checked under the lock; the waker is left
    /// before the check that returns `Pending`, so no wake-up is lost).
    fn wait_until<'a>(
        &'a self,
        done: impl Fn(&State) -> bool + 'a,
    ) -> impl Future<Output = ()> + 'a {
        poll_fn(move |cx| {
            if done(&self.state.lock()) {
                return Poll::Ready(());
            }
            self.progress.register(cx.waker());
            if done(&self.state.lock()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// The durable end: (sequence number, log offset).
    fn durable(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.encoder.durable_seq(), s.durable_end)
    }

    fn region(&self) -> Region<'_, D> {
        Region {
            device: &self.device,
            start: self.start,
            blocks: self.blocks,
        }
    }
}

/// Why [`Log::write_pending`] did not write.
enum WriteError {
    /// Another task's write is under way.
    Busy,
    Io(IoError),
}

/// The task writing for everyone: holds the write buffer; gives it back,
/// with the outcome, when done — or, if its future is dropped halfway, as
/// a write that did not happen.
struct Writer<'a, D: BlockDevice> {
    log: &'a Log<D>,
    id: u64,
    buffer: Option<Vec<u8>>,
}

impl<D: BlockDevice> Writer<'_, D> {
    fn finish(mut self, outcome: Result<Written, IoError>) {
        self.end(Some(outcome));
    }

    fn end(&mut self, outcome: Option<Result<Written, IoError>>) {
        let Some(buffer) = self.buffer.take() else {
            return;
        };
        {
            let mut s = self.log.state.lock();
            s.buffer = Some(buffer);
            s.in_flight = None;
            match outcome {
                Some(Ok(written)) => {
                    s.encoder.mark_written(written);
                    s.durable_end = s.durable_end.max(written.end());
                }
                Some(Err(e)) => {
                    s.failed = Some((self.id, e));
                    s.failed_writes += 1;
                }
                None => {}
            }
        }
        self.log.progress.wake_all();
    }
}

impl<D: BlockDevice> Drop for Writer<'_, D> {
    fn drop(&mut self) {
        self.end(None);
    }
}

/// The log's region of the device, as `percore-disklog` reads it.
struct Region<'a, D> {
    device: &'a D,
    start: u64,
    blocks: u64,
}

impl<D: BlockDevice> AsyncBlockRead for Region<'_, D> {
    type Error = IoError;

    fn block_size(&self) -> u32 {
        self.device.block_size() as u32
    }

    fn block_count(&self) -> u64 {
        self.blocks
    }

    async fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        super::check(self.device.block_size(), self.blocks, lba, buf.len())?;
        self.device.read(self.start + lba, buf).await
    }
}

/// The encoder window for a log: as large as recovery allows, up to
/// [`WINDOW_BYTES`], and never smaller than the largest record needs.
fn window_blocks(sb: &Superblock) -> usize {
    let cap = WINDOW_BYTES / sb.block_size as usize;
    cap.min(sb.max_window_blocks()).max(sb.min_window_blocks())
}
