//! A wait list reuses its memory: waiting again after a wake-up allocates
//! nothing once both of its buffers exist (counted by a global allocator).
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Wake, Waker};

use percore_wake::WaitList;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Flag(AtomicU64);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn waiting_again_after_a_wake_up_allocates_nothing() {
    let flags: Vec<Arc<Flag>> = (0..3).map(|_| Arc::new(Flag(AtomicU64::new(0)))).collect();
    let wakers: Vec<Waker> = flags.iter().map(|f| Waker::from(f.clone())).collect();
    let list = WaitList::new();
    // Warm up: both buffers get their capacity.
    for _ in 0..2 {
        for waker in &wakers {
            list.register(waker);
        }
        list.wake_all();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        for waker in &wakers {
            list.register(waker);
        }
        list.wake_all();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "1000 rounds of wait and wake-up allocated");
    for flag in &flags {
        assert_eq!(
            flag.0.load(Ordering::Relaxed),
            1002,
            "every waiter woken every round"
        );
    }
}
