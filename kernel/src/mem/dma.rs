//! DMA memory: physically contiguous, zeroed allocations that a device
//! reads and writes by physical address (virtqueue rings, request headers,
//! status bytes, bounce buffers).
//!
//! Where the memory comes from: at boot, before anything else takes
//! frames, `mem::init` reserves one physically contiguous [`DmaPool`] from
//! the frame allocator's bump cursor ([`FrameAllocator::allocate_contiguous`]).
//! Contiguous runs exist only there: once frames have been handed out and
//! freed in any order, the free list holds no runs (a kernel that has run
//! for a while, or a test that took every frame, would find none).
//!
//! Virtual to physical: a [`DmaBuffer`] is a run of whole frames of the
//! pool, so its physical address is known from the start and needs no
//! page-table walk. The CPU reaches it through the bootloader's offset mapping of all
//! physical memory (virtual = `phys_offset + physical`), which is
//! write-back cacheable: fine for DMA on x86, whose caches are coherent with
//! device accesses. The kernel heap cannot serve here: it is mapped page by
//! page from unrelated frames, so a heap object is not physically contiguous.
//!
//! Buffers are allocated when a device is set up (under `mem`'s lock, a
//! slow path) and given back when dropped; nothing on an I/O path allocates.
//!
//! [`FrameAllocator::allocate_contiguous`]: super::frame::FrameAllocator::allocate_contiguous

use core::ptr::NonNull;

use super::frame::FrameAllocator;
use super::{MemoryError, PAGE_SIZE, PhysAddr};

/// The most the pool reserves: room for a virtio-blk queue per core on a
/// big machine (516 KiB each) and network queues besides.
pub const POOL_BYTES: u64 = 16 * 1024 * 1024;
/// The pool takes at most this fraction of usable memory (1/8).
const POOL_SHARE: u64 = 8;
/// Pages the pool's bitmap can track (POOL_BYTES / PAGE_SIZE).
const POOL_PAGES: usize = (POOL_BYTES / PAGE_SIZE) as usize;

/// A physically contiguous range reserved for DMA at boot, handed out in
/// runs of pages (first fit over a bitmap; allocation is a slow path).
pub struct DmaPool {
    base: u64,
    pages: usize,
    /// Bit `i`: page `i` is taken.
    taken: [u64; POOL_PAGES / 64],
}

impl DmaPool {
    /// A pool of no pages (nothing reserved).
    pub const fn empty() -> DmaPool {
        DmaPool {
            base: 0,
            pages: 0,
            taken: [0; POOL_PAGES / 64],
        }
    }

    /// A pool over `pages` pages from physical address `base`.
    pub fn new(base: u64, pages: usize) -> DmaPool {
        DmaPool {
            base,
            pages: pages.min(POOL_PAGES),
            ..DmaPool::empty()
        }
    }

    /// Reserves the pool from `frames` (call before anything else takes
    /// frames): [`POOL_BYTES`], or an eighth of usable memory if less.
    /// An empty pool if no run that long is left.
    pub fn reserve(frames: &mut FrameAllocator) -> DmaPool {
        let pages = (POOL_BYTES.min(frames.usable_bytes() / POOL_SHARE) / PAGE_SIZE) as usize;
        match frames.allocate_contiguous(pages as u64) {
            Some(base) => DmaPool::new(base.0, pages),
            None => DmaPool::empty(),
        }
    }

    /// Pages in the pool and pages taken.
    pub fn usage(&self) -> (usize, usize) {
        let taken = self.taken.iter().map(|w| w.count_ones() as usize).sum();
        (self.pages, taken)
    }

    fn is_taken(&self, page: usize) -> bool {
        self.taken[page / 64] & (1 << (page % 64)) != 0
    }

    fn set(&mut self, pages: core::ops::Range<usize>, taken: bool) {
        for page in pages {
            match taken {
                true => self.taken[page / 64] |= 1 << (page % 64),
                false => self.taken[page / 64] &= !(1 << (page % 64)),
            }
        }
    }

    /// Takes the first run of `count` free pages; its physical address.
    pub fn allocate(&mut self, count: usize) -> Option<PhysAddr> {
        let mut start = 0;
        while start + count <= self.pages && count > 0 {
            match (start..start + count).find(|&p| self.is_taken(p)) {
                Some(taken) => start = taken + 1,
                None => {
                    self.set(start..start + count, true);
                    return Some(PhysAddr(self.base + start as u64 * PAGE_SIZE));
                }
            }
        }
        None
    }

    /// Gives back `count` pages at `phys` (a run [`allocate`](Self::allocate) returned).
    pub fn free(&mut self, phys: PhysAddr, count: usize) {
        let first = ((phys.0 - self.base) / PAGE_SIZE) as usize;
        debug_assert!(first + count <= self.pages);
        self.set(first..(first + count).min(self.pages), false);
    }
}

/// A physically contiguous, zeroed run of frames shared with a device.
#[derive(Debug)]
pub struct DmaBuffer {
    virt: NonNull<u8>,
    phys: PhysAddr,
    len: usize,
}

// SAFETY: the buffer is plain memory owned by this value; access to its
// bytes goes through the unsafe accessors, whose callers order it.
unsafe impl Send for DmaBuffer {}
// SAFETY: as above.
unsafe impl Sync for DmaBuffer {}

impl DmaBuffer {
    /// Allocates `bytes` (rounded up to whole pages, at least one) of
    /// zeroed, physically contiguous memory, page aligned, from the pool.
    pub fn allocate(bytes: usize) -> Result<DmaBuffer, MemoryError> {
        let pages = bytes.div_ceil(PAGE_SIZE as usize).max(1);
        let (phys, offset) = super::with(|m| {
            let phys = m.dma.allocate(pages)?;
            Some((phys, m.frames.phys_offset()))
        })?
        .ok_or(MemoryError::OutOfFrames)?;
        let len = pages * PAGE_SIZE as usize;
        let virt = NonNull::new((offset + phys.0) as *mut u8).ok_or(MemoryError::MapFailed)?;
        // SAFETY: the frames were just taken from the allocator and are
        // mapped at `offset + phys` (the physical-memory window); nothing
        // else refers to them.
        unsafe { virt.as_ptr().write_bytes(0, len) };
        Ok(DmaBuffer { virt, phys, len })
    }

    /// The device (physical) address of byte 0.
    pub fn phys(&self) -> u64 {
        self.phys.0
    }

    /// Length in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a buffer has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The CPU's pointer to byte 0.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.virt
    }

    /// Copies `data` into the buffer at `offset`. Panics if it does not fit
    /// (a driver bug).
    ///
    /// # Safety
    /// The device must not access those bytes meanwhile (they are not yet
    /// handed to it, or it has completed the request that used them).
    pub unsafe fn write(&self, offset: usize, data: &[u8]) {
        let end = offset.checked_add(data.len());
        assert!(
            end.is_some_and(|end| end <= self.len),
            "DMA write out of bounds"
        );
        // SAFETY: in bounds (checked above); the caller vouches that the
        // device does not touch these bytes now.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.virt.as_ptr().add(offset),
                data.len(),
            )
        };
    }

    /// Copies bytes at `offset` out into `data`. Panics if out of bounds.
    ///
    /// # Safety
    /// As for [`write`](Self::write).
    pub unsafe fn read(&self, offset: usize, data: &mut [u8]) {
        let end = offset.checked_add(data.len());
        assert!(
            end.is_some_and(|end| end <= self.len),
            "DMA read out of bounds"
        );
        // SAFETY: as in `write`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.virt.as_ptr().add(offset),
                data.as_mut_ptr(),
                data.len(),
            )
        };
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // The device no longer uses these pages: its driver resets it
        // before dropping its buffers.
        let pages = self.len / PAGE_SIZE as usize;
        let _ = super::with(|m| m.dma.free(self.phys, pages));
    }
}

#[cfg(test)]
mod tests {
    use super::{DmaPool, PAGE_SIZE, PhysAddr};

    #[test]
    fn runs_are_first_fit_and_come_back() {
        let base = 0x100_0000;
        let mut pool = DmaPool::new(base, 10);
        let a = pool.allocate(4).unwrap();
        let b = pool.allocate(3).unwrap();
        assert_eq!((a.0, b.0), (base, base + 4 * PAGE_SIZE));
        assert_eq!(pool.allocate(4), None); // 3 pages left
        pool.free(a, 4);
        assert_eq!(pool.usage(), (10, 3));
        // The freed run serves again; a longer one still does not fit.
        assert_eq!(pool.allocate(5), None);
        assert_eq!(pool.allocate(2), Some(PhysAddr(base)));
        assert_eq!(pool.allocate(3), Some(PhysAddr(base + 7 * PAGE_SIZE)));
        assert_eq!(pool.allocate(0), None);
        assert_eq!(DmaPool::empty().allocate(1), None);
    }
}
