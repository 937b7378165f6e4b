//! The disk-log calls: the machine's disk log (`storage::virtio`'s
//! machine log — the one log on the whole virtio-blk disk, the shell's
//! `log`) behind a process's handles.
//!
//! What a process sees is that one log: every process that opens it
//! appends to the same sequence of records and reads all of them (there
//! are no per-process streams or regions yet).
//!
//! The calls never wait, like the socket calls ([`super::net`]): what
//! needs the disk runs in a job — a kernel task on the caller's core —
//! and the call returns [`Error::WouldBlock`] meanwhile; the job's end is
//! an event of the handle (readable and writable) in the process's
//! readiness queue (`poll_register` the handle, then `poll_wait`), and
//! the call made again finds the job's outcome. The jobs:
//!
//! - **open**: the first `dlog_open` of the boot opens the log (recovers
//!   it, or formats a blank disk); one job for every process waiting, each
//!   of their handles gets the event. A log that does not open stays
//!   unopened ([`Error::Corrupt`] or [`Error::Io`]) for the boot.
//! - **flush**: `dlog_flush` until every record appended through the
//!   handle is durable (the log's group commit: one device write and
//!   flush for every appender waiting); an append that finds the log's
//!   window full starts one too, to make room. A failed write is
//!   [`Error::Io`] to the next `dlog_flush` of that handle (or append
//!   that finds the window still full), once.
//! - **read**: a miss of `dlog_read` reads ahead from the sequence number
//!   asked for (up to [`READ_AHEAD`] records or [`READ_AHEAD_BYTES`] of
//!   payload, durable records only) into the handle's cache, and keeps
//!   the log's stream for the next miss, so iterating reads each block
//!   once. A record that does not fit the caller's buffer stays cached.
//!
//! A job holds the handle's shared part ([`Cell`]), never the handle: a
//! handle closed (or its process killed) while a job runs is gone at once;
//! the job ends by itself (a write or read of the disk) and drops what it
//! holds.
//!
//! Order of checks, as the socket calls: the handle first (bad, stale,
//! wrong type), then flags and ranges, then user memory (`umem`), then the
//! log (opening: `WouldBlock`).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;
use core::pin::Pin;

use futures_core::Stream;
use futures_util::StreamExt;
use percore_abi::{DlogRecord, Error, Handle, HandleKind, Sys};
use percore_poll::{Interest, Ready, Registration, Registry, Signal, Source, Token};

use super::{Started, insert};
use crate::process::object::{Extension, KernelObject};
use crate::process::{Process, umem};
use crate::reactor;
use crate::storage::IoError;
use crate::storage::log::{OpenError, ReadError, Record, Report};
use crate::storage::virtio::{self, DiskLog};
use crate::time;

/// Records one read-ahead job takes at most.
pub const READ_AHEAD: usize = 64;
/// Payload bytes one read-ahead job takes at most (it stops after the
/// record that crosses it).
pub const READ_AHEAD_BYTES: usize = 64 * 1024;
/// The jobs' priority: above user threads (a job is short and a thread
/// waits for it).
const JOB_PRIORITY: u8 = super::thread::USER_PRIORITY + 8;

/// What the log's stream gives.
type Item = Result<Record, ReadError<IoError>>;
/// The log's stream, kept between read-ahead jobs.
type LogStream = Pin<Box<dyn Stream<Item = Item> + Send>>;

/// A disk-log handle.
pub struct LogHandle {
    registration: Registration,
    cell: Arc<Cell>,
    /// The sequence number after the last record appended through this
    /// handle: what `dlog_flush` makes durable.
    appended_end: u64,
}

/// The part of a handle its jobs share.
#[derive(Default)]
struct Cell(spin::Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// The handle's registration's signal, while it is registered.
    signal: Option<Signal>,
    flushing: bool,
    /// Why the last flush job failed, until `dlog_flush` says it.
    flush_failed: Option<IoError>,
    reading: bool,
    ahead: ReadAhead,
}

/// Records read ahead: what the log gives from sequence number `from` on,
/// in order, up to `end` (the stream, if kept, continues there).
#[derive(Default)]
struct ReadAhead {
    from: u64,
    end: u64,
    items: VecDeque<Item>,
    stream: Option<LogStream>,
}

impl Cell {
    /// Reports the end of a job as an event of the handle.
    fn notify(&self) {
        let signal = self.0.lock().signal.clone();
        if let Some(signal) = signal {
            let _ = signal.set(Ready::READABLE | Ready::WRITABLE);
        }
    }
}

impl Extension for LogHandle {
    fn kind(&self) -> HandleKind {
        HandleKind::DiskLog
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Source for LogHandle {
    /// Registers, and reports an event at once (the handle may be ready
    /// already: a job may have ended before; a spurious event is allowed).
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> percore_poll::Result<()> {
        self.registration.register(registry, token, interests)?;
        self.cell.0.lock().signal = self.registration.signal().cloned();
        self.cell.notify();
        Ok(())
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> percore_poll::Result<()> {
        self.registration.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> percore_poll::Result<()> {
        self.registration.deregister(registry)?;
        self.cell.0.lock().signal = None;
        Ok(())
    }
}

/// The log handle in a handle table entry, as a readiness source.
pub fn as_source(object: &mut KernelObject) -> Option<&mut dyn Source> {
    match object {
        KernelObject::Ext(ext) => ext
            .as_any_mut()
            .downcast_mut::<LogHandle>()
            .map(|h| h as &mut dyn Source),
        _ => None,
    }
}

/// The log handle `handle` names.
fn log_handle(process: &mut Process, handle: u64) -> Result<&mut LogHandle, Error> {
    match process
        .handles
        .get(Handle::from_raw(handle), HandleKind::DiskLog)?
    {
        KernelObject::Ext(ext) => ext
            .as_any_mut()
            .downcast_mut::<LogHandle>()
            .ok_or(Error::WrongType),
        _ => Err(Error::WrongType),
    }
}

/// A device error as the ABI's.
fn io(e: IoError) -> Error {
    match e {
        IoError::NoDevice => Error::NoDevice,
        IoError::ReadOnly => Error::ReadOnly,
        _ => Error::Io,
    }
}

/// Why the log did not open, as the ABI's error.
fn open_error(e: &OpenError) -> Error {
    match e {
        OpenError::Io(e) | OpenError::Recover(percore_disklog::OpenError::Io(e)) => io(*e),
        OpenError::Region { .. } => Error::NoSpace,
        OpenError::Format(_) => Error::Unsupported,
        OpenError::Recover(_) => Error::Corrupt,
    }
}

/// Where the first open of the boot is.
enum Opening {
    /// Not running (the log is open, or nobody asked yet).
    Idle,
    /// The open job runs; these handles hear when it ends.
    Running(Vec<Weak<Cell>>),
    /// The log did not open.
    Failed(Error),
}

static OPENING: spin::Mutex<Opening> = spin::Mutex::new(Opening::Idle);

/// The machine's log and its open report; `None` while it is being opened.
fn opened() -> Result<Option<&'static (DiskLog, Report)>, Error> {
    if let Some(open) = virtio::machine_log() {
        return Ok(Some(open));
    }
    match &*OPENING.lock() {
        Opening::Failed(e) => Err(*e),
        _ => Ok(None),
    }
}

/// The opened log, or [`Error::WouldBlock`] while it is being opened.
fn ready() -> Result<&'static (DiskLog, Report), Error> {
    opened()?.ok_or(Error::WouldBlock)
}

fn spawn_job(job: impl Future<Output = ()> + Send + 'static) {
    drop(reactor::spawn(reactor::priority(JOB_PRIORITY), job));
}

/// Starts disk-log call `sys` (one of the `Dlog*` numbers) with `args`.
pub fn start(process: &mut Process, sys: Sys, args: [u64; 6]) -> Started {
    let result = match sys {
        Sys::DlogOpen => open(process, args[0]),
        Sys::DlogAppend => append(process, args[0], args[1], args[2]),
        Sys::DlogFlush => flush(process, args[0]),
        Sys::DlogRead => read(process, args),
        Sys::DlogInfo => info(process, args[0], args[1]),
        _ => Err(Error::NoSys),
    };
    Started::Done(result)
}

/// `dlog_open(flags) -> handle`.
fn open(process: &mut Process, flags: u64) -> Result<u64, Error> {
    if flags != 0 {
        return Err(Error::InvalidArgument);
    }
    virtio::disk().map_err(|_| Error::NoDevice)?;
    // A log that did not open is that error from then on.
    opened()?;
    let cell = Arc::new(Cell::default());
    let handle = LogHandle {
        registration: Registration::new(),
        cell: cell.clone(),
        appended_end: 0,
    };
    let handle = insert(process, KernelObject::Ext(Box::new(handle)))?;
    if virtio::machine_log().is_none() {
        let mut opening = OPENING.lock();
        match &mut *opening {
            Opening::Failed(_) => {}
            Opening::Running(waiting) => waiting.push(Arc::downgrade(&cell)),
            Opening::Idle => {
                *opening = Opening::Running(vec![Arc::downgrade(&cell)]);
                drop(opening);
                spawn_job(open_job());
            }
        }
    }
    Ok(handle)
}

/// Opens the machine's log, then tells every handle waiting.
async fn open_job() {
    // A new log's nonce: the time since boot, as the shell's `log` does.
    let result = virtio::open_machine_log(time::uptime_ns() | 1).await;
    let next = match &result {
        Ok(_) => Opening::Idle,
        Err(e) => {
            log::warn!("dlog: the machine's log does not open: {e}");
            Opening::Failed(open_error(e))
        }
    };
    let waiting = match core::mem::replace(&mut *OPENING.lock(), next) {
        Opening::Running(waiting) => waiting,
        _ => Vec::new(),
    };
    for cell in waiting.iter().filter_map(Weak::upgrade) {
        cell.notify();
    }
}

/// `dlog_append(log, ptr, len) -> seq`.
fn append(process: &mut Process, handle: u64, ptr: u64, len: u64) -> Result<u64, Error> {
    log_handle(process, handle)?;
    if len > Sys::MAX_RECORD {
        return Err(Error::InvalidArgument);
    }
    umem::check(&mut process.space, ptr, len, 1, false)?;
    let (log, _) = ready()?;
    let record = umem::read_vec(&mut process.space, ptr, len)?;
    let handle = log_handle(process, handle)?;
    match log.try_append(&record) {
        Ok(Some(seq)) => {
            handle.appended_end = handle.appended_end.max(seq + 1);
            Ok(seq)
        }
        Ok(None) => {
            // The write that was to make room failed: say so (else a
            // waiting appender would wait for room for ever).
            if let Some(e) = handle.cell.0.lock().flush_failed.take() {
                return Err(io(e));
            }
            start_flush(log, &handle.cell);
            Err(Error::WouldBlock)
        }
        Err(crate::storage::log::AppendError::TooLarge { .. }) => Err(Error::InvalidArgument),
        Err(crate::storage::log::AppendError::LogFull) => Err(Error::NoSpace),
        Err(crate::storage::log::AppendError::Io(e)) => Err(io(e)),
    }
}

/// `dlog_flush(log) -> durable`.
fn flush(process: &mut Process, handle: u64) -> Result<u64, Error> {
    log_handle(process, handle)?;
    let (log, _) = ready()?;
    let handle = log_handle(process, handle)?;
    let durable = log.stats().durable_seq;
    let failed = handle.cell.0.lock().flush_failed.take();
    if durable >= handle.appended_end {
        return Ok(durable);
    }
    if let Some(e) = failed {
        return Err(io(e));
    }
    start_flush(log, &handle.cell);
    Err(Error::WouldBlock)
}

/// Starts a flush job for `cell`'s handle, unless one runs.
fn start_flush(log: &'static DiskLog, cell: &Arc<Cell>) {
    {
        let mut inner = cell.0.lock();
        if inner.flushing {
            return;
        }
        inner.flushing = true;
    }
    let cell = cell.clone();
    spawn_job(async move {
        let result = log.flush().await;
        {
            let mut inner = cell.0.lock();
            inner.flushing = false;
            if let Err(e) = result {
                inner.flush_failed = Some(e);
            }
        }
        cell.notify();
    });
}

/// The last sequence number an item covers (a device error: all).
fn last_seq(item: &Item) -> u64 {
    match item {
        Ok(record) => record.seq,
        Err(ReadError::Corrupt(lost)) => lost.last_seq,
        Err(_) => u64::MAX,
    }
}

/// `dlog_read(log, from, ptr, len) -> payload_len`.
fn read(process: &mut Process, args: [u64; 6]) -> Result<u64, Error> {
    let (handle, from, ptr, len) = (args[0], args[1], args[2], args[3]);
    log_handle(process, handle)?;
    umem::check(&mut process.space, ptr, len, 8, true)?;
    if len < DlogRecord::SIZE {
        return Err(Error::InvalidArgument);
    }
    let (log, _) = ready()?;
    let cell = log_handle(process, handle)?.cell.clone();
    let item = {
        let mut inner = cell.0.lock();
        if inner.reading {
            return Err(Error::WouldBlock);
        }
        let ahead = &mut inner.ahead;
        if ahead.from <= from && from < ahead.end {
            while ahead.items.front().is_some_and(|i| last_seq(i) < from) {
                ahead.items.pop_front();
            }
            ahead.from = from;
            ahead.items.pop_front()
        } else {
            None
        }
    };
    let Some(item) = item else {
        if from >= log.stats().durable_seq {
            return Err(Error::NotFound);
        }
        start_read(log, &cell, from);
        return Err(Error::WouldBlock);
    };
    let header = |seq: u64, len: u64| {
        let mut bytes = Vec::with_capacity(DlogRecord::SIZE as usize);
        bytes.extend_from_slice(&seq.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes
    };
    let (result, keep) = match &item {
        Ok(record) => {
            let payload = record.payload.len() as u64;
            let mut bytes = header(record.seq, payload);
            if DlogRecord::SIZE + payload > len {
                let written = umem::write(&mut process.space, ptr, &bytes, 8);
                (written.and(Err(Error::TooSmall)), true)
            } else {
                bytes.extend_from_slice(&record.payload);
                let written = umem::write(&mut process.space, ptr, &bytes, 8);
                let kept = written.is_err();
                (written.map(|()| payload), kept)
            }
        }
        Err(ReadError::Corrupt(lost)) => {
            let written = umem::write(&mut process.space, ptr, &header(lost.last_seq, 0), 8);
            let kept = written.is_err();
            (written.and(Err(Error::Corrupt)), kept)
        }
        Err(ReadError::Io(e)) => (Err(io(*e)), false),
    };
    if keep {
        // Not delivered (it did not fit, or the buffer went away): the
        // next read finds it.
        cell.0.lock().ahead.items.push_front(item);
    }
    result
}

/// Starts a read-ahead job from sequence number `from`, unless one runs.
fn start_read(log: &'static DiskLog, cell: &Arc<Cell>, from: u64) {
    let stream = {
        let mut inner = cell.0.lock();
        if inner.reading {
            return;
        }
        inner.reading = true;
        let ahead = &mut inner.ahead;
        let stream = ahead.stream.take().filter(|_| ahead.end == from);
        ahead.items.clear();
        (ahead.from, ahead.end) = (from, from);
        stream
    };
    let cell = cell.clone();
    spawn_job(async move {
        let mut stream: LogStream = stream.unwrap_or_else(|| Box::pin(log.stream(from)));
        let (mut items, mut at, mut bytes, mut alive) = (VecDeque::new(), from, 0, true);
        // Only durable records: the stream waits at the durable end.
        while items.len() < READ_AHEAD && bytes < READ_AHEAD_BYTES && at < log.stats().durable_seq {
            let item = match stream.next().await {
                Some(item) => item,
                None => Err(ReadError::Io(IoError::Misbehaving)),
            };
            match &item {
                Ok(record) => bytes += record.payload.len(),
                Err(ReadError::Corrupt(_)) => {}
                Err(ReadError::Io(_)) => alive = false,
            }
            at = last_seq(&item).saturating_add(1);
            items.push_back(item);
            if !alive {
                break;
            }
        }
        {
            let mut inner = cell.0.lock();
            inner.reading = false;
            inner.ahead = ReadAhead {
                from,
                end: at,
                items,
                stream: alive.then_some(stream),
            };
        }
        cell.notify();
    });
}

/// `dlog_info(log, ptr)`: a [`percore_abi::DlogInfo`].
fn info(process: &mut Process, handle: u64, ptr: u64) -> Result<u64, Error> {
    log_handle(process, handle)?;
    let size = core::mem::size_of::<percore_abi::DlogInfo>() as u64;
    umem::check(&mut process.space, ptr, size, 8, true)?;
    let (log, report) = ready()?;
    let stats = log.stats();
    let corrupt: u64 = report.corrupt.iter().map(|c| c.records()).sum();
    let mut bytes = Vec::with_capacity(size as usize);
    for word in [stats.next_seq, stats.durable_seq, report.records, corrupt] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    umem::write(&mut process.space, ptr, &bytes, 8).map(|()| 0)
}
