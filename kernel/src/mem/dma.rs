//! DMA memory: physically contiguous, zeroed allocations that a device
//! reads and writes by physical address (virtqueue rings, request headers,
//! status bytes, bounce buffers).
//!
//! Virtual to physical: a [`DmaBuffer`] is a run of whole frames taken
//! from the frame allocator's bump cursor ([`FrameAllocator::allocate_contiguous`]),
//! so its physical address is known from the start and needs no page-table
//! walk. The CPU reaches it through the bootloader's offset mapping of all
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

use super::{MemoryError, PAGE_SIZE, PhysAddr};

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
    /// zeroed, physically contiguous memory, page aligned.
    pub fn allocate(bytes: usize) -> Result<DmaBuffer, MemoryError> {
        let frames = (bytes as u64).div_ceil(PAGE_SIZE).max(1);
        let (phys, offset) = super::with(|m| {
            let phys = m.frames.allocate_contiguous(frames)?;
            Some((phys, m.frames.phys_offset()))
        })?
        .ok_or(MemoryError::OutOfFrames)?;
        let len = (frames * PAGE_SIZE) as usize;
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
        let frames = self.len as u64 / PAGE_SIZE;
        let _ = super::with(|m| {
            for i in 0..frames {
                // SAFETY: these frames came from `allocate_contiguous` for
                // this buffer, which is gone; the device no longer uses them
                // (the owner resets it before dropping its buffers).
                unsafe { m.frames.free(PhysAddr(self.phys.0 + i * PAGE_SIZE)) };
            }
        });
    }
}
