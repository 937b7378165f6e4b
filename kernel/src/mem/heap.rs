//! The kernel heap: size-classed free lists in front of a linked-list
//! allocator, over a fixed-size region of kernel virtual space mapped at boot.
//!
//! A plain linked-list allocator walks its free list on every allocation and
//! every free, which becomes O(live blocks) once many small objects are
//! freed in scattered order — a reactor with 100k tasks spends milliseconds
//! per task there. So blocks up to [`MAX_SMALL`] bytes come from per-size-class
//! free lists (powers of two from 16 bytes): O(1) allocate and free. Each
//! class refills by carving a [`REFILL_BYTES`] chunk from the linked-list heap;
//! small blocks are never returned to it (the class keeps them for reuse).
//! Larger blocks go to the linked-list heap directly.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use linked_list_allocator::Heap;

use super::irq;

/// Size of the kernel heap. This is the one place it is set. Blocks of the
/// size classes are kept by their class once freed (see the module doc),
/// so a burst of small objects (the test suite keeps 100 000 tasks alive)
/// leaves that memory to small objects for good; the network stack's
/// frame pools and socket buffers (several MiB on four cores) come on top.
/// 64 MiB ran out in the test suite's longest boot.
pub const HEAP_SIZE: usize = 128 * 1024 * 1024;
/// Largest block served from the size-class free lists.
pub const MAX_SMALL: usize = 2048;
/// Bytes a size class takes from the large heap when its list runs dry.
const REFILL_BYTES: usize = 16 * 1024;
/// Size classes 16, 32, ..., 2048 bytes.
const CLASSES: usize = 8;

/// A free small block: the first word links to the next free block.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

struct FreeList {
    head: Option<NonNull<FreeBlock>>,
}

// SAFETY: the list only holds pointers into the heap, reached under its lock.
unsafe impl Send for FreeList {}

struct KernelAllocator {
    large: spin::Mutex<Heap>,
    small: [spin::Mutex<FreeList>; CLASSES],
    /// Bytes in live allocations (as requested), for diagnostics and tests.
    live: AtomicUsize,
    /// Allocations made since boot, for tests that check a path allocates
    /// nothing (a block allocated and freed again leaves `live` unchanged).
    count: AtomicU64,
}

#[cfg_attr(target_os = "none", global_allocator)]
static ALLOCATOR: KernelAllocator = KernelAllocator {
    large: spin::Mutex::new(Heap::empty()),
    small: [const { spin::Mutex::new(FreeList { head: None }) }; CLASSES],
    live: AtomicUsize::new(0),
    count: AtomicU64::new(0),
};

/// The size class serving `layout`, if it is small: class c holds blocks of
/// 16 << c bytes, each aligned to its size (chunks are carved aligned).
fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(16);
    if size > MAX_SMALL {
        return None;
    }
    Some(size.next_power_of_two().trailing_zeros() as usize - 4)
}

impl KernelAllocator {
    fn large_alloc(&self, layout: Layout) -> *mut u8 {
        irq::masked(|| {
            self.large
                .lock()
                .allocate_first_fit(layout)
                .map_or(null_mut(), NonNull::as_ptr)
        })
    }

    fn small_alloc(&self, class: usize) -> *mut u8 {
        let block_size = 16usize << class;
        irq::masked(|| {
            let mut list = self.small[class].lock();
            if list.head.is_none() {
                let Ok(chunk) = Layout::from_size_align(REFILL_BYTES, block_size) else {
                    return null_mut();
                };
                let base = self.large_alloc(chunk);
                if base.is_null() {
                    return null_mut();
                }
                for offset in (0..REFILL_BYTES).step_by(block_size).rev() {
                    // SAFETY: `base..base+REFILL_BYTES` is a fresh allocation
                    // owned by this class; each block is aligned and in bounds.
                    unsafe {
                        let block = base.add(offset).cast::<FreeBlock>();
                        block.write(FreeBlock { next: list.head });
                        list.head = Some(NonNull::new_unchecked(block));
                    }
                }
            }
            match list.head {
                Some(block) => {
                    // SAFETY: blocks on the list are free and hold a valid link.
                    list.head = unsafe { block.as_ref().next };
                    block.as_ptr().cast()
                }
                None => null_mut(),
            }
        })
    }
}

// SAFETY: small blocks are handed out once until freed (a free list under a
// lock); large ones by the linked-list heap under its lock. Every block meets
// its layout's size and alignment (see `class_of`).
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = match class_of(&layout) {
            Some(class) => self.small_alloc(class),
            None => self.large_alloc(layout),
        };
        if !ptr.is_null() {
            self.live.fetch_add(layout.size(), Ordering::Relaxed);
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        let Some(block) = NonNull::new(ptr) else {
            return;
        };
        irq::masked(|| match class_of(&layout) {
            Some(class) => {
                let mut list = self.small[class].lock();
                let block = block.cast::<FreeBlock>();
                // SAFETY: the caller returns a block of this class it no longer uses.
                unsafe { block.as_ptr().write(FreeBlock { next: list.head }) };
                list.head = Some(block);
            }
            // SAFETY: a large block from `allocate_first_fit` with this layout.
            None => unsafe { self.large.lock().deallocate(block, layout) },
        });
    }
}

/// Hands the heap its region: `size` bytes at `start`, already mapped
/// writable by `arch`. Called once, at boot.
///
/// # Safety
/// `[start, start + size)` must be mapped, writable, unused by anything else,
/// and stay so for as long as the kernel runs.
pub unsafe fn init(start: *mut u8, size: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { ALLOCATOR.large.lock().init(start, size) };
}

/// Bytes in live heap allocations (the sizes callers asked for).
pub fn used_bytes() -> usize {
    ALLOCATOR.live.load(Ordering::Relaxed)
}

/// Allocations made since boot (every core; a reallocation counts as one).
/// Two readings around a piece of work that runs alone tell whether it
/// allocates at all, which [`used_bytes`] cannot (it misses a block freed
/// again).
pub fn allocations() -> u64 {
    ALLOCATOR.count.load(Ordering::Relaxed)
}
