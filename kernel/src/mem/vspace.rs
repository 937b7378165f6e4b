//! Kernel virtual address space for the heap, stacks and MMIO windows.
//!
//! At boot the kernel claims one unused top-level (PML4) slot in the higher
//! half — 512 GiB that the bootloader left empty — and hands out page-aligned
//! ranges from it with a bump pointer. Ranges are never returned: what lives
//! there (heap, per-core stacks, device windows) lives as long as the kernel.
//! The lower half stays empty for user space.

use x86_64::VirtAddr;
use x86_64::structures::paging::PageTable;

const PAGE_SIZE: u64 = 4096;
/// Bytes covered by one PML4 entry.
const SLOT_SIZE: u64 = 1 << 39;

/// A bump allocator over one claimed 512 GiB slot.
pub struct VirtualSpace {
    next: u64,
    end: u64,
}

impl VirtualSpace {
    /// Claims the highest-numbered empty higher-half PML4 slot of `l4`.
    pub fn claim(l4: &PageTable) -> Option<VirtualSpace> {
        // Index 256 starts the higher half; the bootloader fills slots from
        // the bottom of its dynamic range, so searching downward from 510
        // (511 holds the kernel image) keeps out of its way.
        let index = (256..511).rev().find(|&i| l4[i].is_unused())?;
        // Sign-extend bit 47: higher-half addresses have bits 48..64 set.
        let start = 0xFFFF_0000_0000_0000 | ((index as u64) * SLOT_SIZE);
        Some(VirtualSpace {
            next: start,
            end: start + SLOT_SIZE,
        })
    }

    /// Reserves `bytes` (rounded up to whole pages); nothing is mapped yet.
    pub fn reserve(&mut self, bytes: u64) -> Option<VirtAddr> {
        let size = bytes.checked_next_multiple_of(PAGE_SIZE)?;
        let start = self.next;
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(VirtAddr::new(start))
    }

    /// The range handed out so far, `[start, next)`.
    pub fn used(&self) -> (u64, u64) {
        (self.end - SLOT_SIZE, self.next)
    }
}
