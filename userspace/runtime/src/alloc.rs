//! A small allocator: a bump pointer over a fixed arena in the program's
//! `.bss`, which also takes back the most recent block when it is freed
//! (enough for short-lived programs; memory from the kernel comes later).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::null_mut;

/// Bytes in the arena.
pub const ARENA_SIZE: usize = 64 * 1024;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

struct Bump {
    arena: Arena,
    /// Offset of the first free byte.
    next: UnsafeCell<usize>,
}

// SAFETY: a program has one thread; nothing else reaches the arena.
unsafe impl Sync for Bump {}

#[global_allocator]
static HEAP: Bump = Bump {
    arena: Arena(UnsafeCell::new([0; ARENA_SIZE])),
    next: UnsafeCell::new(0),
};

// SAFETY: blocks are carved once from the arena, aligned and in bounds;
// only the last one is ever reused (after it was freed).
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.0.get() as usize;
        // SAFETY: one thread (see `Sync`).
        let next = unsafe { &mut *self.next.get() };
        let start = (base + *next).next_multiple_of(layout.align()) - base;
        match start.checked_add(layout.size()) {
            Some(end) if end <= ARENA_SIZE => {
                *next = end;
                (base + start) as *mut u8
            }
            _ => null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let base = self.arena.0.get() as usize;
        // SAFETY: one thread (see `Sync`).
        let next = unsafe { &mut *self.next.get() };
        if ptr as usize + layout.size() == base + *next {
            *next = ptr as usize - base;
        }
    }
}
