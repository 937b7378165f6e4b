//! The per-process submission and completion rings (the second way into
//! the kernel, the same operations as the syscalls): their layout in the
//! shared memory, and the index protocol both sides keep.
//!
//! A process asks for a ring pair with [`Sys::RingSetup`](crate::Sys::RingSetup);
//! the kernel maps it read-write at [`RING_BASE`] as [`Layout`] says. The
//! process writes [`Submission`]s and advances the submission tail; the
//! kernel, on each turn its core's reactor gives the process, copies each
//! new entry into kernel memory *before* looking at it, runs it as the
//! syscall `Submission::op` with the same arguments (through the same
//! kernel functions), and posts a [`Completion`] carrying `user_data` back.
//!
//! The indices in a [`RingHeader`] are free-running `u32`s that wrap at
//! 2^32; a slot is an index masked by the ring's size ([`slot`]). The
//! kernel never reads back what it owns (the submission head, the
//! completion tail: it keeps its own copies) and treats what the program
//! owns as hostile: [`plan`] checks them and says how many submissions may
//! be taken now. It takes a submission only when a completion slot is
//! free for it (counting the operations still in flight), so a full
//! completion ring stops the kernel taking submissions (backpressure) and
//! no completion is ever dropped.

use crate::Sys;

/// Where the kernel maps a process's ring pair (one per process).
pub const RING_BASE: u64 = 0x0000_0010_0000_0000;
/// The most entries a ring may have (`order` at most 8).
pub const MAX_ENTRIES: u32 = 256;
/// The page size the layout is rounded to.
const PAGE: u64 = 4096;

/// One operation submitted through the ring: a syscall number and its six
/// arguments, exactly as they would travel in registers.
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::ring::Submission>(), 64);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Submission {
    /// A [`Sys`] number.
    pub op: u32,
    /// Per-entry flags; none are defined yet (must be 0).
    pub flags: u32,
    /// Returned unchanged in the [`Completion`].
    pub user_data: u64,
    pub args: [u64; 6],
}

impl Submission {
    /// An entry for `op` with `args`.
    pub const fn new(op: Sys, user_data: u64, args: [u64; 6]) -> Submission {
        Submission {
            op: op as u32,
            flags: 0,
            user_data,
            args,
        }
    }

    /// The entry as it lies in memory (little-endian).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.op.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.user_data.to_le_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
        }
        bytes
    }

    /// The entry `bytes` hold (what the kernel parses its copy with).
    ///
    /// ```
    /// use percore_abi::{Sys, ring::Submission};
    /// let entry = Submission::new(Sys::Clock, 7, [1, 2, 3, 4, 5, 6]);
    /// assert_eq!(Submission::from_bytes(&entry.to_bytes()), entry);
    /// ```
    pub fn from_bytes(bytes: &[u8; 64]) -> Submission {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let half = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(w)
        };
        Submission {
            op: half(0),
            flags: half(4),
            user_data: word(8),
            args: core::array::from_fn(|i| word(16 + 8 * i)),
        }
    }
}

/// The result of one [`Submission`].
///
/// ```
/// assert_eq!(core::mem::size_of::<percore_abi::ring::Completion>(), 16);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Completion {
    pub user_data: u64,
    /// Encoded as a syscall's `rax` ([`encode`](crate::encode)).
    pub result: u64,
}

impl Completion {
    /// The completion as it lies in memory (little-endian).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.user_data.to_le_bytes());
        bytes[8..].copy_from_slice(&self.result.to_le_bytes());
        bytes
    }
}

/// The shared indices of one ring. The producer writes `tail`, the consumer
/// `head`; both count entries since setup and wrap at 2^32. The submission
/// ring's `flags` carries [`RingHeader::ASLEEP`].
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct RingHeader {
    pub head: u32,
    pub tail: u32,
    pub flags: u32,
    /// log2 of the entry count, written at setup (the kernel keeps its own).
    pub order: u32,
}

impl RingHeader {
    /// The kernel stopped polling the ring: submissions wait until the
    /// program makes one [`Sys::RingEnter`](crate::Sys::RingEnter) call.
    pub const ASLEEP: u32 = 1;
    /// Byte offsets of the fields in the header.
    pub const HEAD: u64 = 0;
    pub const TAIL: u64 = 4;
    pub const FLAGS: u64 = 8;
}

/// Where everything of a ring pair of `2^order` entries each lies, as
/// offsets from [`RING_BASE`]: the first page holds the two headers (the
/// submission ring's at 0, the completion ring's at 64), then the
/// submission entries from the second page on, then the completion
/// entries from the next page boundary on.
///
/// ```
/// use percore_abi::ring::Layout;
/// let layout = Layout::new(64).unwrap();
/// assert_eq!((layout.submissions, layout.completions, layout.size), (4096, 8192, 12288));
/// assert!(Layout::new(3).is_none() && Layout::new(512).is_none() && Layout::new(0).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// log2 of the entry count.
    pub order: u32,
    /// Offset of the submission ring's header.
    pub submission_header: u64,
    /// Offset of the completion ring's header.
    pub completion_header: u64,
    /// Offset of the first [`Submission`].
    pub submissions: u64,
    /// Offset of the first [`Completion`].
    pub completions: u64,
    /// Bytes mapped in all (a multiple of the page size).
    pub size: u64,
}

impl Layout {
    /// The layout of rings of `entries` entries (a power of two from 1 to
    /// [`MAX_ENTRIES`]).
    pub fn new(entries: u64) -> Option<Layout> {
        if entries == 0 || entries > u64::from(MAX_ENTRIES) || !entries.is_power_of_two() {
            return None;
        }
        let round = |bytes: u64| bytes.div_ceil(PAGE) * PAGE;
        let submissions = PAGE;
        let completions = submissions + round(entries * 64);
        Some(Layout {
            order: entries.trailing_zeros(),
            submission_header: 0,
            completion_header: 64,
            submissions,
            completions,
            size: completions + round(entries * 16),
        })
    }

    /// Entries in each ring.
    pub const fn entries(&self) -> u32 {
        1 << self.order
    }
}

/// The slot of free-running index `index` in a ring of `2^order` entries.
///
/// ```
/// assert_eq!(percore_abi::ring::slot(u32::MAX, 3), 7);
/// assert_eq!(percore_abi::ring::slot(8, 3), 0);
/// ```
pub const fn slot(index: u32, order: u32) -> u32 {
    index & ((1u32 << order) - 1)
}

/// What the program did to a ring's indices that no well-behaved program
/// does; the kernel ends the process with this as its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corrupt {
    /// The submission tail is more than a ring's worth ahead of the
    /// kernel's head (or behind it).
    SubmissionTail { head: u32, tail: u32, entries: u32 },
    /// The completion head is ahead of the kernel's tail, or so far behind
    /// it that the kernel's completions and the ones still in flight would
    /// not fit.
    CompletionHead {
        head: u32,
        tail: u32,
        in_flight: u32,
        entries: u32,
    },
    /// The ring's memory could not be read or written.
    Unreachable,
}

impl core::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Corrupt::SubmissionTail {
                head,
                tail,
                entries,
            } => write!(
                f,
                "corrupt submission ring: tail {tail} is {} past head {head} (ring of {entries})",
                tail.wrapping_sub(head) as i32
            ),
            Corrupt::CompletionHead {
                head,
                tail,
                in_flight,
                entries,
            } => write!(
                f,
                "corrupt completion ring: head {head} against tail {tail} with {in_flight} in flight (ring of {entries})"
            ),
            Corrupt::Unreachable => f.write_str("ring memory unreachable"),
        }
    }
}

/// The kernel's side of the index protocol: with its own submission head
/// `sq_head` and completion tail `cq_tail`, `in_flight` operations taken
/// but not completed, and the program's submission tail `sq_tail` and
/// completion head `cq_head` as just read (hostile), how many submissions
/// may be taken now: those the program made, at most as many as there are
/// completion slots neither filled nor promised to an operation in flight.
///
/// ```
/// use percore_abi::ring::{plan, Corrupt};
/// // 5 submitted, 8-entry rings, 2 completions unread, 1 in flight: 5 fit.
/// assert_eq!(plan(10, 15, 100, 98, 1, 3), Ok(5));
/// // The completion ring is full: take nothing (backpressure).
/// assert_eq!(plan(10, 15, 106, 98, 0, 3), Ok(0));
/// // A tail 9 ahead of the head in an 8-entry ring is corrupt.
/// assert!(matches!(plan(10, 19, 0, 0, 0, 3), Err(Corrupt::SubmissionTail { .. })));
/// ```
pub fn plan(
    sq_head: u32,
    sq_tail: u32,
    cq_tail: u32,
    cq_head: u32,
    in_flight: u32,
    order: u32,
) -> Result<u32, Corrupt> {
    let entries = 1u32 << order;
    let submitted = sq_tail.wrapping_sub(sq_head);
    if submitted > entries {
        return Err(Corrupt::SubmissionTail {
            head: sq_head,
            tail: sq_tail,
            entries,
        });
    }
    let unread = cq_tail.wrapping_sub(cq_head);
    let promised = unread.checked_add(in_flight).filter(|p| *p <= entries);
    let Some(promised) = promised else {
        return Err(Corrupt::CompletionHead {
            head: cq_head,
            tail: cq_tail,
            in_flight,
            entries,
        });
    };
    Ok(submitted.min(entries - promised))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn layouts_are_page_aligned_and_disjoint() {
        for order in 0..=8 {
            let l = Layout::new(1 << order).unwrap();
            assert_eq!(l.entries(), 1 << order);
            assert!(l.submissions >= 128);
            assert!(l.submissions + 64 * u64::from(l.entries()) <= l.completions);
            assert!(l.completions + 16 * u64::from(l.entries()) <= l.size);
            assert_eq!(l.size % PAGE, 0);
            assert_eq!(l.completions % PAGE, 0);
        }
    }

    /// A model of both sides: the program submits and reaps in random
    /// steps, the kernel takes what [`plan`] allows and completes some of
    /// what it took. Nothing is lost, nothing overwritten, no step is
    /// called corrupt, and every submission completes in the end.
    #[derive(Debug, Clone)]
    enum Step {
        Submit(u32),
        Reap(u32),
        Take,
        Complete(u32),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u32..10).prop_map(Step::Submit),
            (0u32..10).prop_map(Step::Reap),
            Just(Step::Take),
            (0u32..10).prop_map(Step::Complete),
        ]
    }

    proptest! {
        #[test]
        fn a_well_behaved_program_loses_nothing(
            order in 0u32..5,
            start in any::<u32>(),
            steps in proptest::collection::vec(step(), 1..200),
        ) {
            let entries = 1u32 << order;
            // Both sides start at the same (arbitrary) count: wrap-around is covered.
            let (mut sq_head, mut sq_tail, mut cq_head, mut cq_tail) = (start, start, start, start);
            let mut in_flight: u32 = 0;
            let mut completion_slots = vec![None::<u32>; entries as usize];
            let (mut submitted, mut reaped) = (0u32, 0u32);
            let mut next_tag = 0u32;
            let mut completed_tags = Vec::new();
            let mut queue = std::collections::VecDeque::new();
            for step in steps {
                match step {
                    Step::Submit(n) => {
                        let room = entries - sq_tail.wrapping_sub(sq_head);
                        let n = n.min(room);
                        sq_tail = sq_tail.wrapping_add(n);
                        submitted += n;
                    }
                    Step::Reap(n) => {
                        let n = n.min(cq_tail.wrapping_sub(cq_head));
                        for _ in 0..n {
                            let s = slot(cq_head, order) as usize;
                            completed_tags.push(completion_slots[s].take().expect("a completion"));
                            cq_head = cq_head.wrapping_add(1);
                        }
                        reaped += n;
                    }
                    Step::Take => {
                        let take = plan(sq_head, sq_tail, cq_tail, cq_head, in_flight, order).unwrap();
                        for _ in 0..take {
                            queue.push_back(next_tag);
                            next_tag += 1;
                        }
                        sq_head = sq_head.wrapping_add(take);
                        in_flight += take;
                    }
                    Step::Complete(n) => {
                        for _ in 0..n.min(in_flight) {
                            let s = slot(cq_tail, order) as usize;
                            prop_assert!(completion_slots[s].is_none(), "a completion overwritten");
                            completion_slots[s] = queue.pop_front();
                            cq_tail = cq_tail.wrapping_add(1);
                            in_flight -= 1;
                        }
                    }
                }
                prop_assert!(cq_tail.wrapping_sub(cq_head) + in_flight <= entries);
            }
            // Drain: the kernel completes, the program reaps, until all is done.
            while reaped < submitted {
                let take = plan(sq_head, sq_tail, cq_tail, cq_head, in_flight, order).unwrap();
                sq_head = sq_head.wrapping_add(take);
                for _ in 0..take {
                    queue.push_back(next_tag);
                    next_tag += 1;
                }
                in_flight += take;
                while in_flight > 0 {
                    let s = slot(cq_tail, order) as usize;
                    completion_slots[s] = queue.pop_front();
                    cq_tail = cq_tail.wrapping_add(1);
                    in_flight -= 1;
                }
                while cq_tail != cq_head {
                    let s = slot(cq_head, order) as usize;
                    completed_tags.push(completion_slots[s].take().expect("a completion"));
                    cq_head = cq_head.wrapping_add(1);
                    reaped += 1;
                }
            }
            prop_assert_eq!(completed_tags, (0..submitted).collect::<Vec<_>>());
        }

        #[test]
        fn hostile_indices_never_take_more_than_fits(
            order in 0u32..9,
            sq_head in any::<u32>(),
            sq_tail in any::<u32>(),
            cq_tail in any::<u32>(),
            cq_head in any::<u32>(),
            in_flight in 0u32..300,
        ) {
            let entries = 1u32 << order;
            match plan(sq_head, sq_tail, cq_tail, cq_head, in_flight, order) {
                Ok(take) => {
                    prop_assert!(take <= sq_tail.wrapping_sub(sq_head));
                    prop_assert!(take <= entries);
                    let promised = cq_tail.wrapping_sub(cq_head) + in_flight + take;
                    prop_assert!(promised <= entries);
                    for i in 0..take {
                        prop_assert!(slot(sq_head.wrapping_add(i), order) < entries);
                    }
                }
                Err(Corrupt::SubmissionTail { .. }) => {
                    prop_assert!(sq_tail.wrapping_sub(sq_head) > entries);
                }
                Err(Corrupt::CompletionHead { .. }) => {
                    prop_assert!(u64::from(cq_tail.wrapping_sub(cq_head)) + u64::from(in_flight) > u64::from(entries));
                }
                Err(Corrupt::Unreachable) => prop_assert!(false, "plan reads no memory"),
            }
        }
    }
}
