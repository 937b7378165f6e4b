//! The kernel page table: mapping the heap, guarded stacks, device windows
//! and the AP start-up page, and translating addresses.
//!
//! The bootloader maps all physical memory at a fixed offset; the active
//! level-4 table is edited through that window with the `x86_64` crate's
//! `OffsetPageTable`. Frames and virtual ranges come from `mem` (which knows
//! no CPU). Lock order: the page table, then `mem`'s lock; both with
//! interrupts masked.

use core::sync::atomic::{AtomicU64, Ordering};

use bootloader_api::info::MemoryRegions;
use spin::Mutex;
use x86_64::structures::paging::mapper::TranslateResult;
use x86_64::structures::paging::{
    FrameAllocator as X86FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags,
    PhysFrame, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::mem::frame::FrameAllocator;
use crate::mem::stack::{self, Stack};
use crate::mem::vspace::VirtualSpace;
use crate::mem::{self, MemoryError, PAGE_SIZE, heap};

static PAGE_TABLE: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);
/// The kernel's level-4 table (physical), whose upper half every user
/// address space shares, and where the bootloader maps physical memory.
static KERNEL_L4: AtomicU64 = AtomicU64::new(0);
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Bytes covered by one level-4 entry.
const SLOT_SIZE: u64 = 1 << 39;

/// `mem`'s frame allocator as the `x86_64` crate's mapper wants it (for
/// the page tables it allocates on the way).
pub(super) struct Frames<'a>(pub(super) &'a mut FrameAllocator);

// SAFETY: every frame handed out is unused and 4 KiB aligned (the allocator
// hands out each frame once until it is freed).
unsafe impl X86FrameAllocator<Size4KiB> for Frames<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let frame = self.0.allocate()?;
        Some(PhysFrame::containing_address(PhysAddr::new(frame.0)))
    }
}

/// Runs `f` on the page table and `mem`'s state, interrupts masked.
fn with<R>(
    f: impl FnOnce(&mut OffsetPageTable<'static>, &mut mem::Memory) -> Result<R, MemoryError>,
) -> Result<R, MemoryError> {
    ::x86_64::instructions::interrupts::without_interrupts(|| {
        let mut table = PAGE_TABLE.lock();
        let table = table.as_mut().ok_or(MemoryError::NotInitialised)?;
        mem::with(|m| f(table, m))?
    })
}

/// Takes over the bootloader's page table, claims kernel virtual space (the
/// highest empty higher-half level-4 slot), hands frames and space to `mem`
/// and maps the heap. Called once, on the bootstrap core.
pub fn init(regions: &'static MemoryRegions, phys_offset: Option<u64>) -> Result<(), MemoryError> {
    mem::irq::install(mem::irq::Masking {
        save_and_disable: || {
            let enabled = ::x86_64::instructions::interrupts::are_enabled();
            ::x86_64::instructions::interrupts::disable();
            enabled
        },
        restore: |enabled| {
            if enabled {
                ::x86_64::instructions::interrupts::enable();
            }
        },
    });
    let offset = phys_offset.ok_or(MemoryError::NoPhysicalMapping)?;
    let (l4_frame, _) = x86_64::registers::control::Cr3::read();
    KERNEL_L4.store(l4_frame.start_address().as_u64(), Ordering::Relaxed);
    PHYS_OFFSET.store(offset, Ordering::Relaxed);
    let l4_ptr: *mut PageTable = (offset + l4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: CR3 holds the active level-4 table, which the bootloader's
    // offset mapping makes reachable at `offset + phys`; this is the only
    // `&mut` to it, kept behind PAGE_TABLE from now on.
    let l4 = unsafe { &mut *l4_ptr };
    // Index 256 starts the higher half; the bootloader fills slots from
    // the bottom of its dynamic range, so searching downward from 510
    // (511 holds the kernel image) keeps out of its way.
    let slot = (256..511u64)
        .rev()
        .find(|&i| l4[i as usize].is_unused())
        .ok_or(MemoryError::NoVirtualSpace)?;
    // Sign-extend bit 47: higher-half addresses have bits 48..64 set.
    let start = 0xFFFF_0000_0000_0000 | (slot * SLOT_SIZE);
    // SAFETY: `offset` is where the bootloader mapped all physical memory.
    let table = unsafe { OffsetPageTable::new(l4, VirtAddr::new(offset)) };
    *PAGE_TABLE.lock() = Some(table);
    mem::init(
        FrameAllocator::new(regions, offset),
        VirtualSpace::new(start, start + SLOT_SIZE),
    );
    let heap_start = map_fresh(heap::HEAP_SIZE as u64, 0)?;
    // SAFETY: the range was just reserved and mapped writable for the heap alone.
    unsafe { heap::init(heap_start as *mut u8, heap::HEAP_SIZE) };
    Ok(())
}

/// The kernel's level-4 table (physical address).
pub(super) fn kernel_l4() -> u64 {
    KERNEL_L4.load(Ordering::Relaxed)
}

/// Where physical memory is mapped in the kernel half.
pub(super) fn phys_offset() -> u64 {
    PHYS_OFFSET.load(Ordering::Relaxed)
}

/// Reserves `guard + bytes` of kernel virtual space and maps fresh frames
/// over the last `bytes` (the first `guard` bytes stay unmapped), zeroed.
/// Returns the start of the mapped part.
///
/// Zeroing is also what keeps the kernel fast under QEMU's TCG: frames the
/// firmware or the bootloader ran code from before the hand-over are
/// reported usable, and TCG keeps their translated code until every byte
/// it came from is overwritten — until then, *every* store to such a page
/// takes its slow self-modifying-code path (about 100 times slower; the
/// reactor's task switch ran 25 times slower with its state there). Writing
/// each page once drops those translations.
fn map_fresh(bytes: u64, guard: u64) -> Result<u64, MemoryError> {
    let pages = bytes.div_ceil(PAGE_SIZE);
    let start = map_fresh_frames(pages, guard)?;
    // SAFETY: `start..start + pages * PAGE_SIZE` was just mapped writable
    // for the caller alone, who has not seen it yet.
    unsafe { core::ptr::write_bytes(start as *mut u8, 0, (pages * PAGE_SIZE) as usize) };
    Ok(start)
}

fn map_fresh_frames(pages: u64, guard: u64) -> Result<u64, MemoryError> {
    with(|table, m| {
        let base = m
            .vspace
            .reserve(guard + pages * PAGE_SIZE)
            .ok_or(MemoryError::VirtualSpaceExhausted)?;
        let start = base + guard;
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        let first = Page::<Size4KiB>::containing_address(VirtAddr::new(start));
        for i in 0..pages {
            let frame = m.frames.allocate().ok_or(MemoryError::OutOfFrames)?;
            let frame = PhysFrame::containing_address(PhysAddr::new(frame.0));
            // SAFETY: the virtual page is freshly reserved and the frame
            // freshly allocated: nothing else refers to either.
            unsafe { table.map_to(first + i, frame, flags, &mut Frames(&mut m.frames)) }
                .map_err(|_| MemoryError::MapFailed)?
                .flush();
        }
        Ok(start)
    })
}

/// Allocates a kernel stack of `size` bytes above an unmapped guard page,
/// and records the guard under `name` for the page-fault report.
pub fn allocate_stack(size: usize, name: &'static str) -> Result<Stack, MemoryError> {
    let bottom = map_fresh(size as u64, PAGE_SIZE)?;
    let stack = Stack {
        bottom,
        top: bottom + (size as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE,
    };
    stack::register_guard(stack.bottom - PAGE_SIZE, name);
    Ok(stack)
}

/// A mapped range of device registers.
#[derive(Clone, Copy, Debug)]
pub struct MmioRegion {
    /// Virtual address of the first requested byte.
    pub base: u64,
    /// Length in bytes, as requested.
    pub len: u64,
}

/// Maps `len` bytes of physical device memory at `phys` uncached
/// (cache-disable and write-through set) and not executable. The
/// bootloader's physical-memory window is write-back cacheable, which is
/// wrong for device registers.
pub fn map_mmio(phys: u64, len: u64) -> Result<MmioRegion, MemoryError> {
    let first = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(phys));
    let offset_in_page = phys - first.start_address().as_u64();
    let pages = (offset_in_page + len).div_ceil(PAGE_SIZE);
    with(|table, m| {
        let virt = m
            .vspace
            .reserve(pages * PAGE_SIZE)
            .ok_or(MemoryError::VirtualSpaceExhausted)?;
        let flags = PageTableFlags::PRESENT
            | PageTableFlags::WRITABLE
            | PageTableFlags::NO_CACHE
            | PageTableFlags::WRITE_THROUGH
            | PageTableFlags::NO_EXECUTE;
        let first_page = Page::containing_address(VirtAddr::new(virt));
        for i in 0..pages {
            // SAFETY: the virtual page is freshly reserved; the physical frame
            // is device memory, which the caller names and owns.
            unsafe { table.map_to(first_page + i, first + i, flags, &mut Frames(&mut m.frames)) }
                .map_err(|_| MemoryError::MapFailed)?
                .flush();
        }
        Ok(MmioRegion {
            base: virt + offset_in_page,
            len,
        })
    })
}

/// How a virtual address is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub phys: u64,
    pub writable: bool,
    pub executable: bool,
    /// Cache disabled and write-through (device memory).
    pub uncached: bool,
}

/// How `virt` is mapped, if it is.
pub fn translate(virt: u64) -> Option<Mapping> {
    with(|table, _| match table.translate(VirtAddr::new(virt)) {
        TranslateResult::Mapped {
            frame,
            offset,
            flags,
        } => Ok(Some(Mapping {
            phys: frame.start_address().as_u64() + offset,
            writable: flags.contains(PageTableFlags::WRITABLE),
            executable: !flags.contains(PageTableFlags::NO_EXECUTE),
            uncached: flags.contains(PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH),
        })),
        _ => Ok(None),
    })
    .ok()
    .flatten()
}

/// Identity-maps the low page `page` (for the AP trampoline). False if
/// something already uses that address.
pub(super) fn map_identity(page: u64) -> Result<bool, MemoryError> {
    with(|table, m| {
        let virt = VirtAddr::new(page);
        if table.translate_addr(virt).is_some() {
            return Ok(false); // something (the bootloader) already uses this address
        }
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(page));
        // SAFETY: identity-mapping a free low frame at an unused lower-half address.
        Ok(unsafe {
            table.map_to(
                Page::containing_address(virt),
                frame,
                flags,
                &mut Frames(&mut m.frames),
            )
        }
        .map(|flush| flush.flush())
        .is_ok())
    })
}

/// Removes the identity mapping of `page`.
pub(super) fn unmap_identity(page: u64) {
    let _ = with(|table, _| {
        if let Ok((_, flush)) =
            table.unmap(Page::<Size4KiB>::containing_address(VirtAddr::new(page)))
        {
            flush.flush();
        }
        Ok(())
    });
}
