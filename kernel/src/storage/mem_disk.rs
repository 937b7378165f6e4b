//! [`MemDisk`]: a block device in RAM that behaves like a disk with a
//! volatile write cache, for tests on the host and in QEMU.
//!
//! Reads see every completed write. Durability follows the
//! [`BlockDevice`] contract: a write is durable once a later `flush`
//! completes. Until then it sits in a journal of unflushed writes, and
//! [`MemDisk::crash`] plays a power cut: the disk keeps what was flushed
//! plus whichever unflushed blocks the test says landed (any subset, in any
//! order, block by block — a write of several blocks may land in part).
//!
//! Failures on demand: errors on chosen blocks ([`MemDisk::inject`]), on
//! the next flushes ([`MemDisk::fail_flushes`]), a power cut after a number
//! of requests ([`MemDisk::cut_power_after`]: every later request fails and
//! lands nothing), and a read-only disk. [`MemDisk::set_latency`] makes
//! every request wait a few polls before completing, so that tasks
//! interleave around I/O as they do on a real device.
//!
//! Memory: the disk twice (what reads see, what is durable) plus the
//! journal of unflushed writes (emptied by each flush; it keeps its
//! capacity, so a steady write/flush pattern allocates nothing).

use alloc::vec::Vec;
use core::future::Future;
use core::ops::Range;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};

use super::{BlockDevice, IoError, check};

/// Which requests fail on the blocks an injected fault covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reads fail ([`IoError::Device`]).
    Read,
    /// Writes fail; the blocks of the write before the faulty one land
    /// (unflushed), the rest do not.
    Write,
    /// Both.
    ReadWrite,
}

/// A RAM disk with a volatile write cache (see the module doc).
pub struct MemDisk {
    block_size: usize,
    blocks: u64,
    read_only: bool,
    state: spin::Mutex<State>,
    reads: AtomicU64,
    writes: AtomicU64,
    flushes: AtomicU64,
}

struct State {
    /// What reads see.
    current: Vec<u8>,
    /// What survives a power cut.
    durable: Vec<u8>,
    /// Unflushed writes in the order they completed: first block, and
    /// their bytes' range in `journal_bytes`.
    journal: Vec<(u64, Range<usize>)>,
    journal_bytes: Vec<u8>,
    faults: Vec<(Range<u64>, Fault)>,
    failing_flushes: u32,
    /// Requests left before the power cut (`None`: no cut planned).
    power_left: Option<u64>,
    /// Polls each request waits before completing.
    latency: u32,
}

impl MemDisk {
    /// A zeroed disk of `blocks` blocks of `block_size` bytes (a power of
    /// two, at least 512), or `None` if the heap cannot hold it (twice).
    ///
    /// # Panics
    /// On a block size that is not a power of two of at least 512: the
    /// caller's constant.
    pub fn new(block_size: usize, blocks: u64) -> Option<MemDisk> {
        assert!(block_size.is_power_of_two() && block_size >= 512);
        let bytes = usize::try_from(blocks).ok()?.checked_mul(block_size)?;
        let zeroed = || {
            let mut v = Vec::new();
            v.try_reserve_exact(bytes).ok()?;
            v.resize(bytes, 0);
            Some(v)
        };
        Some(MemDisk::with(zeroed()?, zeroed()?, block_size))
    }

    /// A disk holding `image` (whole blocks; a trailing partial block is
    /// dropped), all of it durable.
    ///
    /// # Panics
    /// On a block size that is not a power of two of at least 512.
    pub fn from_image(mut image: Vec<u8>, block_size: usize) -> MemDisk {
        assert!(block_size.is_power_of_two() && block_size >= 512);
        image.truncate(image.len() / block_size * block_size);
        MemDisk::with(image.clone(), image, block_size)
    }

    /// A disk showing `current`, holding `durable` (the same length, whole
    /// blocks).
    fn with(current: Vec<u8>, durable: Vec<u8>, block_size: usize) -> MemDisk {
        MemDisk {
            block_size,
            blocks: (current.len() / block_size) as u64,
            read_only: false,
            state: spin::Mutex::new(State {
                durable,
                current,
                journal: Vec::new(),
                journal_bytes: Vec::new(),
                faults: Vec::new(),
                failing_flushes: 0,
                power_left: None,
                latency: 0,
            }),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    /// The same disk, refusing writes and flushes with
    /// [`IoError::ReadOnly`].
    pub fn into_read_only(self) -> MemDisk {
        MemDisk {
            read_only: true,
            ..self
        }
    }

    /// Requests fail on blocks `blocks` as `fault` says (until
    /// [`clear_faults`](Self::clear_faults)).
    pub fn inject(&self, blocks: Range<u64>, fault: Fault) {
        self.state.lock().faults.push((blocks, fault));
    }

    /// Removes every injected fault (also the failing flushes).
    pub fn clear_faults(&self) {
        let mut s = self.state.lock();
        s.faults.clear();
        s.failing_flushes = 0;
    }

    /// The next `n` flushes fail with [`IoError::Device`] (and make nothing
    /// durable).
    pub fn fail_flushes(&self, n: u32) {
        self.state.lock().failing_flushes = n;
    }

    /// After `requests` more requests, the power goes: every later request
    /// fails with [`IoError::Device`] and lands nothing, until
    /// [`crash`](Self::crash).
    pub fn cut_power_after(&self, requests: u64) {
        self.state.lock().power_left = Some(requests);
    }

    /// Every request waits `polls` polls (waking itself each time) before
    /// it completes and takes effect.
    pub fn set_latency(&self, polls: u32) {
        self.state.lock().latency = polls;
    }

    /// A power cut, then power back: the disk keeps what was flushed, plus
    /// each block of each unflushed write (numbered from 0 in completion
    /// order since the last flush) for which `landed(write, lba)` is true,
    /// applied in order. Faults stay; a planned power cut is cancelled.
    /// Returns how many unflushed writes there were.
    pub fn crash(&self, mut landed: impl FnMut(usize, u64) -> bool) -> usize {
        let bs = self.block_size;
        let mut s = self.state.lock();
        let s = &mut *s;
        let writes = s.journal.len();
        for (i, (lba, range)) in s.journal.iter().enumerate() {
            for (k, block) in s.journal_bytes[range.clone()].chunks(bs).enumerate() {
                let at = *lba + k as u64;
                if landed(i, at) {
                    let at = at as usize * bs;
                    s.durable[at..at + bs].copy_from_slice(block);
                }
            }
        }
        s.journal.clear();
        s.journal_bytes.clear();
        s.current.copy_from_slice(&s.durable);
        s.power_left = None;
        writes
    }

    /// Damage on the medium: XORs `mask` into the byte at `offset` (of the
    /// whole disk), durably.
    pub fn corrupt(&self, offset: usize, mask: u8) {
        let mut s = self.state.lock();
        s.current[offset] ^= mask;
        s.durable[offset] ^= mask;
    }

    /// A copy of what reads see now.
    pub fn image(&self) -> Vec<u8> {
        self.state.lock().current.clone()
    }

    /// Requests completed so far (failed ones included): reads, writes,
    /// flushes.
    pub fn requests(&self) -> (u64, u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
            self.flushes.load(Ordering::Relaxed),
        )
    }

    /// Waits the configured latency.
    fn wait(&self) -> Delay {
        Delay(self.state.lock().latency)
    }

    /// Counts a request against a planned power cut: `Err` once it is out.
    fn powered(s: &mut State) -> Result<(), IoError> {
        match &mut s.power_left {
            Some(0) => Err(IoError::Device),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The first block of `lba..lba + count` with a fault matching `f`.
    fn faulty(s: &State, lba: u64, count: u64, f: impl Fn(Fault) -> bool) -> Option<u64> {
        s.faults
            .iter()
            .filter(|(_, fault)| f(*fault))
            .filter_map(|(r, _)| {
                let first = r.start.max(lba);
                (first < r.end.min(lba + count)).then_some(first)
            })
            .min()
    }

    fn do_read(&self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let count = check(self.block_size, self.blocks, lba, buf.len())?;
        let mut s = self.state.lock();
        Self::powered(&mut s)?;
        if Self::faulty(&s, lba, count, |f| f != Fault::Write).is_some() {
            return Err(IoError::Device);
        }
        let at = lba as usize * self.block_size;
        buf.copy_from_slice(&s.current[at..at + buf.len()]);
        Ok(())
    }

    fn do_write(&self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let count = check(self.block_size, self.blocks, lba, buf.len())?;
        if self.read_only {
            return Err(IoError::ReadOnly);
        }
        let mut s = self.state.lock();
        let s = &mut *s;
        Self::powered(s)?;
        let bad = Self::faulty(s, lba, count, |f| f != Fault::Read);
        let landed = bad.map_or(count, |bad| bad - lba) as usize * self.block_size;
        if landed > 0 {
            let at = lba as usize * self.block_size;
            s.current[at..at + landed].copy_from_slice(&buf[..landed]);
            let from = s.journal_bytes.len();
            s.journal_bytes.extend_from_slice(&buf[..landed]);
            s.journal.push((lba, from..from + landed));
        }
        match bad {
            Some(_) => Err(IoError::Device),
            None => Ok(()),
        }
    }

    fn do_flush(&self) -> Result<(), IoError> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        if self.read_only {
            return Err(IoError::ReadOnly);
        }
        let mut s = self.state.lock();
        let s = &mut *s;
        Self::powered(s)?;
        if s.failing_flushes > 0 {
            s.failing_flushes -= 1;
            return Err(IoError::Device);
        }
        for (lba, range) in s.journal.drain(..) {
            let at = lba as usize * self.block_size;
            s.durable[at..at + range.len()].copy_from_slice(&s.journal_bytes[range]);
        }
        s.journal_bytes.clear();
        Ok(())
    }
}

impl BlockDevice for MemDisk {
    fn block_size(&self) -> usize {
        self.block_size
    }

    fn blocks(&self) -> u64 {
        self.blocks
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    async fn read(&self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.wait().await;
        self.do_read(lba, buf)
    }

    async fn write(&self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        self.wait().await;
        self.do_write(lba, buf)
    }

    async fn flush(&self) -> Result<(), IoError> {
        self.wait().await;
        self.do_flush()
    }
}

/// Pending for a number of polls, waking itself each time.
struct Delay(u32);

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::{Fault, MemDisk};
    use crate::storage::{BlockDevice, IoError};
    use futures_executor::block_on;

    fn block(byte: u8) -> [u8; 512] {
        [byte; 512]
    }

    #[test]
    fn reads_see_writes_and_a_crash_keeps_only_what_was_flushed() {
        let disk = MemDisk::new(512, 8).unwrap();
        block_on(async {
            disk.write(1, &block(1)).await.unwrap();
            disk.flush().await.unwrap();
            let mut two = [0u8; 1024];
            two[..512].fill(2);
            two[512..].fill(3);
            disk.write(2, &two).await.unwrap();
            disk.write(1, &block(4)).await.unwrap();
            let mut got = [0u8; 512];
            disk.read(1, &mut got).await.unwrap();
            assert_eq!(got, block(4), "reads see unflushed writes");
        });
        // Only block 3 of write 0 lands; write 1 (block 1 again) does not.
        assert_eq!(disk.crash(|w, lba| w == 0 && lba == 3), 2);
        let image = disk.image();
        assert_eq!(image[512..1024], block(1), "flushed block kept");
        assert_eq!(image[1024..1536], block(0), "unflushed block lost");
        assert_eq!(image[1536..2048], block(3), "unflushed block landed");
    }

    #[test]
    fn bad_requests_and_faults_are_errors() {
        let disk = MemDisk::new(512, 4).unwrap();
        block_on(async {
            assert_eq!(disk.write(0, &[0; 100]).await, Err(IoError::BadLength(100)));
            assert_eq!(
                disk.read(3, &mut [0; 1024]).await,
                Err(IoError::OutOfRange { lba: 3, blocks: 2 })
            );
            disk.inject(2..3, Fault::Write);
            let mut two = [0u8; 1024];
            two.fill(9);
            assert_eq!(disk.write(1, &two).await, Err(IoError::Device));
            let mut got = [0u8; 1024];
            disk.read(1, &mut got).await.unwrap();
            assert_eq!(
                (got[0], got[512]),
                (9, 0),
                "the block before the fault landed"
            );
            disk.fail_flushes(1);
            assert_eq!(disk.flush().await, Err(IoError::Device));
            disk.flush().await.unwrap();
            disk.cut_power_after(1);
            disk.read(0, &mut [0; 512]).await.unwrap();
            assert_eq!(disk.read(0, &mut [0; 512]).await, Err(IoError::Device));
        });
        disk.crash(|_, _| true);
        let ro = MemDisk::new(512, 2).unwrap().into_read_only();
        block_on(async {
            assert_eq!(ro.write(0, &block(1)).await, Err(IoError::ReadOnly));
            assert_eq!(ro.flush().await, Err(IoError::ReadOnly));
        });
    }
}
