//! Memory management that knows no CPU: physical frames, kernel virtual
//! space, the heap allocator, DMA memory and the registry of stack guard
//! pages.
//!
//! Page tables are the CPU's business: `arch` edits them, taking frames and
//! virtual ranges from here. The bootloader maps all physical memory at a
//! fixed offset, which the frame allocator uses to keep its free list in the
//! free frames themselves.
//!
//! All mutable memory-management state sits behind one lock, [`with`], taken
//! with interrupts masked (through the [`irq`] hook that `arch` installs). It
//! is a boot-time and slow-path lock: nothing on a reactor's hot path
//! allocates frames or maps pages.

pub mod dma;
pub mod frame;
pub mod heap;
pub mod irq;
pub mod stack;
pub mod vspace;

use spin::Mutex;

use frame::FrameAllocator;
use vspace::VirtualSpace;

/// A physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

/// Size of a page and of a physical frame.
pub const PAGE_SIZE: u64 = 4096;

/// The memory-management state of the whole machine.
pub struct Memory {
    pub frames: FrameAllocator,
    pub vspace: VirtualSpace,
    /// Physically contiguous memory for devices (see [`dma`]).
    pub dma: dma::DmaPool,
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

/// Installs the frame allocator and kernel virtual space and reserves the
/// DMA pool (first, while the frames are still contiguous). Called once,
/// on the bootstrap core, by `arch` (which then maps the heap).
pub fn init(mut frames: FrameAllocator, vspace: VirtualSpace) {
    let dma = dma::DmaPool::reserve(&mut frames);
    *MEMORY.lock() = Some(Memory {
        frames,
        vspace,
        dma,
    });
}

/// Runs `f` with the memory-management state, interrupts masked.
pub fn with<R>(f: impl FnOnce(&mut Memory) -> R) -> Result<R, MemoryError> {
    irq::masked(|| {
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
