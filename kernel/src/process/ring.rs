//! A process's submission/completion ring pair, as the kernel keeps it:
//! where it is mapped, the frames behind it ([`RingMemory`]), the indices
//! the kernel owns (its own copies, never read back from user memory), and
//! the operations taken from the ring that still wait. The servicing
//! (copying entries in, running them, posting completions) is
//! `syscall::ring`'s.
//!
//! The kernel reaches the ring memory through its frames, pinned in the
//! address space at setup (`vm::AddressSpace::pin`): no page walk, no
//! address-space switch and no fault to fix up per access, and still no
//! Rust reference into it, only volatile copies of words. The frames stay
//! the ones the process sees for as long as the ring exists: the process
//! has no call that unmaps or remaps memory, and the address space refuses
//! to unmap pinned pages; closing the ring's handle unpins and unmaps
//! them after the kernel has let go of them.

use alloc::vec::Vec;
use core::marker::PhantomData;

use percore_abi::Handle;
use percore_abi::ring::{self, Completion, Layout, Submission};

use crate::arch::user;
use crate::mem::{PAGE_SIZE, PhysAddr};
use crate::reactor::Sleep;

/// One submission slot of a [`RingMemory`]: its words are copied out one
/// at a time (each read once, into kernel memory, before it is looked
/// at); the arguments only when the operation needs them.
pub struct SubmissionSlot<'a> {
    at: *mut u64,
    _memory: PhantomData<&'a RingMemory>,
}

impl SubmissionSlot<'_> {
    /// A copy of the word at `index` (0 to 7).
    fn word(&self, index: usize) -> u64 {
        debug_assert!(index < 8);
        // SAFETY: `at` is a 64-byte aligned slot inside a frame pinned for
        // the memory this borrows; `index` is below 8. A copy, never a
        // reference (the process may write the slot at any time).
        unsafe { core::ptr::read_volatile(self.at.add(index)) }
    }

    /// Copies of the number, the flags and the tag.
    pub fn head(&self) -> (u32, u32, u64) {
        let first = self.word(0);
        (first as u32, (first >> 32) as u32, self.word(1))
    }

    /// Copies of the six arguments.
    pub fn args(&self) -> [u64; 6] {
        core::array::from_fn(|i| self.word(2 + i))
    }
}

/// The ring pair's memory as the kernel reaches it: the frames behind
/// `[RING_BASE, RING_BASE + layout.size)`, in order. Every access is a
/// volatile copy of an aligned word that lies within one frame; an offset
/// outside (which the kernel's own, masked indices never make) is `None`.
pub struct RingMemory {
    frames: Vec<PhysAddr>,
    layout: Layout,
}

impl RingMemory {
    /// The memory behind `frames`, laid out as `layout` says (pinned by
    /// the caller for as long as this lives).
    pub fn new(frames: Vec<PhysAddr>, layout: Layout) -> RingMemory {
        RingMemory { frames, layout }
    }

    /// The kernel's pointer to `size` bytes at `offset` (a multiple of
    /// `size`, so within one frame).
    fn at(&self, offset: u64, size: u64) -> Option<*mut u8> {
        if !offset.is_multiple_of(size) {
            return None;
        }
        let frame = *self.frames.get(usize::try_from(offset / PAGE_SIZE).ok()?)?;
        Some(user::frame_ptr(frame).wrapping_add((offset % PAGE_SIZE) as usize))
    }

    /// The 32-bit word at `offset`.
    pub fn load_u32(&self, offset: u64) -> Option<u32> {
        let at = self.at(offset, 4)?;
        // SAFETY: an aligned word inside a frame pinned for this memory;
        // a copy, never a reference (the process may write it at any time).
        Some(unsafe { core::ptr::read_volatile(at.cast::<u32>()) })
    }

    /// Writes the 32-bit word at `offset`.
    pub fn store_u32(&self, offset: u64, value: u32) -> Option<()> {
        let at = self.at(offset, 4)?;
        // SAFETY: as in `load_u32`.
        unsafe { core::ptr::write_volatile(at.cast::<u32>(), value) };
        Some(())
    }

    /// The run of `WORDS`-word slots of the ring at `base` (an offset)
    /// from the slot of free-running index `index` to the end of its frame
    /// or of the ring, whichever comes first.
    fn run<const WORDS: usize>(&self, base: u64, index: u32) -> Option<Run<'_, WORDS>> {
        let size = 8 * WORDS as u64;
        let slot = ring::slot(index, self.layout.order);
        let first = base + size * u64::from(slot);
        let in_frame = (PAGE_SIZE - first % PAGE_SIZE) / size;
        let in_ring = u64::from(self.layout.entries() - slot);
        Some(Run {
            at: self.at(first, size)?.cast::<u64>(),
            len: in_frame.min(in_ring) as u32,
            _memory: PhantomData,
        })
    }

    /// The submission slots from free-running index `index` on that lie
    /// one after the other (to the end of the frame or of the ring).
    pub fn submissions(&self, index: u32) -> Option<Run<'_, 8>> {
        self.run(self.layout.submissions, index)
    }

    /// The completion slots from free-running index `index` on that lie
    /// one after the other (to the end of the frame or of the ring).
    pub fn completions(&self, index: u32) -> Option<Run<'_, 2>> {
        self.run(self.layout.completions, index)
    }

    /// The slot of free-running submission index `index`, to copy words
    /// from.
    pub fn submission(&self, index: u32) -> Option<SubmissionSlot<'_>> {
        self.submissions(index)?.submission(0)
    }

    /// A copy of the submission at free-running index `index`.
    pub fn read_submission(&self, index: u32) -> Option<Submission> {
        let slot = self.submission(index)?;
        let (op, flags, user_data) = slot.head();
        Some(Submission {
            op,
            flags,
            user_data,
            args: slot.args(),
        })
    }

    /// Writes `completion` in the slot of free-running completion index
    /// `index`.
    pub fn write_completion(&self, index: u32, completion: Completion) -> Option<()> {
        self.completions(index)?.write(0, completion)
    }
}

/// Consecutive slots of one ring inside one frame of a [`RingMemory`]:
/// `len` of them from `at`, `WORDS` words each.
pub struct Run<'a, const WORDS: usize> {
    at: *mut u64,
    len: u32,
    _memory: PhantomData<&'a RingMemory>,
}

impl<const WORDS: usize> Run<'_, WORDS> {
    /// Slots in the run.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the run has no slot.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first word of slot `i` (below `len`).
    fn slot(&self, i: u32) -> Option<*mut u64> {
        // `at` plus `len` slots stays inside one pinned frame.
        (i < self.len).then(|| self.at.wrapping_add(i as usize * WORDS))
    }
}

impl<'a> Run<'a, 8> {
    /// Submission slot `i` of the run, to copy words from.
    pub fn submission(&self, i: u32) -> Option<SubmissionSlot<'a>> {
        Some(SubmissionSlot {
            at: self.slot(i)?,
            _memory: PhantomData,
        })
    }
}

impl Run<'_, 2> {
    /// Writes `completion` in slot `i` of the run.
    pub fn write(&self, i: u32, completion: Completion) -> Option<()> {
        let at = self.slot(i)?;
        // SAFETY: two aligned words of a slot inside a pinned frame; no
        // reference to them is made.
        unsafe {
            core::ptr::write_volatile(at, completion.user_data);
            core::ptr::write_volatile(at.add(1), completion.result);
        }
        Some(())
    }
}

/// An operation that waits, with its arguments already checked (through
/// either way in).
pub enum Blocked {
    Sleep(Sleep),
    /// `recv(handle, ptr, len)`.
    Recv {
        handle: Handle,
        ptr: u64,
        len: u64,
    },
    /// `wait(timer)`.
    Wait(Handle),
    /// `poll_wait(ptr, capacity, timeout)`: `None` waits with no timeout.
    PollWait {
        ptr: u64,
        capacity: u64,
        timeout: Option<Sleep>,
    },
}

/// One operation taken from the ring and not completed yet.
pub struct InFlight {
    /// The submission's tag, returned in its completion.
    pub user_data: u64,
    pub op: Blocked,
}

/// The kernel's side of a ring pair.
pub struct Ring {
    /// The handle that names the pair (closing it unmaps them).
    pub handle: Handle,
    /// Mapped at `percore_abi::ring::RING_BASE`, `layout.size` bytes.
    pub layout: Layout,
    /// Its frames, pinned.
    pub memory: RingMemory,
    /// The next submission the kernel takes.
    pub sq_head: u32,
    /// The next completion slot the kernel fills.
    pub cq_tail: u32,
    /// Taken, waiting; each holds a completion slot promised to it.
    pub in_flight: Vec<InFlight>,
    /// Whether the kernel has found nothing to take for a while: it then
    /// looks only at full slices until the program calls `ring_enter`.
    pub asleep: bool,
    /// When a look last took a submission (ns since boot).
    pub last_taken: u64,
    /// Submissions the quick part of the `ring_enter` call going on took
    /// before it found one to start (the rest of the call takes at most
    /// `to_submit` less these).
    pub quick_taken: u32,
}

impl Ring {
    pub fn new(handle: Handle, layout: Layout, memory: RingMemory) -> Ring {
        Ring {
            handle,
            layout,
            memory,
            sq_head: 0,
            cq_tail: 0,
            in_flight: Vec::new(),
            asleep: true,
            last_taken: 0,
            quick_taken: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::user::Access;
    use crate::process::vm::AddressSpace;
    use percore_abi::ring::RING_BASE;
    use percore_abi::{Error, Sys, encode};

    /// A ring pair of 64 entries mapped in `space`, and its memory.
    fn mapped(space: &mut AddressSpace) -> RingMemory {
        let layout = Layout::new(64).unwrap();
        space
            .map_zeroed(RING_BASE, layout.size, Access::ReadWrite)
            .unwrap();
        RingMemory::new(space.pin(RING_BASE, layout.size).unwrap(), layout)
    }

    #[test]
    fn the_frames_hold_what_the_process_sees() {
        let mut space = AddressSpace::new().unwrap();
        let memory = mapped(&mut space);
        let entry = Submission::new(Sys::Clock, 0xfeed, [1, 2, 3, 4, 5, u64::MAX]);
        let mut raw = entry.to_bytes();
        raw[4] = 9; // flags: the copy keeps what the process wrote
        // Index 66 of a 64-entry ring is slot 2.
        space.write(RING_BASE + PAGE_SIZE + 128, &raw).unwrap();
        let copied = memory.read_submission(66).unwrap();
        assert_eq!(copied, Submission { flags: 9, ..entry });
        let done = Completion {
            user_data: 7,
            result: encode(Err(Error::NoSys)),
        };
        memory.write_completion(u32::MAX, done).unwrap();
        memory.store_u32(68, 0x1234_5678).unwrap();
        assert_eq!(memory.load_u32(68), Some(0x1234_5678));
        space.activate();
        let mut back = [0u8; 16];
        // Index u32::MAX is slot 63.
        let at = RING_BASE + 2 * PAGE_SIZE + 63 * 16;
        // SAFETY: a simulated copy from the active table.
        let left = unsafe { user::copy_from_user(&mut back, at) };
        assert_eq!((left, back), (0, done.to_bytes()));
        let mut word = [0u8; 4];
        // SAFETY: as above.
        let left = unsafe { user::copy_from_user(&mut word, RING_BASE + 68) };
        assert_eq!((left, u32::from_le_bytes(word)), (0, 0x1234_5678));
    }

    #[test]
    fn runs_end_at_the_frame_or_the_ring() {
        let mut space = AddressSpace::new().unwrap();
        let memory = mapped(&mut space);
        // 64 submissions fill one frame: a run goes to the ring's end.
        assert_eq!(memory.submissions(0).unwrap().len(), 64);
        assert_eq!(memory.submissions(70).unwrap().len(), 58);
        assert_eq!(memory.submissions(u32::MAX).unwrap().len(), 1);
        assert_eq!(memory.completions(60).unwrap().len(), 4);
        let run = memory.completions(62).unwrap();
        let done = Completion {
            user_data: 1,
            result: 2,
        };
        assert_eq!(run.write(1, done), Some(()));
        assert_eq!(run.write(2, done), None, "past the run");
        assert!(memory.submissions(0).unwrap().submission(64).is_none());
        let mut space = AddressSpace::new().unwrap();
        let layout = Layout::new(256).unwrap();
        space
            .map_zeroed(RING_BASE, layout.size, Access::ReadWrite)
            .unwrap();
        let big = RingMemory::new(space.pin(RING_BASE, layout.size).unwrap(), layout);
        // 256 submissions span four frames: a run ends at its frame's end.
        assert_eq!(big.submissions(0).unwrap().len(), 64);
        assert_eq!(big.submissions(100).unwrap().len(), 28);
        assert_eq!(big.submissions(255).unwrap().len(), 1);
        assert_eq!(big.completions(10).unwrap().len(), 246);
        assert_eq!(big.read_submission(300), big.read_submission(44));
    }

    #[test]
    fn offsets_outside_or_misaligned_are_refused() {
        let mut space = AddressSpace::new().unwrap();
        let memory = mapped(&mut space);
        assert_eq!(memory.load_u32(3 * PAGE_SIZE), None);
        assert_eq!(memory.load_u32(u64::MAX - 3), None);
        assert_eq!(memory.load_u32(2), None);
        assert_eq!(memory.store_u32(3 * PAGE_SIZE - 4, 1), Some(()));
        // Fewer frames than the layout needs: slots past them are refused.
        let layout = Layout::new(64).unwrap();
        let short = RingMemory::new(space.pin(RING_BASE, PAGE_SIZE).unwrap(), layout);
        assert!(short.submission(0).is_none());
        assert!(short.write_completion(0, Completion::default()).is_none());
        assert!(memory.submission(0).is_some());
    }
}
