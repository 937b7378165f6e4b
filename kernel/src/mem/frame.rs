//! The physical frame allocator.
//!
//! Frames come first from a bump cursor walking the bootloader's usable
//! regions, then, once freed, from an intrusive free list: each free frame
//! stores the physical address of the next one in its first eight bytes,
//! written through the physical-memory window. Both paths are O(1) and the
//! allocator itself needs no memory.
//!
//! Memory below 1 MiB is kept out of the pool: firmware structures live there,
//! and it is where the real-mode start-up page for application cores must go.

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};

use super::PhysAddr;

/// The first byte the general pool may hand out.
pub const LOW_MEMORY_END: u64 = 0x10_0000;
const FRAME_SIZE: u64 = 4096;
/// More usable regions than any real firmware reports.
const MAX_REGIONS: usize = 128;

/// A half-open range of physical addresses `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub start: u64,
    pub end: u64,
}

/// Hands out each usable physical frame at most once until it is freed.
pub struct FrameAllocator {
    regions: [PhysRange; MAX_REGIONS],
    region_count: usize,
    /// Bump cursor: index of the region being consumed and the next address in it.
    cursor_region: usize,
    cursor_addr: u64,
    /// Head of the intrusive free list (physical address), if any.
    free_head: Option<u64>,
    phys_offset: u64,
    total_frames: u64,
    allocated_frames: u64,
}

impl FrameAllocator {
    /// Builds the allocator over the `Usable` regions of the bootloader's map,
    /// trimmed to whole frames at or above [`LOW_MEMORY_END`].
    pub fn new(regions: &MemoryRegions, phys_offset: u64) -> Self {
        let mut this = FrameAllocator {
            regions: [PhysRange { start: 0, end: 0 }; MAX_REGIONS],
            region_count: 0,
            cursor_region: 0,
            cursor_addr: 0,
            free_head: None,
            phys_offset,
            total_frames: 0,
            allocated_frames: 0,
        };
        for region in regions
            .iter()
            .filter(|r| r.kind == MemoryRegionKind::Usable)
        {
            let start = region
                .start
                .max(LOW_MEMORY_END)
                .next_multiple_of(FRAME_SIZE);
            let end = region.end & !(FRAME_SIZE - 1);
            if end <= start {
                continue;
            }
            if this.region_count == MAX_REGIONS {
                log::warn!(
                    "frame allocator: more than {MAX_REGIONS} usable regions; ignoring the rest"
                );
                break;
            }
            this.regions[this.region_count] = PhysRange { start, end };
            this.region_count += 1;
            this.total_frames += (end - start) / FRAME_SIZE;
        }
        this.cursor_addr = this.regions.first().map_or(0, |r| r.start);
        this
    }

    /// The usable regions this allocator manages.
    pub fn regions(&self) -> &[PhysRange] {
        &self.regions[..self.region_count]
    }

    /// Total bytes in the managed regions.
    pub fn usable_bytes(&self) -> u64 {
        self.total_frames * FRAME_SIZE
    }

    /// Frames currently handed out.
    pub fn allocated_frames(&self) -> u64 {
        self.allocated_frames
    }

    /// Frames still available.
    pub fn free_frames(&self) -> u64 {
        self.total_frames - self.allocated_frames
    }

    /// Takes one frame, or `None` when physical memory is exhausted.
    pub fn allocate(&mut self) -> Option<PhysAddr> {
        let addr = match self.free_head {
            Some(head) => {
                // SAFETY: `head` is a free frame we own; its first word holds
                // the next free frame's address (or u64::MAX), written by `free`.
                let next = unsafe { self.link(head).read() };
                self.free_head = (next != u64::MAX).then_some(next);
                head
            }
            None => self.bump()?,
        };
        self.allocated_frames += 1;
        Some(PhysAddr(addr))
    }

    /// Returns a frame to the pool.
    ///
    /// # Safety
    /// `frame` must have come from [`FrameAllocator::allocate`], must not be
    /// freed twice, and nothing may use it afterwards.
    pub unsafe fn free(&mut self, frame: PhysAddr) {
        let addr = frame.0;
        // SAFETY: the caller gives the frame back to us; we own its contents.
        unsafe { self.link(addr).write(self.free_head.unwrap_or(u64::MAX)) };
        self.free_head = Some(addr);
        self.allocated_frames -= 1;
    }

    fn bump(&mut self) -> Option<u64> {
        while self.cursor_region < self.region_count {
            let region = self.regions[self.cursor_region];
            if self.cursor_addr + FRAME_SIZE <= region.end {
                let addr = self.cursor_addr;
                self.cursor_addr += FRAME_SIZE;
                return Some(addr);
            }
            self.cursor_region += 1;
            if let Some(next) = self.regions.get(self.cursor_region) {
                self.cursor_addr = next.start;
            }
        }
        None
    }

    fn link(&self, frame: u64) -> *mut u64 {
        (self.phys_offset + frame) as *mut u64
    }
}
