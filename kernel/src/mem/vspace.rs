//! Kernel virtual address space for the heap, stacks and MMIO windows.
//!
//! At boot `arch` claims a range of kernel virtual space that the bootloader
//! left empty (on x86_64, one top-level page-table slot: 512 GiB) and this
//! hands out page-aligned ranges from it with a bump pointer. Ranges are
//! never returned: what lives there (heap, per-core stacks, device windows)
//! lives as long as the kernel.
//! The lower half stays empty for user space.

use super::PAGE_SIZE;

/// A bump allocator over one claimed range of kernel virtual space.
pub struct VirtualSpace {
    start: u64,
    next: u64,
    end: u64,
}

impl VirtualSpace {
    /// Hands out `[start, end)`, which nothing else uses.
    pub fn new(start: u64, end: u64) -> VirtualSpace {
        VirtualSpace {
            start,
            next: start,
            end,
        }
    }

    /// Reserves `bytes` (rounded up to whole pages); nothing is mapped yet.
    pub fn reserve(&mut self, bytes: u64) -> Option<u64> {
        let size = bytes.checked_next_multiple_of(PAGE_SIZE)?;
        let start = self.next;
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(start)
    }

    /// The range handed out so far, `[start, next)`.
    pub fn used(&self) -> (u64, u64) {
        (self.start, self.next)
    }
}
