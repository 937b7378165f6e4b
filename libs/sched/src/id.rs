//! Strong newtypes for the two numbers every scheduler call carries: which
//! task ([`TaskId`]) and how urgent it is ([`Priority`]).
//!
//! A [`TaskId`] is an index into the core's task table plus a generation
//! count. The generation is bumped every time a slot is freed, so an id kept
//! by a stale waker after its task was reaped (and the slot reused) is
//! rejected instead of waking an unrelated task.

use core::fmt;

/// Identifies one task on one core: slot index plus generation.
///
/// The kernel keeps the task's future in its own slab at [`TaskId::index`].
///
/// ```
/// use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
///
/// let mut tree = TaskTree::new(RoundRobin::new());
/// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// assert_eq!(id.index(), 0);
/// assert_eq!(id.generation(), 0);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    index: u32,
    generation: u32,
}

impl TaskId {
    pub(crate) const fn new(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }

    /// The slot index: dense, starts at 0, reused after a task is reaped.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let a = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// let b = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// assert_eq!((a.index(), b.index()), (0, 1));
    /// ```
    pub const fn index(self) -> usize {
        self.index as usize
    }

    /// How many times the slot was freed before this task took it.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let a = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// tree.finish(a).unwrap();
    /// tree.reap(a).unwrap();
    /// let b = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// assert_eq!(b.index(), a.index());
    /// assert_eq!(b.generation(), a.generation() + 1);
    /// ```
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the id into one `u64` (generation high, index low), e.g. to use
    /// it as a readiness `Token` or in an intercore message.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, TaskId, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// assert_eq!(TaskId::from_raw(id.to_raw()), id);
    /// ```
    pub const fn to_raw(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// Unpacks [`to_raw`](Self::to_raw). Any value is accepted: a value that
    /// names no live task is refused by the tree (`StateError::NoSuchTask`),
    /// so a forged or stale id cannot touch another task.
    ///
    /// ```
    /// # use percore_sched::{Priority, RoundRobin, StateError, TaskId, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::new());
    /// tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// let forged = TaskId::from_raw(7 << 32); // slot 0, generation 7
    /// assert_eq!(tree.wake(forged), Err(StateError::NoSuchTask(forged)));
    /// ```
    pub const fn from_raw(raw: u64) -> Self {
        // Truncation is the unpacking: low half index, high half generation.
        Self::new(raw as u32, (raw >> 32) as u32)
    }

    pub(crate) const fn slot(self) -> u32 {
        self.index
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({}v{})", self.index, self.generation)
    }
}

/// A priority level in `0..=63`; **higher is more urgent**.
///
/// 64 levels fit one `u64` occupancy bitmap, which is what makes strict
/// priority selection O(1) (one `leading_zeros`). Under the fair discipline the
/// level maps to a weight instead (see [`Priority::weight`]).
///
/// ```
/// use percore_sched::Priority;
///
/// assert_eq!(Priority::new(70), None);
/// let p = Priority::new(40).unwrap();
/// assert!(p > Priority::DEFAULT);
/// assert_eq!(p.get(), 40);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Priority(u8);

impl Priority {
    /// Number of distinct levels.
    pub const LEVELS: usize = 64;
    /// The least urgent level (idle work).
    pub const MIN: Self = Self(0);
    /// The middle level, for ordinary tasks.
    pub const DEFAULT: Self = Self(32);
    /// The most urgent level.
    pub const MAX: Self = Self(63);

    /// Returns the level, or `None` when `level` is not below [`Priority::LEVELS`].
    ///
    /// ```
    /// # use percore_sched::Priority;
    /// assert_eq!(Priority::new(63), Some(Priority::MAX));
    /// assert_eq!(Priority::new(64), None);
    /// ```
    pub const fn new(level: u8) -> Option<Self> {
        if (level as usize) < Self::LEVELS {
            Some(Self(level))
        } else {
            None
        }
    }

    /// The numeric level.
    ///
    /// ```
    /// # use percore_sched::Priority;
    /// assert_eq!(Priority::MAX.get(), 63);
    /// ```
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The fair-share weight of this level, as in Linux CFS: each level is
    /// worth 1.25x the CPU of the level below it, and [`Priority::DEFAULT`]
    /// weighs [`Priority::DEFAULT_WEIGHT`].
    ///
    /// ```
    /// # use percore_sched::Priority;
    /// let up = Priority::new(33).unwrap();
    /// assert_eq!(Priority::DEFAULT.weight(), Priority::DEFAULT_WEIGHT);
    /// assert_eq!(up.weight(), Priority::DEFAULT_WEIGHT * 5 / 4);
    /// assert!(Priority::MIN.weight() > 0);
    /// ```
    pub const fn weight(self) -> u64 {
        WEIGHTS[self.0 as usize]
    }

    /// Weight of [`Priority::DEFAULT`]: 2^20, so that even
    /// `DEFAULT_WEIGHT * 0.8^32` (level 0) keeps three significant digits.
    pub const DEFAULT_WEIGHT: u64 = 1 << 20;
}

/// `WEIGHTS[l] = DEFAULT_WEIGHT * 1.25^(l - 32)`, computed in integers: walk
/// up from level 32 multiplying by 5/4 and down dividing by 5/4 (x * 4 / 5).
/// Level 63 is about 2^20 * 1009 (~2^30), far from overflowing `u64` even
/// when multiplied by a nanosecond charge.
const WEIGHTS: [u64; Priority::LEVELS] = {
    let mut w = [0u64; Priority::LEVELS];
    let mid = Priority::DEFAULT.0 as usize;
    w[mid] = Priority::DEFAULT_WEIGHT;
    let mut l = mid + 1;
    while l < Priority::LEVELS {
        w[l] = w[l - 1] * 5 / 4;
        l += 1;
    }
    let mut l = mid;
    while l > 0 {
        w[l - 1] = w[l] * 4 / 5;
        l -= 1;
    }
    w
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_increase_strictly() {
        for l in 1..Priority::LEVELS {
            assert!(WEIGHTS[l] > WEIGHTS[l - 1], "level {l}");
        }
        assert!(WEIGHTS[0] > 500);
        assert!(WEIGHTS[63] < 1 << 31);
    }
}
