//! Reading the region a log lives in: the [`BlockRead`] trait (blocking
//! reads: a disk image file on the host, an in-memory [`SliceDisk`]) and
//! [`AsyncBlockRead`] (reads that complete later: a virtio-blk queue in the
//! kernel), and the chunked byte cursor the scanner reads records through.
//!
//! The scanner is written once, over [`AsyncBlockRead`]; every
//! [`BlockRead`] is one whose reads are ready at once, so the blocking
//! entry points ([`recover`](crate::recover), [`Reader`](crate::Reader))
//! run it to its end in a single poll ([`now`]).

use alloc::vec;
use alloc::vec::Vec;
use core::future::{Future, ready};
use core::pin::pin;
use core::task::{Context, Poll, Waker};

/// A device (or a region of one) read in whole blocks.
///
/// ```
/// use percore_disklog::{BlockRead, SliceDisk};
/// let image = [7u8; 1024];
/// let mut disk = SliceDisk::new(&image, 512);
/// let mut block = [0u8; 512];
/// disk.read_blocks(1, &mut block).unwrap();
/// assert_eq!(block[0], 7);
/// assert_eq!(disk.block_count(), 2);
/// ```
pub trait BlockRead {
    /// What a failed read reports.
    type Error;
    /// Bytes per block.
    fn block_size(&self) -> u32;
    /// Blocks on the device (or in the region).
    fn block_count(&self) -> u64;
    /// Reads `buf.len() / block_size` blocks starting at block `lba` into
    /// `buf`, whose length is a multiple of the block size.
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
}

impl<R: BlockRead + ?Sized> BlockRead for &mut R {
    type Error = R::Error;
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn block_count(&self) -> u64 {
        (**self).block_count()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read_blocks(lba, buf)
    }
}

/// A device (or a region of one) read in whole blocks by requests that
/// complete later: what the kernel's log recovers and reads through.
///
/// ```
/// use percore_disklog::{AsyncBlockRead, SliceDisk, Superblock, recover_async};
/// /// A disk whose reads are futures (here ready at once).
/// struct Async<'a>(SliceDisk<'a>);
/// impl AsyncBlockRead for Async<'_> {
///     type Error = percore_disklog::OutOfRange;
///     fn block_size(&self) -> u32 { 512 }
///     fn block_count(&self) -> u64 { 4 }
///     async fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
///         percore_disklog::BlockRead::read_blocks(&mut self.0, lba, buf)
///     }
/// }
/// let mut image = vec![0u8; 2048];
/// Superblock::new(512, 4, 1).unwrap().encode(&mut image);
/// let recovery = futures_executor::block_on(recover_async(Async(SliceDisk::new(&image, 512))));
/// assert_eq!(recovery.unwrap().records, 0);
/// ```
pub trait AsyncBlockRead {
    /// What a failed read reports.
    type Error;
    /// Bytes per block.
    fn block_size(&self) -> u32;
    /// Blocks on the device (or in the region).
    fn block_count(&self) -> u64;
    /// Reads `buf.len() / block_size` blocks starting at block `lba` into
    /// `buf`, whose length is a multiple of the block size.
    fn read_blocks(
        &mut self,
        lba: u64,
        buf: &mut [u8],
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// A [`BlockRead`] is an [`AsyncBlockRead`] whose reads are ready at once.
impl<R: BlockRead> AsyncBlockRead for R {
    type Error = R::Error;
    fn block_size(&self) -> u32 {
        BlockRead::block_size(self)
    }
    fn block_count(&self) -> u64 {
        BlockRead::block_count(self)
    }
    fn read_blocks(
        &mut self,
        lba: u64,
        buf: &mut [u8],
    ) -> impl Future<Output = Result<(), R::Error>> {
        ready(BlockRead::read_blocks(self, lba, buf))
    }
}

/// Runs a future of the scanner over a [`BlockRead`] to its end: its
/// reads never wait, so one poll finishes it.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("a scan over blocking reads never waits"),
    }
}

/// A disk image in memory (a trailing partial block is ignored).
///
/// ```
/// use percore_disklog::{BlockRead, OutOfRange, SliceDisk};
/// let mut disk = SliceDisk::new(&[0u8; 512], 512);
/// assert_eq!(disk.read_blocks(1, &mut [0u8; 512]), Err(OutOfRange { lba: 1 }));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SliceDisk<'a> {
    bytes: &'a [u8],
    block_size: u32,
}

impl<'a> SliceDisk<'a> {
    /// `bytes` as blocks of `block_size` bytes.
    ///
    /// ```
    /// use percore_disklog::{BlockRead, SliceDisk};
    /// assert_eq!(SliceDisk::new(&[0u8; 4096], 512).block_count(), 8);
    /// ```
    pub const fn new(bytes: &'a [u8], block_size: u32) -> Self {
        SliceDisk { bytes, block_size }
    }
}

/// A read beyond the end of a [`SliceDisk`].
///
/// ```
/// use percore_disklog::OutOfRange;
/// assert_eq!(OutOfRange { lba: 3 }.lba, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The first block asked for.
    pub lba: u64,
}

impl BlockRead for SliceDisk<'_> {
    type Error = OutOfRange;
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        self.bytes.len() as u64 / u64::from(self.block_size)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let bytes = usize::try_from(lba)
            .ok()
            .and_then(|lba| lba.checked_mul(self.block_size as usize))
            .and_then(|start| self.bytes.get(start..start.checked_add(buf.len())?))
            .ok_or(OutOfRange { lba })?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// Bytes the cursor reads per device call (rounded to whole blocks).
const CHUNK_BYTES: usize = 64 * 1024;

/// The log's bytes (offset 0 = the start of block 1) read through a cache
/// of one chunk of blocks.
pub(crate) struct Cursor<R> {
    dev: R,
    block_size: usize,
    /// Bytes of records the region holds.
    capacity: u64,
    chunk: Vec<u8>,
    /// Log offset of `chunk[0]`, and valid bytes in it (0: nothing cached).
    start: u64,
    valid: usize,
}

impl<R: AsyncBlockRead> Cursor<R> {
    pub(crate) fn new(dev: R, capacity: u64) -> Self {
        let block_size = dev.block_size() as usize;
        let chunk = vec![0; CHUNK_BYTES.next_multiple_of(block_size)];
        Cursor {
            dev,
            block_size,
            capacity,
            chunk,
            start: 0,
            valid: 0,
        }
    }

    /// The cached bytes `offset..offset + len`, if they all are cached.
    fn cached(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let from = offset.checked_sub(self.start)?;
        let to = from + len;
        (to <= self.valid as u64).then(|| &self.chunk[from as usize..to as usize])
    }

    /// Loads the chunk that starts at `offset`'s block. `offset < capacity`.
    async fn load(&mut self, offset: u64) -> Result<(), R::Error> {
        let bs = self.block_size as u64;
        self.start = offset / bs * bs;
        let left = (self.capacity - self.start) as usize;
        // Nothing is cached until the read succeeds (a future dropped
        // halfway leaves nothing half-read behind either).
        self.valid = 0;
        let want = left.min(self.chunk.len());
        self.dev
            .read_blocks(1 + self.start / bs, &mut self.chunk[..want])
            .await?;
        self.valid = want;
        Ok(())
    }

    /// Calls `f` on the bytes `offset..offset + len` in order, in pieces.
    /// The range lies inside the region.
    pub(crate) async fn for_each(
        &mut self,
        mut offset: u64,
        len: u64,
        mut f: impl FnMut(&[u8]),
    ) -> Result<(), R::Error> {
        // The common case, all cached, without a trip through the loop.
        if let Some(bytes) = self.cached(offset, len) {
            f(bytes);
            return Ok(());
        }
        let end = offset + len;
        while offset < end {
            if self.cached(offset, 1).is_none() {
                self.load(offset).await?;
            }
            let from = (offset - self.start) as usize;
            let n = (self.valid - from).min((end - offset) as usize);
            f(&self.chunk[from..from + n]);
            offset += n as u64;
        }
        Ok(())
    }

    /// Copies the bytes at `offset` into `out`. The range lies inside the
    /// region.
    pub(crate) async fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), R::Error> {
        if let Some(bytes) = self.cached(offset, out.len() as u64) {
            out.copy_from_slice(bytes);
            return Ok(());
        }
        let mut at = 0;
        self.for_each(offset, out.len() as u64, |piece| {
            out[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        })
        .await
    }

    /// Forgets the cached chunk: the device may have changed since.
    pub(crate) fn forget(&mut self) {
        self.valid = 0;
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }
}
