//! The kernel heap: a linked-list allocator over a fixed-size region of
//! kernel virtual space, mapped to fresh frames at boot.

use linked_list_allocator::LockedHeap;
use x86_64::structures::paging::{Mapper, Page, PageTableFlags};

use super::MemoryError;

/// Size of the kernel heap. This is the one place it is set.
pub const HEAP_SIZE: usize = 64 * 1024 * 1024;

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Maps [`HEAP_SIZE`] bytes and hands them to the allocator.
pub(super) fn init() -> Result<(), MemoryError> {
    let start = super::with(|m| -> Result<_, MemoryError> {
        let start = m
            .vspace
            .reserve(HEAP_SIZE as u64)
            .ok_or(MemoryError::VirtualSpaceExhausted)?;
        let first = Page::containing_address(start);
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        for page in Page::range(first, first + (HEAP_SIZE / 4096) as u64) {
            let frame = m.frames.allocate().ok_or(MemoryError::OutOfFrames)?;
            // SAFETY: `page` lies in freshly reserved kernel virtual space and
            // `frame` is unused; mapping one to the other aliases nothing.
            unsafe { m.page_table.map_to(page, frame, flags, &mut m.frames) }
                .map_err(|_| MemoryError::MapFailed)?
                // The page was not present before, and x86 never caches
                // not-present translations: there is nothing to flush.
                .ignore();
        }
        Ok(start)
    })??;
    // SAFETY: the range was just mapped writable and is used by nothing else.
    unsafe { ALLOCATOR.lock().init(start.as_mut_ptr(), HEAP_SIZE) };
    Ok(())
}

/// Bytes currently allocated from the heap.
pub fn used_bytes() -> usize {
    x86_64::instructions::interrupts::without_interrupts(|| ALLOCATOR.lock().used())
}
