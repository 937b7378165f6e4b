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

    /// Takes `count` physically contiguous frames (for DMA), or `None`
    /// when no usable region has that many left. They come from the bump
    /// cursor, the only place where consecutive frames are known to be
    /// free; the tail of a region too short for them goes to the free list,
    /// so nothing is lost by skipping it.
    pub fn allocate_contiguous(&mut self, count: u64) -> Option<PhysAddr> {
        if count == 0 {
            return None;
        }
        let bytes = count.checked_mul(FRAME_SIZE)?;
        while self.cursor_region < self.region_count {
            let region = self.regions[self.cursor_region];
            if self
                .cursor_addr
                .checked_add(bytes)
                .is_some_and(|end| end <= region.end)
            {
                let start = self.cursor_addr;
                self.cursor_addr += bytes;
                self.allocated_frames += count;
                return Some(PhysAddr(start));
            }
            // Too short: hand the rest of this region to the free list.
            while let Some(frame) = self.bump_in_region() {
                self.allocated_frames += 1;
                // SAFETY: just taken from the bump cursor, used by nobody.
                unsafe { self.free(PhysAddr(frame)) };
            }
            self.cursor_region += 1;
            if let Some(next) = self.regions.get(self.cursor_region) {
                self.cursor_addr = next.start;
            }
        }
        None
    }

    /// The address at which all physical memory is mapped (the
    /// bootloader's offset mapping): frame `p` is readable at `offset + p`.
    pub fn phys_offset(&self) -> u64 {
        self.phys_offset
    }

    /// The next frame of the cursor's current region, if it has one left.
    fn bump_in_region(&mut self) -> Option<u64> {
        let region = self.regions.get(self.cursor_region)?;
        (self.cursor_addr + FRAME_SIZE <= region.end).then(|| {
            let addr = self.cursor_addr;
            self.cursor_addr += FRAME_SIZE;
            addr
        })
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

#[cfg(test)]
mod tests {
    extern crate std;

    use std::boxed::Box;
    use std::vec;

    use bootloader_api::info::{MemoryRegion, MemoryRegionKind, MemoryRegions};

    use super::{FRAME_SIZE, FrameAllocator, LOW_MEMORY_END};

    /// An allocator over two usable regions (3 and 8 frames), backed by a
    /// host buffer that stands for physical memory from LOW_MEMORY_END on.
    fn allocator() -> (FrameAllocator, std::vec::Vec<u8>) {
        let memory = vec![0u8; (16 * FRAME_SIZE) as usize];
        let regions = Box::leak(Box::new([
            MemoryRegion {
                start: LOW_MEMORY_END,
                end: LOW_MEMORY_END + 3 * FRAME_SIZE,
                kind: MemoryRegionKind::Usable,
            },
            MemoryRegion {
                start: LOW_MEMORY_END + 4 * FRAME_SIZE,
                end: LOW_MEMORY_END + 12 * FRAME_SIZE,
                kind: MemoryRegionKind::Usable,
            },
        ]));
        let offset = (memory.as_ptr() as u64).wrapping_sub(LOW_MEMORY_END);
        let regions = MemoryRegions::from(&mut regions[..]);
        let frames = FrameAllocator::new(Box::leak(Box::new(regions)), offset);
        (frames, memory)
    }

    #[test]
    fn contiguous_runs_skip_short_regions_without_losing_frames() {
        let (mut frames, _memory) = allocator();
        let first = frames.allocate().unwrap();
        assert_eq!(first.0, LOW_MEMORY_END);
        // 4 frames do not fit the 2 left in the first region: they come
        // from the second, and the 2 skipped frames go to the free list.
        let run = frames.allocate_contiguous(4).unwrap();
        assert_eq!(run.0, LOW_MEMORY_END + 4 * FRAME_SIZE);
        assert_eq!(frames.allocated_frames(), 5);
        let skipped = [frames.allocate().unwrap().0, frames.allocate().unwrap().0];
        assert!(skipped.contains(&(LOW_MEMORY_END + FRAME_SIZE)));
        assert!(skipped.contains(&(LOW_MEMORY_END + 2 * FRAME_SIZE)));
        // 4 frames are left in the second region: 3 fit, and then 2 do
        // not; the one left over stays allocatable on its own.
        let three = frames.allocate_contiguous(3).unwrap();
        assert_eq!(three.0, LOW_MEMORY_END + 8 * FRAME_SIZE);
        assert_eq!(frames.allocate_contiguous(2), None);
        assert_eq!(frames.allocate_contiguous(0), None);
        assert_eq!(frames.free_frames(), 1);
        assert_eq!(
            frames.allocate().unwrap().0,
            LOW_MEMORY_END + 11 * FRAME_SIZE
        );
    }
}
