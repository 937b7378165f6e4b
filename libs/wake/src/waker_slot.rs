//! [`WakerSlot`]: where one waiting task leaves its waker.
//!
//! The algorithm is the one of `futures`' `AtomicWaker`: a small state
//! machine guards the slot. `register` moves it WAITING -> REGISTERING,
//! stores the waker, and moves it back; `wake` sets WAKING and, if nobody
//! is registering, takes the waker out and wakes it. A `wake` that lands
//! while a `register` is in progress is not lost: the registering side sees
//! the WAKING bit when it finishes and wakes the new waker itself.
//!
//! Both sides go through a read-modify-write of the one state word, and
//! those are totally ordered: if `register` comes after `wake`, it
//! synchronises with it (AcqRel) and the waiter's re-check sees the
//! progress published before `wake`; if before, `wake` finds the waker.

use core::task::Waker;

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};

const WAITING: usize = 0;
const REGISTERING: usize = 0b01;
const WAKING: usize = 0b10;

/// A slot for one task's waker, safe to register and wake from any core
/// (and to wake from an interrupt handler: `wake` never blocks).
///
/// ```
/// use percore_wake::WakerSlot;
/// let slot = WakerSlot::new();
/// slot.wake(); // nobody waits: nothing happens
/// assert!(slot.take().is_none());
/// ```
pub struct WakerSlot {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the waker cell is only touched by the side that moved the state
// word out of WAITING (the registering side, or the waking side that saw no
// registration in progress); the state machine makes those exclusive.
unsafe impl Send for WakerSlot {}
// SAFETY: as above.
unsafe impl Sync for WakerSlot {}

impl Default for WakerSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl WakerSlot {
    /// An empty slot.
    ///
    /// ```
    /// let slot = percore_wake::WakerSlot::new();
    /// assert!(slot.take().is_none());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> WakerSlot {
        WakerSlot {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// An empty slot (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> WakerSlot {
        WakerSlot {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Leaves `waker` in the slot (replacing an earlier one). Then check the
    /// condition again before returning `Pending`.
    ///
    /// ```
    /// use percore_wake::WakerSlot;
    /// let slot = WakerSlot::new();
    /// slot.register(std::task::Waker::noop());
    /// assert!(slot.take().is_some());
    /// ```
    pub fn register(&self, waker: &Waker) {
        match self.state.compare_exchange(
            WAITING,
            REGISTERING,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                self.waker.with_mut(|cell| {
                    // SAFETY: REGISTERING excludes every other access to the cell.
                    let cell = unsafe { &mut *cell };
                    match cell {
                        Some(old) if old.will_wake(waker) => {}
                        _ => *cell = Some(waker.clone()),
                    }
                });
                // Back to WAITING, unless a wake came in meanwhile.
                if let Err(actual) = self.state.compare_exchange(
                    REGISTERING,
                    WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    debug_assert_eq!(actual, REGISTERING | WAKING);
                    // SAFETY: still REGISTERING: the waker side saw it and
                    // left the cell to us.
                    let pending = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                    self.state.swap(WAITING, Ordering::AcqRel);
                    if let Some(waker) = pending {
                        waker.wake();
                    }
                }
            }
            Err(WAKING) => {
                // A wake is in progress on another core: make sure this
                // task polls again (it will re-check its condition).
                waker.wake_by_ref();
            }
            Err(_) => {
                // Registering concurrently with another registration of the
                // same slot: a single-waiter slot used by two waiters is a
                // caller bug; waking is the safe answer.
                waker.wake_by_ref();
            }
        }
    }

    /// Wakes the registered waker, if any (it is removed from the slot).
    /// Call after publishing the progress the waiter checks.
    ///
    /// ```
    /// use percore_wake::WakerSlot;
    /// let slot = WakerSlot::new();
    /// slot.register(std::task::Waker::noop());
    /// slot.wake();
    /// assert!(slot.take().is_none());
    /// ```
    pub fn wake(&self) {
        if let Some(waker) = self.take() {
            waker.wake();
        }
    }

    /// Takes the registered waker out without waking it.
    ///
    /// ```
    /// use percore_wake::WakerSlot;
    /// let slot = WakerSlot::new();
    /// assert!(slot.take().is_none());
    /// ```
    pub fn take(&self) -> Option<Waker> {
        match self.state.fetch_or(WAKING, Ordering::AcqRel) {
            WAITING => {
                // SAFETY: we moved the state from WAITING to WAKING: exclusive.
                let waker = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                self.state.fetch_and(!WAKING, Ordering::Release);
                waker
            }
            // A registration (or another wake) is in progress: it will see
            // WAKING and wake the waker it stores.
            _ => None,
        }
    }
}
