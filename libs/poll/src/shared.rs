//! The state shared between a [`Poll`](crate::Poll), its registry, and every
//! [`Signal`](crate::Signal) / [`Waker`](crate::Waker) on other cores: one
//! atomic word per registration slot, the readiness queue, the "poller is
//! asleep" flag, and the park hook. Nothing here takes a lock.
//!
//! Slot state word (`u64`):
//!
//! ```text
//!  63            32 31   18  17      16     15    8 7      0
//! +----------------+-------+-------+--------+--------+--------+
//! |   generation   |   0   |RELEASE| QUEUED |interest| ready  |
//! +----------------+-------+-------+--------+--------+--------+
//! ```
//!
//! - `ready`: readiness latched by signals and not yet reported.
//! - `interest`: `Interest` bits; zero means the slot is not registered.
//! - `QUEUED`: the slot number is in the queue (or about to be pushed by the
//!   signaller that set the bit). Setting it is the right to push; this is the
//!   de-duplication, and why the queue cannot overflow.
//! - `RELEASE`: a dropped `Waker`/`Registration` asks the poller to free the slot.
//! - `generation`: bumped on deregistration so a stale `Signal` is refused.
//!
//! Every change is one CAS on this word, so a signal racing with `poll`'s
//! take either lands before it (reported now) or after it (queued again):
//! no edge is lost.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};

use crate::queue::Queue;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, fence};
use crate::{Error, Interest, Park, Ready, Result, Token};

const READY_MASK: u64 = 0xFF;
const INTEREST_SHIFT: u32 = 8;
const INTEREST_MASK: u64 = 0xFF << INTEREST_SHIFT;
const QUEUED: u64 = 1 << 16;
const RELEASE: u64 = 1 << 17;
const GEN_SHIFT: u32 = 32;

fn generation(state: u64) -> u32 {
    (state >> GEN_SHIFT) as u32
}

fn interest_bits(state: u64) -> u8 {
    ((state & INTEREST_MASK) >> INTEREST_SHIFT) as u8
}

/// The latched readiness bits that the slot's interest lets through.
fn reportable(state: u64) -> u8 {
    match Interest::from_bits(interest_bits(state)) {
        Some(interest) => (state as u8) & Ready::reported_by(interest).bits(),
        None => 0,
    }
}

struct Slot {
    state: AtomicU64,
    token: AtomicUsize,
}

/// What the poller took out of one queued slot.
pub(crate) enum Taken {
    /// Report this event.
    Event(Token, Ready),
    /// Nothing to report (deregistered, or interest filters it out).
    Nothing,
    /// A dropped waker's slot: the registry may reuse it now.
    Free(u32),
}

pub(crate) struct Shared {
    slots: Box<[Slot]>,
    queue: Queue,
    sleeping: AtomicBool,
    park: Box<dyn Park>,
}

impl Shared {
    pub(crate) fn new(capacity: usize, park: Box<dyn Park>) -> Self {
        let slots: Vec<Slot> = (0..capacity)
            .map(|_| Slot {
                state: AtomicU64::new(0),
                token: AtomicUsize::new(0),
            })
            .collect();
        Self {
            slots: slots.into_boxed_slice(),
            queue: Queue::new(capacity),
            sleeping: AtomicBool::new(false),
            park,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Applies `f` to the slot's state with a CAS loop. `f` returns the new
    /// state, or `None` to leave it; the result is `(old, new)` if stored.
    fn update(&self, slot: u32, mut f: impl FnMut(u64) -> Option<u64>) -> Option<(u64, u64)> {
        let cell = &self.slots.get(slot as usize)?.state;
        let mut old = cell.load(Acquire);
        loop {
            let new = f(old)?;
            match cell.compare_exchange_weak(old, new, AcqRel, Acquire) {
                Ok(_) => return Some((old, new)),
                Err(now) => old = now,
            }
        }
    }

    /// Pushes a slot whose QUEUED bit the caller just set, then wakes the
    /// poller if it is (about to be) asleep.
    fn enqueue(&self, slot: u32) {
        let pushed = self.queue.push(slot);
        // Impossible by the QUEUED-bit invariant; the model build (which runs
        // in release mode) checks it too.
        if cfg!(loom) {
            assert!(pushed, "readiness queue overflow");
        }
        debug_assert!(pushed, "readiness queue overflow");
        // Pairs with the fence in `prepare_sleep`: either the poller sees our
        // push, or we see its `sleeping` flag (store-fence-load on both sides).
        fence(SeqCst);
        if self.sleeping.load(Relaxed) {
            self.park.unpark();
        }
    }

    /// Marks a slot registered with `interest` under `token`; returns its generation.
    pub(crate) fn open(&self, slot: u32, token: Token, interest: Interest) -> u32 {
        self.slots[slot as usize].token.store(token.0, Relaxed);
        let interest = u64::from(interest.bits()) << INTEREST_SHIFT;
        // A free slot holds only its generation and maybe QUEUED (a stale
        // queue entry from the previous owner, which stays valid).
        self.update(slot, |s| Some(s | interest))
            .map_or(0, |(_, new)| generation(new))
    }

    /// Changes token and interest of a live registration; queues it if
    /// latched readiness now passes the new interest (epoll's re-arm).
    pub(crate) fn modify(
        &self,
        slot: u32,
        epoch: u32,
        token: Token,
        interest: Interest,
    ) -> Result<()> {
        if !self.is_live(slot, epoch) {
            return Err(Error::NotRegistered);
        }
        self.slots[slot as usize].token.store(token.0, Relaxed);
        let bits = u64::from(interest.bits()) << INTEREST_SHIFT;
        let (mut stale, mut claimed) = (true, false);
        self.update(slot, |s| {
            stale = generation(s) != epoch || interest_bits(s) == 0;
            if stale {
                return None;
            }
            let mut new = (s & !INTEREST_MASK) | bits;
            claimed = new & QUEUED == 0 && reportable(new) != 0;
            if claimed {
                new |= QUEUED;
            }
            Some(new)
        });
        self.finish_claim(stale, claimed, slot)
    }

    /// Common tail of `modify` and `signal`: refuse a stale generation, push
    /// a slot whose QUEUED bit we set.
    fn finish_claim(&self, stale: bool, claimed: bool, slot: u32) -> Result<()> {
        if stale {
            return Err(Error::NotRegistered);
        }
        if claimed {
            self.enqueue(slot);
        }
        Ok(())
    }

    fn is_live(&self, slot: u32, epoch: u32) -> bool {
        let s = self.state(slot);
        generation(s) == epoch && interest_bits(s) != 0
    }

    /// Ends a registration: bumps the generation, clears interest and
    /// readiness, keeps QUEUED (the queue entry, if any, drains harmlessly).
    pub(crate) fn close(&self, slot: u32, epoch: u32) -> Result<()> {
        self.update(slot, |s| {
            (generation(s) == epoch && interest_bits(s) != 0)
                .then(|| (u64::from(epoch.wrapping_add(1)) << GEN_SHIFT) | (s & QUEUED))
        })
        .map(|_| ())
        .ok_or(Error::NotRegistered)
    }

    /// Like [`close`](Self::close) from any core: the poller frees the slot
    /// when it dequeues it (used when a `Waker` or `Registration` is dropped).
    pub(crate) fn release(&self, slot: u32, epoch: u32) {
        let claimed = self.update(slot, |s| {
            (generation(s) == epoch && interest_bits(s) != 0)
                .then(|| (u64::from(epoch.wrapping_add(1)) << GEN_SHIFT) | RELEASE | QUEUED)
        });
        if let Some((old, _)) = claimed
            && old & QUEUED == 0
        {
            self.enqueue(slot);
        }
    }

    /// Latches `ready` on the slot and queues it on a new reportable edge.
    pub(crate) fn signal(&self, slot: u32, epoch: u32, ready: Ready) -> Result<()> {
        // Both flags describe the closure's last run, i.e. the state stored
        // (or left unchanged); `update` may run it several times.
        let (mut stale, mut claimed) = (true, false);
        self.update(slot, |s| {
            stale = generation(s) != epoch || interest_bits(s) == 0;
            if stale {
                return None;
            }
            let mut new = s | u64::from(ready.bits());
            claimed = new & QUEUED == 0 && reportable(new) != 0;
            if claimed {
                new |= QUEUED;
            }
            (new != s).then_some(new)
        });
        self.finish_claim(stale, claimed, slot)
    }

    fn state(&self, slot: u32) -> u64 {
        self.slots
            .get(slot as usize)
            .map_or(0, |s| s.state.load(Acquire))
    }

    /// Where the queue's producers are now (see `Queue::tail`).
    pub(crate) fn queued_until(&self) -> usize {
        self.queue.tail()
    }

    /// Takes the next queued slot's reportable readiness, clearing those bits
    /// and QUEUED in one CAS. `None` when the queue is (momentarily) empty or
    /// `head` reached `until`.
    pub(crate) fn take(&self, head: &mut usize, until: usize) -> Option<Taken> {
        // Wrap-safe "head < until".
        if (until.wrapping_sub(*head) as isize) <= 0 {
            return None;
        }
        let slot = self.queue.pop(head)?;
        let (old, _) = self.update(slot, |s| {
            if s & RELEASE != 0 {
                return Some(s & !(RELEASE | QUEUED | READY_MASK));
            }
            Some(s & !(QUEUED | u64::from(reportable(s))))
        })?;
        if old & RELEASE != 0 {
            return Some(Taken::Free(slot));
        }
        let ready = reportable(old);
        if ready == 0 {
            return Some(Taken::Nothing);
        }
        let token = Token(self.slots[slot as usize].token.load(Relaxed));
        Some(Taken::Event(token, Ready::from_bits(ready)))
    }

    /// Announces that the poller will park; returns whether it still may
    /// (nothing was queued in the meantime).
    pub(crate) fn prepare_sleep(&self, head: usize) -> bool {
        self.sleeping.store(true, Relaxed);
        // See `enqueue`.
        fence(SeqCst);
        !self.queue.is_ready(head)
    }

    /// Whether a slot is queued past `head` (no side effect).
    pub(crate) fn has_queued(&self, head: usize) -> bool {
        self.queue.is_ready(head)
    }

    pub(crate) fn park(&self, timeout: Option<core::time::Duration>) {
        self.park.park(timeout);
    }

    pub(crate) fn end_sleep(&self) {
        self.sleeping.store(false, Relaxed);
    }
}
