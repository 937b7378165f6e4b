//! The machine's disk log over the disk-log calls: [`DiskLog`].
//!
//! The kernel's calls never wait ([`Error::WouldBlock`] while the disk
//! works; the handle then has a readiness event). `try_*` are those calls
//! as they are — for a program that registers the log with the runtime's
//! [`Registry`](crate::poll::Registry) like a socket (open it with
//! [`DiskLog::try_open`]: [`DiskLog::open`] registers the handle itself,
//! which the `Registry` would not count). The others wait:
//! they register the handle with the kernel's readiness queue at open
//! (token [`DiskLog::TOKEN`]) and make `poll_wait` calls until the call
//! succeeds — for programs whose only source of kernel readiness is the
//! log (the events of other registered handles would be taken by those
//! waits). Dropping a `DiskLog` closes its handle.
//!
//! ```ignore
//! let log = DiskLog::open()?;
//! let seq = log.append(b"hello")?;
//! log.flush()?;
//! let mut buf = [0u64; 16];
//! let (got, payload) = log.read(seq, &mut buf)?;
//! ```

use percore_abi::{DlogInfo, DlogRecord, Error, Handle, PollEvent, Sys, decode};

use crate::sys::{self, call, syscall3, syscall4};

/// The machine's disk log (one handle).
#[derive(Debug)]
pub struct DiskLog(Handle);

/// Why a read gave no record, with the header the kernel wrote: after
/// [`Error::TooSmall`] its `len` is the payload's length (the record
/// stays for the next read), after [`Error::Corrupt`] its `seq` is the
/// last record lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadFailed {
    pub error: Error,
    pub header: DlogRecord,
}

/// How long one wait for the log's event lasts before the call is tried
/// again anyway (ns).
const WAIT_NS: u64 = 100_000_000;

impl DiskLog {
    /// The token the waiting calls register the handle with.
    pub const TOKEN: u64 = u64::MAX - 2;

    /// Opens the machine's log without waiting for it to be open (calls
    /// on it return [`Error::WouldBlock`] until then; the handle has an
    /// event when it is). [`Error::NoDevice`] without a disk.
    pub fn try_open() -> Result<DiskLog, Error> {
        call(Sys::DlogOpen, 0, 0, 0).map(|h| DiskLog(Handle::from_raw(h)))
    }

    /// Opens the machine's log and waits until it is open (recovered, or
    /// formatted on a blank disk): what it holds.
    pub fn open() -> Result<(DiskLog, DlogInfo), Error> {
        let log = DiskLog::try_open()?;
        call(
            Sys::PollRegister,
            log.0.raw(),
            DiskLog::TOKEN,
            percore_abi::INTEREST_READABLE | percore_abi::INTEREST_WRITABLE,
        )?;
        let info = log.waiting(|l| l.info())?;
        Ok((log, info))
    }

    pub fn handle(&self) -> Handle {
        self.0
    }

    /// Makes `op` again after each event of the handle while it would block.
    fn waiting<T>(&self, mut op: impl FnMut(&Self) -> Result<T, Error>) -> Result<T, Error> {
        loop {
            match op(self) {
                Err(Error::WouldBlock) => wait_event()?,
                other => return other,
            }
        }
    }

    /// What the log holds now ([`Error::WouldBlock`] while it is opened).
    pub fn info(&self) -> Result<DlogInfo, Error> {
        let mut info = DlogInfo::default();
        // SAFETY: the kernel writes one DlogInfo into `info`.
        decode(unsafe { syscall3(Sys::DlogInfo as u64, self.0.raw(), &raw mut info as u64, 0) })?;
        Ok(info)
    }

    /// Appends `record`: its sequence number ([`Error::WouldBlock`]: the
    /// log's window is full, a write making room has started).
    pub fn try_append(&self, record: &[u8]) -> Result<u64, Error> {
        call(
            Sys::DlogAppend,
            self.0.raw(),
            record.as_ptr() as u64,
            record.len() as u64,
        )
    }

    /// Appends `record`, waiting for room if the window is full.
    pub fn append(&self, record: &[u8]) -> Result<u64, Error> {
        self.waiting(|l| l.try_append(record))
    }

    /// Whether every record appended through this handle is durable: the
    /// sequence number below which all are ([`Error::WouldBlock`]: the
    /// write has started).
    pub fn try_flush(&self) -> Result<u64, Error> {
        call(Sys::DlogFlush, self.0.raw(), 0, 0)
    }

    /// Makes every record appended through this handle durable.
    pub fn flush(&self) -> Result<u64, Error> {
        self.waiting(|l| l.try_flush())
    }

    /// The first durable record at or after `from`: its header and its
    /// payload (in `buf`, after the header).
    pub fn try_read<'a>(
        &self,
        from: u64,
        buf: &'a mut [u64],
    ) -> Result<(DlogRecord, &'a [u8]), ReadFailed> {
        let header = self.read_raw(from, buf)?;
        Ok((header, payload(buf, header.len)))
    }

    /// As [`try_read`](Self::try_read), waiting while the record is read
    /// from the disk.
    pub fn read<'a>(
        &self,
        from: u64,
        buf: &'a mut [u64],
    ) -> Result<(DlogRecord, &'a [u8]), ReadFailed> {
        loop {
            match self.read_raw(from, buf) {
                Err(ReadFailed {
                    error: Error::WouldBlock,
                    ..
                }) => wait_event().map_err(|error| ReadFailed {
                    error,
                    header: DlogRecord::default(),
                })?,
                Err(failed) => return Err(failed),
                Ok(header) => return Ok((header, payload(buf, header.len))),
            }
        }
    }

    /// `dlog_read` into `buf`: the header of what it read.
    fn read_raw(&self, from: u64, buf: &mut [u64]) -> Result<DlogRecord, ReadFailed> {
        let bytes = core::mem::size_of_val(buf) as u64;
        // SAFETY: the kernel writes at most `bytes` bytes into `buf`.
        let result = decode(unsafe {
            syscall4(
                Sys::DlogRead as u64,
                self.0.raw(),
                from,
                buf.as_mut_ptr() as u64,
                bytes,
            )
        });
        let header = DlogRecord {
            seq: buf.first().copied().unwrap_or(0),
            len: buf.get(1).copied().unwrap_or(0),
        };
        match result {
            Ok(len) => Ok(DlogRecord { len, ..header }),
            Err(error) => Err(ReadFailed { error, header }),
        }
    }
}

/// The `len` payload bytes after the header in `buf`.
fn payload(buf: &[u64], len: u64) -> &[u8] {
    // SAFETY: `buf` is initialised memory, viewed as its bytes.
    let all = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), size_of_val(buf)) };
    let start = DlogRecord::SIZE as usize;
    all.get(start..start.saturating_add(len as usize))
        .unwrap_or_default()
}

/// Waits for an event of the process's readiness queue (or [`WAIT_NS`]).
fn wait_event() -> Result<(), Error> {
    let mut events = [PollEvent::default(); 8];
    // SAFETY: the kernel writes at most 8 events into `events`.
    decode(unsafe {
        syscall3(
            Sys::PollWait as u64,
            events.as_mut_ptr() as u64,
            events.len() as u64,
            WAIT_NS,
        )
    })
    .map(drop)
}

impl Drop for DiskLog {
    fn drop(&mut self) {
        let _ = sys::close(self.0);
    }
}
