//! Storage: what the kernel keeps on block devices, above the drivers.
//!
//! - [`BlockDevice`]: the interface every disk offers the layers above —
//!   async `read`, `write` and `flush` of whole blocks, with failures as
//!   [`IoError`] values. Implemented by the RAM disk [`MemDisk`] here (host
//!   tests and QEMU alike) and, in [`virtio`] (the layer above both), by
//!   the virtio-blk driver's `Disk`.
//! - [`log`]: the append-only disk log ("disk streams") on a region of a
//!   block device, in `percore-disklog`'s on-disk format; [`virtio::open_log`]
//!   opens one on the machine's disk.
//!
//! Durability contract of a [`BlockDevice`]: a completed `write` may sit in
//! a volatile cache; only a completed `flush` makes every write completed
//! before it durable. A power cut loses any subset of the unflushed blocks
//! (block by block, in any order), which is what [`MemDisk::crash`] models.

pub mod log;
mod mem_disk;
#[cfg(test)]
mod tests;
pub mod virtio;

use alloc::sync::Arc;
use core::fmt;
use core::future::Future;

pub use mem_disk::{Fault, MemDisk};

/// Why a block request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// There is no such device (none found, or it failed to start).
    NoDevice,
    /// The device reported an I/O error (virtio-blk `IOERR`).
    Device,
    /// The device does not support the request (virtio-blk `UNSUPP`, e.g. a
    /// flush on a device without a write cache command).
    Unsupported,
    /// The blocks asked for are not all on the device (or in the region).
    OutOfRange {
        /// First block of the request.
        lba: u64,
        /// Blocks asked for.
        blocks: u64,
    },
    /// A write or flush to a read-only device.
    ReadOnly,
    /// A buffer that is not a whole, non-zero number of blocks (or not
    /// aligned as the device needs).
    BadLength(usize),
    /// The device wrote a request status that means nothing (virtio-blk:
    /// not OK, IOERR or UNSUPP).
    BadStatus(u8),
    /// The device answered something impossible (an unknown status, a
    /// completion for no request): the driver reset it; the request's
    /// outcome is unknown.
    Misbehaving,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::NoDevice => f.write_str("no such device"),
            IoError::Device => f.write_str("device I/O error"),
            IoError::Unsupported => f.write_str("request not supported by the device"),
            IoError::OutOfRange { lba, blocks } => {
                write!(f, "blocks {lba}..+{blocks} are out of range")
            }
            IoError::ReadOnly => f.write_str("the device is read-only"),
            IoError::BadLength(len) => write!(f, "buffer of {len} bytes is not whole blocks"),
            IoError::BadStatus(status) => write!(f, "the device answered status {status}"),
            IoError::Misbehaving => f.write_str("the device misbehaved and was reset"),
        }
    }
}

/// A disk, read and written in whole blocks by tasks on any core.
///
/// `lba` counts blocks of [`block_size`](Self::block_size) bytes; buffers
/// are whole, non-zero numbers of blocks ([`check`] says whether a request
/// fits). Several requests may be in flight at once, from any number of
/// tasks; their order on the device is not defined until a `flush`
/// completes (see the module doc). A request whose future is dropped
/// before it completes may still happen (or not), but the device never
/// touches its buffer after the drop (a driver that lets the hardware read
/// or write it in place must wait, or bounce it): callers reuse buffers.
pub trait BlockDevice: Sync {
    /// Bytes per block (a power of two, at least 512).
    fn block_size(&self) -> usize;
    /// Blocks on the device.
    fn blocks(&self) -> u64;
    /// Whether writes and flushes are refused ([`IoError::ReadOnly`]).
    fn read_only(&self) -> bool;
    /// Reads `buf.len() / block_size` blocks from `lba` on.
    fn read(&self, lba: u64, buf: &mut [u8]) -> impl Future<Output = Result<(), IoError>>;
    /// Writes `buf` to the blocks from `lba` on (durable after a `flush`).
    fn write(&self, lba: u64, buf: &[u8]) -> impl Future<Output = Result<(), IoError>>;
    /// Makes every write completed before it durable.
    fn flush(&self) -> impl Future<Output = Result<(), IoError>>;
}

/// Whether a request of `len` bytes at `lba` fits a device of `blocks`
/// blocks of `block_size` bytes: the check every [`BlockDevice`] makes
/// before touching anything. `Ok` holds the number of blocks.
pub fn check(block_size: usize, blocks: u64, lba: u64, len: usize) -> Result<u64, IoError> {
    if len == 0 || !len.is_multiple_of(block_size) {
        return Err(IoError::BadLength(len));
    }
    let count = (len / block_size) as u64;
    match lba.checked_add(count) {
        Some(end) if end <= blocks => Ok(count),
        _ => Err(IoError::OutOfRange { lba, blocks: count }),
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &D {
    fn block_size(&self) -> usize {
        (**self).block_size()
    }
    fn blocks(&self) -> u64 {
        (**self).blocks()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn read(&self, lba: u64, buf: &mut [u8]) -> impl Future<Output = Result<(), IoError>> {
        (**self).read(lba, buf)
    }
    fn write(&self, lba: u64, buf: &[u8]) -> impl Future<Output = Result<(), IoError>> {
        (**self).write(lba, buf)
    }
    fn flush(&self) -> impl Future<Output = Result<(), IoError>> {
        (**self).flush()
    }
}

impl<D: BlockDevice + Send + ?Sized> BlockDevice for Arc<D> {
    fn block_size(&self) -> usize {
        (**self).block_size()
    }
    fn blocks(&self) -> u64 {
        (**self).blocks()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn read(&self, lba: u64, buf: &mut [u8]) -> impl Future<Output = Result<(), IoError>> {
        (**self).read(lba, buf)
    }
    fn write(&self, lba: u64, buf: &[u8]) -> impl Future<Output = Result<(), IoError>> {
        (**self).write(lba, buf)
    }
    fn flush(&self) -> impl Future<Output = Result<(), IoError>> {
        (**self).flush()
    }
}
