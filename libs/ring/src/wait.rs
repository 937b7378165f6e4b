//! Wait strategies, kept apart from the rings: a ring never blocks, it
//! answers `Full` / `Empty`, and the caller's [`WaitStrategy`] decides what
//! to do until the next try (spin, yield to the host OS, or halt the core
//! until an IPI arrives).
//!
//! [`Doorbell`] is the other half of "halt until IPI": the cheap
//! "is the consumer asleep?" check the producer makes after publishing, so
//! it sends an inter-processor interrupt only to a core that needs one.

use crate::sync::{AtomicBool, Ordering, fence, spin_loop};

/// What to do while the awaited condition (space to push, a message to pop)
/// is not met. `attempt` counts the failed tries since the wait began.
///
/// ```
/// use percore_ring::wait::{BusySpin, WaitStrategy};
/// let mut tries = 0;
/// let v = BusySpin.wait_until(|| { tries += 1; (tries == 3).then_some(tries) });
/// assert_eq!(v, 3);
/// ```
pub trait WaitStrategy {
    /// Called after the `attempt`-th failed try (starting at 0).
    fn wait(&mut self, attempt: u32);

    /// Calls `f` until it returns `Some`, waiting between tries.
    fn wait_until<R>(&mut self, mut f: impl FnMut() -> Option<R>) -> R
    where
        Self: Sized,
    {
        let mut attempt = 0u32;
        loop {
            if let Some(r) = f() {
                return r;
            }
            self.wait(attempt);
            attempt = attempt.saturating_add(1);
        }
    }
}

/// Spin with the CPU's spin-loop hint (`pause` on x86): lowest latency, burns
/// the core. The right choice when each core is dedicated to its reactor.
///
/// ```
/// use percore_ring::wait::{BusySpin, WaitStrategy};
/// BusySpin.wait(0);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BusySpin;

impl WaitStrategy for BusySpin {
    #[inline]
    fn wait(&mut self, _attempt: u32) {
        spin_loop();
    }
}

/// Spin `spins` times, then call `then` on every further attempt.
///
/// On a host, `then` is `std::thread::yield_now` (spin-then-yield); in the
/// kernel it is "halt until IPI" (`sti; hlt`), paired with a [`Doorbell`].
///
/// ```
/// use percore_ring::wait::{SpinThen, WaitStrategy};
/// let mut w = SpinThen::new(2, std::thread::yield_now);
/// w.wait(0); // spins
/// w.wait(5); // yields to the OS scheduler
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SpinThen<F: FnMut()> {
    spins: u32,
    then: F,
}

impl<F: FnMut()> SpinThen<F> {
    /// Spin for the first `spins` attempts, then call `then` each attempt.
    pub const fn new(spins: u32, then: F) -> Self {
        SpinThen { spins, then }
    }
}

impl<F: FnMut()> WaitStrategy for SpinThen<F> {
    #[inline]
    fn wait(&mut self, attempt: u32) {
        if attempt < self.spins {
            spin_loop();
        } else {
            (self.then)();
        }
    }
}

/// The spin-then-yield strategy of a hosted build:
/// `SpinThen::new(spins, std::thread::yield_now)`.
pub type SpinThenYield = SpinThen<fn()>;

/// "Is the consumer asleep?": the handshake that lets a producer skip the
/// IPI when the consuming core is awake and polling.
///
/// Protocol (a Dekker handshake; both fences are needed, see below):
/// - consumer, about to halt: [`Doorbell::prepare_sleep`], then check its
///   rings once more; if still empty, halt; after waking (or if it found
///   work), [`Doorbell::wake`].
/// - producer, after pushing: if [`Doorbell::should_ring`] returns `true`,
///   send the IPI.
///
/// Why it cannot lose a wake-up: the consumer does *store flag; fence; load
/// tail*, the producer does *store tail; fence; load flag*. With a SeqCst
/// fence between each store and load, at least one side sees the other's
/// store: either the consumer sees the message (and does not halt) or the
/// producer sees the flag (and rings). The producer's fence is an `mfence`
/// on x86 (~30 cycles), so call `should_ring` once per batch of pushes.
///
/// ```
/// use percore_ring::wait::Doorbell;
/// let bell = Doorbell::new();
/// assert!(!bell.should_ring()); // consumer awake: no IPI
/// bell.prepare_sleep();
/// assert!(bell.should_ring()); // consumer asleep: ring once
/// assert!(!bell.should_ring()); // ...and only once
/// ```
#[derive(Debug, Default)]
pub struct Doorbell {
    sleeping: AtomicBool,
}

impl Doorbell {
    /// A doorbell whose consumer is awake.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Doorbell {
            sleeping: AtomicBool::new(false),
        }
    }

    /// A doorbell whose consumer is awake.
    #[cfg(loom)]
    pub fn new() -> Self {
        Doorbell {
            sleeping: AtomicBool::new(false),
        }
    }

    /// Consumer: announce the intent to halt. Re-check the rings after this
    /// call and halt only if they are still empty.
    pub fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Consumer: announce that it is awake and polling again.
    pub fn wake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Producer, after publishing: `true` if the consumer announced sleep
    /// (the flag is cleared, so only one producer rings for it).
    pub fn should_ring(&self) -> bool {
        fence(Ordering::SeqCst);
        self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel)
    }

    /// Whether the consumer currently announces sleep (a hint).
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn spin_then_calls_fallback_after_spins() {
        let calls = core::cell::Cell::new(0);
        let mut w = SpinThen::new(2, || calls.set(calls.get() + 1));
        (0..5).for_each(|a| w.wait(a));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn doorbell_rings_once_per_sleep() {
        let bell = Doorbell::new();
        bell.prepare_sleep();
        assert!(bell.is_sleeping());
        bell.wake();
        assert!(!bell.should_ring());
        bell.prepare_sleep();
        assert!(bell.should_ring());
        assert!(!bell.should_ring());
    }
}
