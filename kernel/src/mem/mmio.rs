//! Uncached mappings of device registers.
//!
//! The bootloader's physical-memory window is write-back cacheable, which is
//! wrong for device registers (the local APIC in particular). Devices get
//! their own window in kernel virtual space, mapped uncached.

use x86_64::structures::paging::{Mapper, Page, PageTableFlags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use super::MemoryError;

/// A mapped range of device registers.
#[derive(Clone, Copy, Debug)]
pub struct MmioRegion {
    /// Virtual address of the first requested byte.
    pub base: VirtAddr,
    /// Length in bytes, as requested.
    pub len: u64,
}

/// Maps `len` bytes of physical device memory at `phys` uncached
/// (cache-disable and write-through set) and not executable.
pub fn map(phys: PhysAddr, len: u64) -> Result<MmioRegion, MemoryError> {
    let first = PhysFrame::<x86_64::structures::paging::Size4KiB>::containing_address(phys);
    let offset_in_page = phys.as_u64() - first.start_address().as_u64();
    let pages = (offset_in_page + len).div_ceil(4096);
    super::with(|m| {
        let virt = m
            .vspace
            .reserve(pages * 4096)
            .ok_or(MemoryError::VirtualSpaceExhausted)?;
        let flags = PageTableFlags::PRESENT
            | PageTableFlags::WRITABLE
            | PageTableFlags::NO_CACHE
            | PageTableFlags::WRITE_THROUGH
            | PageTableFlags::NO_EXECUTE;
        let first_page = Page::containing_address(virt);
        for i in 0..pages {
            // SAFETY: the virtual page is freshly reserved; the physical frame
            // is device memory, which the caller names and owns.
            unsafe {
                m.page_table
                    .map_to(first_page + i, first + i, flags, &mut m.frames)
            }
            .map_err(|_| MemoryError::MapFailed)?
            .flush();
        }
        Ok(MmioRegion {
            base: virt + offset_in_page,
            len,
        })
    })?
}
