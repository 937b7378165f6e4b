//! Memory management: physical frames, the kernel page table, kernel virtual
//! space, the heap, guarded stacks and uncached MMIO mappings.
//!
//! The bootloader maps all physical memory at a fixed offset
//! (`physical_memory_offset`); page tables are edited through that window.
//! All mutable memory-management state sits behind one lock, [`MEMORY`],
//! taken with interrupts disabled. It is a boot-time and slow-path lock:
//! nothing on a reactor's hot path allocates frames or maps pages.

pub mod frame;
pub mod heap;
pub mod mmio;
pub mod stack;
pub mod vspace;

use bootloader_api::info::MemoryRegions;
use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::structures::paging::{OffsetPageTable, PageTable};

use frame::FrameAllocator;
use vspace::VirtualSpace;

/// The memory-management state of the whole machine.
pub struct Memory {
    pub frames: FrameAllocator,
    pub page_table: OffsetPageTable<'static>,
    pub vspace: VirtualSpace,
}

static MEMORY: Mutex<Option<Memory>> = Mutex::new(None);

/// Errors from memory initialisation and mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// The bootloader did not map physical memory (config mismatch).
    NoPhysicalMapping,
    /// No free top-level page-table slot for kernel virtual space.
    NoVirtualSpace,
    /// Kernel virtual space is exhausted.
    VirtualSpaceExhausted,
    /// Physical memory is exhausted.
    OutOfFrames,
    /// A page was already mapped, or a page table could not be edited.
    MapFailed,
    /// [`init`] has not run yet.
    NotInitialised,
}

/// Sets up frame allocation, the page-table editor and kernel virtual space,
/// then maps the heap. Called once, on the bootstrap core.
pub fn init(
    regions: &'static MemoryRegions,
    physical_memory_offset: Option<u64>,
) -> Result<(), MemoryError> {
    let offset = VirtAddr::new(physical_memory_offset.ok_or(MemoryError::NoPhysicalMapping)?);
    let (l4_frame, _) = x86_64::registers::control::Cr3::read();
    let l4_ptr: *mut PageTable = (offset + l4_frame.start_address().as_u64()).as_mut_ptr();
    // SAFETY: CR3 holds the active level-4 table, which the bootloader's
    // offset mapping makes reachable at `offset + phys`; this is the only
    // `&mut` to it, kept behind the MEMORY lock from now on.
    let l4 = unsafe { &mut *l4_ptr };
    let vspace = VirtualSpace::claim(l4).ok_or(MemoryError::NoVirtualSpace)?;
    // SAFETY: `offset` is where the bootloader mapped all physical memory.
    let page_table = unsafe { OffsetPageTable::new(l4, offset) };
    let frames = FrameAllocator::new(regions, offset);
    *MEMORY.lock() = Some(Memory {
        frames,
        page_table,
        vspace,
    });
    heap::init()
}

/// Runs `f` with the memory-management state, interrupts disabled.
pub fn with<R>(f: impl FnOnce(&mut Memory) -> R) -> Result<R, MemoryError> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        MEMORY
            .lock()
            .as_mut()
            .map(f)
            .ok_or(MemoryError::NotInitialised)
    })
}

/// Usable physical memory in bytes, as reported by the bootloader (0 before init).
pub fn usable_bytes() -> u64 {
    with(|m| m.frames.usable_bytes()).unwrap_or(0)
}
