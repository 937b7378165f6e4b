//! The machine's virtio-blk disk as a [`BlockDevice`], and the disk log on
//! it.
//!
//! The driver (`drivers::virtio::blk`) knows nothing of the storage layer;
//! this module, above both, wires them: [`BlockDevice`] for [`Disk`] with
//! every [`BlkError`] mapped to an [`IoError`] ([`From`], one to one where
//! the kinds match), and [`open_log`] opening a [`Log`] on the disk or a
//! region of it. [`machine_log`] is the one log the shell's `log` command
//! opens and keeps for the rest of the boot.

use core::future::poll_fn;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;

use percore_wake::WaitList;

use crate::drivers::virtio::blk::{self, BlkError, Disk};

use super::log::{Log, OpenError, Options, Report};
use super::{BlockDevice, IoError};

/// A log on the machine's disk.
pub type DiskLog = Log<&'static Disk>;

impl From<BlkError> for IoError {
    fn from(error: BlkError) -> IoError {
        match error {
            BlkError::NoDevice => IoError::NoDevice,
            BlkError::BadLength { len, .. } => IoError::BadLength(len),
            BlkError::OutOfRange { lba, blocks, .. } => IoError::OutOfRange { lba, blocks },
            BlkError::ReadOnly => IoError::ReadOnly,
            BlkError::Io => IoError::Device,
            BlkError::Unsupported => IoError::Unsupported,
            BlkError::BadStatus(status) => IoError::BadStatus(status),
            // The driver logged which rule the device broke, and keeps it
            // (`Disk::failure`).
            BlkError::Device(_) => IoError::Misbehaving,
        }
    }
}

impl BlockDevice for Disk {
    fn block_size(&self) -> usize {
        Disk::block_size(self) as usize
    }

    fn blocks(&self) -> u64 {
        Disk::blocks(self)
    }

    fn read_only(&self) -> bool {
        Disk::read_only(self)
    }

    async fn read(&self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        Disk::read(self, lba, buf).await.map_err(IoError::from)
    }

    async fn write(&self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        Disk::write(self, lba, buf).await.map_err(IoError::from)
    }

    async fn flush(&self) -> Result<(), IoError> {
        Disk::flush(self).await.map_err(IoError::from)
    }
}

/// The machine's disk, started if it was not yet.
pub fn disk() -> Result<&'static Disk, IoError> {
    blk::init().map_err(|_| IoError::NoDevice)
}

/// Opens (recovers, or formats when blank) the log on blocks `region` of
/// the machine's disk, or on the whole disk when `region` is `None` (see
/// [`Log::open`]). On a read-only disk an existing log opens for reading
/// (appends fail with [`IoError::ReadOnly`]) and a blank region is an
/// error.
pub async fn open_log(
    region: Option<Range<u64>>,
    options: Options,
) -> Result<(DiskLog, Report), OpenError> {
    let disk = disk().map_err(OpenError::Io)?;
    let region = region.unwrap_or(0..disk.blocks());
    Log::open(disk, region, options).await
}

/// The machine's log, once [`open_machine_log`] opened it.
static MACHINE_LOG: spin::Once<(DiskLog, Report)> = spin::Once::new();

/// The machine's log and what its open found, if it is open.
pub fn machine_log() -> Option<&'static (DiskLog, Report)> {
    MACHINE_LOG.get()
}

/// Whether an open of the machine's log is under way.
static OPENING: AtomicBool = AtomicBool::new(false);
/// Callers waiting for that open to end.
static OPEN_WAITERS: WaitList = WaitList::new();

/// Opens the machine's log on the whole disk the first time (its `log_id`
/// is `log_id` if it makes a new one); later calls return the same log.
/// Callers from anywhere (the shell's `log`, processes' `dlog_open`) may
/// race: one opens, the others wait for it and take its log (or, if it
/// failed, try again themselves) — two recoveries of one disk at once
/// could each write the truncation of a torn tail, one of them over
/// records the other had already appended.
pub async fn open_machine_log(log_id: u64) -> Result<&'static (DiskLog, Report), OpenError> {
    loop {
        if let Some(open) = MACHINE_LOG.get() {
            return Ok(open);
        }
        if OPENING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _opener = Opener;
            let opened = open_log(None, Options::new(log_id)).await?;
            return Ok(MACHINE_LOG.call_once(|| opened));
        }
        poll_fn(|cx| {
            if !OPENING.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            OPEN_WAITERS.register(cx.waker());
            if OPENING.load(Ordering::Acquire) {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}

/// The open under way: when it ends (done, failed or its future dropped),
/// the waiters go on.
struct Opener;

impl Drop for Opener {
    fn drop(&mut self) {
        OPENING.store(false, Ordering::Release);
        OPEN_WAITERS.wake_all();
    }
}
