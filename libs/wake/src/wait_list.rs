//! [`WaitList`]: where any number of waiting tasks leave their wakers, all
//! woken at once.
//!
//! Waiters push their waker under a small spin lock and raise a flag; the
//! waking side checks the flag after a `SeqCst` fence and takes the lock
//! only when someone waits, so the common case (nobody waits) costs it one
//! fence and one load. Each side fences between "publish" and "look at the
//! other": the waiter between raising the flag and re-checking its
//! condition ([`register`](WaitList::register) does it), the waker between
//! publishing progress and reading the flag ([`wake_all`](WaitList::wake_all)
//! does it). Two `SeqCst` fences are ordered one way or the other, so at
//! least one side sees the other.
//!
//! Waking everyone, not one: a queued waker may be stale (its task got what
//! it wanted on its re-check and left), and waking only that one could
//! leave a real waiter asleep forever.

use alloc::vec::Vec;
use core::task::Waker;

#[cfg(not(loom))]
use crate::sync::UnsafeCell;
use crate::sync::{AtomicBool, Ordering, fence};

/// Wakers of tasks waiting for the same thing.
///
/// ```
/// use percore_wake::WaitList;
/// let list = WaitList::new();
/// list.register(std::task::Waker::noop());
/// assert_eq!(list.len(), 1);
/// list.wake_all();
/// assert_eq!(list.len(), 0);
/// ```
pub struct WaitList {
    #[cfg(not(loom))]
    locked: AtomicBool,
    waiting: AtomicBool,
    #[cfg(not(loom))]
    wakers: UnsafeCell<Lists>,
    /// Under loom, the lock is loom's (a spin lock makes a model unbounded);
    /// the protocol being checked is the flag and the fences.
    #[cfg(loom)]
    wakers: loom::sync::Mutex<Lists>,
}

/// The wakers waiting, and a spare buffer for [`WaitList::wake_all`] to
/// swap in (so registering after a wake-up reuses memory).
struct Lists {
    wakers: Vec<Waker>,
    spare: Vec<Waker>,
}

impl Lists {
    const fn new() -> Lists {
        Lists {
            wakers: Vec::new(),
            spare: Vec::new(),
        }
    }
}

// SAFETY: `wakers` is only touched under the spin lock (`locked`).
unsafe impl Send for WaitList {}
// SAFETY: as above.
unsafe impl Sync for WaitList {}

impl Default for WaitList {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitList {
    /// An empty list.
    ///
    /// ```
    /// assert_eq!(percore_wake::WaitList::new().len(), 0);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> WaitList {
        WaitList {
            locked: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            wakers: UnsafeCell::new(Lists::new()),
        }
    }

    /// An empty list (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> WaitList {
        WaitList {
            waiting: AtomicBool::new(false),
            wakers: loom::sync::Mutex::new(Lists::new()),
        }
    }

    /// An empty list with room for `waiters` wakers in both of its
    /// buffers, so even the first waits allocate nothing.
    ///
    /// ```
    /// assert!(percore_wake::WaitList::with_capacity(4).is_empty());
    /// ```
    pub fn with_capacity(waiters: usize) -> WaitList {
        let list = WaitList::new();
        list.with_locked(|lists| {
            lists.wakers.reserve_exact(waiters);
            lists.spare.reserve_exact(waiters);
        });
        list
    }

    #[cfg(loom)]
    fn with_locked<R>(&self, f: impl FnOnce(&mut Lists) -> R) -> R {
        f(&mut self.wakers.lock().unwrap())
    }

    #[cfg(not(loom))]
    fn with_locked<R>(&self, f: impl FnOnce(&mut Lists) -> R) -> R {
        while self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held: no other access to the vector.
        let result = self.wakers.with_mut(|wakers| f(unsafe { &mut *wakers }));
        self.locked.store(false, Ordering::Release);
        result
    }

    /// Adds `waker` to the list (a waker that would wake the same task as
    /// one already there is not added twice). Then check the condition
    /// again before returning `Pending`.
    ///
    /// ```
    /// use percore_wake::WaitList;
    /// let list = WaitList::new();
    /// list.register(std::task::Waker::noop());
    /// list.register(std::task::Waker::noop());
    /// assert_eq!(list.len(), 1);
    /// ```
    pub fn register(&self, waker: &Waker) {
        self.with_locked(|lists| {
            if !lists.wakers.iter().any(|w| w.will_wake(waker)) {
                lists.wakers.push(waker.clone());
            }
            self.waiting.store(true, Ordering::Relaxed);
        });
        // Pairs with the fence in `wake_all`.
        fence(Ordering::SeqCst);
    }

    /// Wakes every waiting task. Call after publishing the progress they
    /// wait for.
    ///
    /// ```
    /// use percore_wake::WaitList;
    /// let list = WaitList::new();
    /// list.wake_all(); // nobody waits: one fence and one load
    /// ```
    pub fn wake_all(&self) {
        // Pairs with the fence in `register`.
        fence(Ordering::SeqCst);
        if !self.waiting.load(Ordering::Relaxed) {
            return;
        }
        // Swap in the spare buffer and wake outside the lock; then the
        // drained buffer becomes the spare. Waiting again allocates nothing
        // (unless two wake-ups overlap and both buffers are out).
        let mut wakers = self.with_locked(|lists| {
            self.waiting.store(false, Ordering::Relaxed);
            let spare = core::mem::take(&mut lists.spare);
            core::mem::replace(&mut lists.wakers, spare)
        });
        for waker in wakers.drain(..) {
            waker.wake();
        }
        self.with_locked(|lists| {
            if lists.spare.capacity() < wakers.capacity() {
                lists.spare = wakers;
            }
        });
    }

    /// Number of wakers waiting (a snapshot).
    ///
    /// ```
    /// assert_eq!(percore_wake::WaitList::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.with_locked(|lists| lists.wakers.len())
    }

    /// Whether nobody waits (a snapshot).
    ///
    /// ```
    /// assert!(percore_wake::WaitList::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
