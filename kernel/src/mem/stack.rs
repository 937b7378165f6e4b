//! Kernel stacks with guard pages.
//!
//! Every kernel stack sits directly above an unmapped guard page, so running
//! off its end is a page fault, not silent corruption. Guard pages are
//! recorded in a lock-free table that the page-fault handler consults (it may
//! run while any lock is held) to report "stack overflow in stack X".

use super::PAGE_SIZE;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Room for the boot stack plus 5 stacks per core for 100+ cores.
const MAX_GUARDS: usize = 512;

/// A mapped kernel stack.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    /// One past the highest usable byte (the initial stack pointer).
    pub top: u64,
    /// The lowest usable byte.
    pub bottom: u64,
}

struct Guard {
    start: AtomicU64,
    name_ptr: AtomicUsize,
    name_len: AtomicUsize,
}

static GUARDS: [Guard; MAX_GUARDS] = [const {
    Guard {
        start: AtomicU64::new(0),
        name_ptr: AtomicUsize::new(0),
        name_len: AtomicUsize::new(0),
    }
}; MAX_GUARDS];
static GUARD_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Records that the page at `guard_start` guards the stack called `name`.
pub fn register_guard(guard_start: u64, name: &'static str) {
    let slot = GUARD_COUNT.fetch_add(1, Ordering::Relaxed);
    let Some(guard) = GUARDS.get(slot) else {
        log::warn!(
            "stack guard table full; overflow of '{name}' will be reported as a plain page fault"
        );
        return;
    };
    guard
        .name_ptr
        .store(name.as_ptr() as usize, Ordering::Relaxed);
    guard.name_len.store(name.len(), Ordering::Relaxed);
    // Release: a reader that sees `start` also sees the name written above.
    guard.start.store(guard_start, Ordering::Release);
}

/// The name of the stack whose guard page contains `addr`, if any.
pub fn guard_owner(addr: u64) -> Option<&'static str> {
    let count = GUARD_COUNT.load(Ordering::Relaxed).min(MAX_GUARDS);
    GUARDS[..count].iter().find_map(|guard| {
        let start = guard.start.load(Ordering::Acquire);
        if start == 0 || !(start..start + PAGE_SIZE).contains(&addr) {
            return None;
        }
        let ptr = guard.name_ptr.load(Ordering::Relaxed) as *const u8;
        let len = guard.name_len.load(Ordering::Relaxed);
        // SAFETY: ptr/len were taken from a `&'static str` in `register_guard`
        // and published before `start` (release/acquire above).
        Some(unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr, len)) })
    })
}
