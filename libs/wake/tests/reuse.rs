//! A wait list reuses its memory: waiting again after a wake-up allocates
//! nothing once both of its buffers exist (counted by a global allocator,
//! on this test's thread only: the test harness's own thread allocates
//! when it likes).
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Wake, Waker};

use percore_wake::WaitList;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether allocations on this thread are counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
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
    COUNTING.with(|c| c.set(true));
    for _ in 0..1000 {
        for waker in &wakers {
            list.register(waker);
        }
        list.wake_all();
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(allocations, 0, "1000 rounds of wait and wake-up allocated");
    for flag in &flags {
        assert_eq!(
            flag.0.load(Ordering::Relaxed),
            1002,
            "every waiter woken every round"
        );
    }
}
