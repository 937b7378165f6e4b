//! The submission/completion rings from the program's side
//! (`percore_abi::ring` has the layout and the protocol).
//!
//! ```ignore
//! let mut ring = Ring::setup(64)?;
//! ring.submit(Submission::new(Sys::Clock, 1, [0; 6]))?;
//! ring.submit_and_wait(1)?;
//! for completion in ring.completions() { /* completion.user_data == 1 */ }
//! ```
//!
//! The kernel takes submissions on its own while it is awake (no trap);
//! [`Ring::flush`] makes the one `ring_enter` call when it has marked
//! itself asleep, [`Ring::submit_and_wait`] always enters and waits.

use core::sync::atomic::{AtomicU32, Ordering};

use percore_abi::ring::{Completion, Layout, RING_BASE, RingHeader, Submission, slot};
use percore_abi::{Error, Handle, Sys};

use crate::sys;

/// The process's ring pair (one per process).
pub struct Ring {
    handle: Handle,
    layout: Layout,
    /// The program's own copies of the indices it owns.
    sq_tail: u32,
    cq_head: u32,
    /// The kernel's submission head as last read: the ring has room for
    /// at least `entries - (sq_tail - sq_head_seen)` more (the head only
    /// moves on), so it is read again only when that is 0.
    sq_head_seen: u32,
}

/// A 32-bit word of the shared memory at `offset` from [`RING_BASE`].
#[inline]
fn word(offset: u64) -> &'static AtomicU32 {
    // SAFETY: the kernel maps the ring pair at RING_BASE, read-write, for
    // as long as the handle is open (a `Ring` holds it); the words are
    // 4-byte aligned and only ever accessed atomically.
    unsafe { AtomicU32::from_ptr((RING_BASE + offset) as *mut u32) }
}

impl Ring {
    /// Maps a ring pair of `entries` entries each (a power of two up to
    /// `percore_abi::ring::MAX_ENTRIES`).
    pub fn setup(entries: u32) -> Result<Ring, Error> {
        let layout = Layout::new(u64::from(entries)).ok_or(Error::InvalidArgument)?;
        let handle = sys::call(Sys::RingSetup, u64::from(entries), 0, 0).map(Handle::from_raw)?;
        Ok(Ring {
            handle,
            layout,
            sq_tail: 0,
            cq_head: 0,
            sq_head_seen: 0,
        })
    }

    pub fn handle(&self) -> Handle {
        self.handle
    }

    #[inline]
    pub fn entries(&self) -> u32 {
        self.layout.entries()
    }

    #[inline]
    fn sq(&self, field: u64) -> &'static AtomicU32 {
        word(self.layout.submission_header + field)
    }

    #[inline]
    fn cq(&self, field: u64) -> &'static AtomicU32 {
        word(self.layout.completion_header + field)
    }

    /// Submissions the kernel has not taken yet.
    #[inline]
    pub fn pending(&self) -> u32 {
        self.sq_tail
            .wrapping_sub(self.sq(RingHeader::HEAD).load(Ordering::Acquire))
    }

    /// Whether the kernel marked itself asleep (submissions then wait for
    /// a `ring_enter`).
    pub fn asleep(&self) -> bool {
        self.sq(RingHeader::FLAGS).load(Ordering::Acquire) & RingHeader::ASLEEP != 0
    }

    /// Queues `entry`; hands it back when the submission ring is full.
    #[inline]
    pub fn submit(&mut self, entry: Submission) -> Result<(), Submission> {
        if self.sq_tail.wrapping_sub(self.sq_head_seen) >= self.entries() {
            self.sq_head_seen = self.sq(RingHeader::HEAD).load(Ordering::Acquire);
            if self.sq_tail.wrapping_sub(self.sq_head_seen) >= self.entries() {
                return Err(entry);
            }
        }
        let at = RING_BASE
            + self.layout.submissions
            + 64 * u64::from(slot(self.sq_tail, self.layout.order));
        let words = [
            u64::from(entry.op) | u64::from(entry.flags) << 32,
            entry.user_data,
            entry.args[0],
            entry.args[1],
            entry.args[2],
            entry.args[3],
            entry.args[4],
            entry.args[5],
        ];
        for (i, word) in words.into_iter().enumerate() {
            // SAFETY: a word of a slot of the mapped submission ring that
            // the kernel does not read until the tail below covers it
            // (written word by word, the layout `Submission::to_bytes` gives).
            unsafe { core::ptr::write_volatile((at as *mut u64).add(i), word) };
        }
        self.sq_tail = self.sq_tail.wrapping_add(1);
        self.sq(RingHeader::TAIL)
            .store(self.sq_tail, Ordering::Release);
        Ok(())
    }

    /// `ring_enter`: the kernel takes up to `to_submit` submissions now,
    /// and the call waits until `min_complete` completions are there (or
    /// nothing is in flight); returns how many are.
    pub fn enter(&mut self, to_submit: u32, min_complete: u32) -> Result<u32, Error> {
        sys::call(
            Sys::RingEnter,
            self.handle.raw(),
            u64::from(min_complete),
            u64::from(to_submit),
        )
        .map(|n| n as u32)
    }

    /// Makes sure the kernel sees the submissions: one `ring_enter` if it
    /// is asleep, no trap otherwise.
    pub fn flush(&mut self) -> Result<(), Error> {
        let pending = self.pending();
        if pending > 0 && self.asleep() {
            self.enter(pending, 0)?;
        }
        Ok(())
    }

    /// Enters with every pending submission and waits for `min_complete`
    /// completions.
    pub fn submit_and_wait(&mut self, min_complete: u32) -> Result<u32, Error> {
        let pending = self.pending();
        self.enter(pending, min_complete)
    }

    /// Completions there to read now.
    #[inline]
    pub fn ready(&self) -> u32 {
        self.cq(RingHeader::TAIL)
            .load(Ordering::Acquire)
            .wrapping_sub(self.cq_head)
    }

    /// The completions there now, oldest first; each read frees its slot.
    pub fn completions(&mut self) -> Completions<'_> {
        Completions { ring: self }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let _ = sys::close(self.handle);
    }
}

/// What [`Ring::completions`] returns.
pub struct Completions<'a> {
    ring: &'a mut Ring,
}

impl Iterator for Completions<'_> {
    type Item = Completion;

    #[inline]
    fn next(&mut self) -> Option<Completion> {
        let ring = &mut *self.ring;
        if ring.ready() == 0 {
            return None;
        }
        let at = RING_BASE
            + ring.layout.completions
            + 16 * u64::from(slot(ring.cq_head, ring.layout.order));
        // SAFETY: a slot below the kernel's completion tail: written, and
        // not rewritten until the head below passes it.
        let completion = unsafe { core::ptr::read_volatile(at as *const Completion) };
        ring.cq_head = ring.cq_head.wrapping_add(1);
        ring.cq(RingHeader::HEAD)
            .store(ring.cq_head, Ordering::Release);
        Some(completion)
    }
}
