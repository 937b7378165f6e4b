//! Strict priority with round-robin inside a level: an occupancy bitmap and
//! one intrusive FIFO ring per level. Every operation is O(1).
//!
//! The 64 levels map onto the 64 bits of `occupied`: bit `l` is set exactly
//! when level `l`'s list is non-empty, so the most urgent non-empty level is
//! `63 - occupied.leading_zeros()` (one `lzcnt`). The lists are doubly linked
//! through a side table indexed by task slot (`links`), so removing a task
//! from the middle of a level (it blocked, it was stolen) is O(1) too.

use alloc::vec::Vec;

use crate::{Discipline, Priority, Task, TaskId};

/// End of a list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    generation: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    generation: 0,
};

/// Strict priority, FIFO (round-robin) within a level.
///
/// The most urgent non-empty level always runs; a task that yields goes to the
/// back of its level, so `n` ready tasks of one level each run once every `n`
/// selections of that level (no starvation inside a level; lower levels wait
/// by design).
///
/// ```
/// use percore_sched::{Priority, RoundRobin, TaskParams, TaskTree};
///
/// let mut tree = TaskTree::new(RoundRobin::new());
/// let low = tree.spawn(TaskParams::new(Priority::MIN)).unwrap();
/// let a = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// let b = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
/// let mut order = Vec::new();
/// for _ in 0..4 {
///     let id = tree.select().unwrap();
///     order.push(id);
///     tree.yield_now(id).unwrap();
/// }
/// assert_eq!(order, [a, b, a, b]);
/// // `low` never ran: strict priority.
/// assert_eq!(tree.task(low).unwrap().runtime(), 0);
/// assert_eq!(tree.ready_at(Priority::MIN), 1);
/// ```
#[derive(Debug)]
pub struct RoundRobin {
    occupied: u64,
    heads: [u32; Priority::LEVELS],
    tails: [u32; Priority::LEVELS],
    links: Vec<Link>,
    len: usize,
    quantum: u64,
}

impl RoundRobin {
    /// Default time slice: 1 ms.
    pub const DEFAULT_QUANTUM_NS: u64 = 1_000_000;

    /// An empty discipline with the default quantum.
    ///
    /// ```
    /// # use percore_sched::{Discipline, RoundRobin};
    /// assert!(RoundRobin::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self::with_quantum(Self::DEFAULT_QUANTUM_NS)
    }

    /// An empty discipline whose tasks run `quantum_ns` before preemption.
    ///
    /// ```
    /// # use percore_sched::{RoundRobin, Priority, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(RoundRobin::with_quantum(250_000));
    /// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// assert_eq!(tree.time_slice(id), Some(250_000));
    /// ```
    pub const fn with_quantum(quantum_ns: u64) -> Self {
        Self {
            occupied: 0,
            heads: [NIL; Priority::LEVELS],
            tails: [NIL; Priority::LEVELS],
            links: Vec::new(),
            len: 0,
            quantum: quantum_ns,
        }
    }

    /// The most urgent non-empty level, if any.
    fn top_level(&self) -> Option<usize> {
        if self.occupied == 0 {
            None
        } else {
            Some(63 - self.occupied.leading_zeros() as usize)
        }
    }

    fn unlink(&mut self, slot: u32, level: usize) {
        let Link { prev, next, .. } = self.links[slot as usize];
        match prev {
            NIL => self.heads[level] = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => self.tails[level] = prev,
            n => self.links[n as usize].prev = prev,
        }
        if self.heads[level] == NIL {
            self.occupied &= !(1 << level);
        }
        self.len -= 1;
    }
}

impl Default for RoundRobin {
    fn default() -> Self {
        Self::new()
    }
}

impl Discipline for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn enqueue(&mut self, task: &mut Task) {
        let slot = task.id().slot();
        let level = task.priority().get() as usize;
        if self.links.len() <= slot as usize {
            self.links.resize(slot as usize + 1, UNLINKED);
        }
        let tail = self.tails[level];
        self.links[slot as usize] = Link {
            prev: tail,
            next: NIL,
            generation: task.id().generation(),
        };
        match tail {
            NIL => self.heads[level] = slot,
            t => self.links[t as usize].next = slot,
        }
        self.tails[level] = slot;
        self.occupied |= 1 << level;
        self.len += 1;
    }

    fn dequeue(&mut self, task: &Task) {
        self.unlink(task.id().slot(), task.priority().get() as usize);
    }

    fn select(&mut self) -> Option<TaskId> {
        let level = self.top_level()?;
        let slot = self.heads[level];
        self.unlink(slot, level);
        Some(TaskId::new(slot, self.links[slot as usize].generation))
    }

    fn peek(&self) -> Option<TaskId> {
        let slot = self.heads[self.top_level()?];
        Some(TaskId::new(slot, self.links[slot as usize].generation))
    }

    fn len(&self) -> usize {
        self.len
    }

    fn time_slice(&self, _running: &Task) -> u64 {
        self.quantum
    }

    fn preempts(&self, running: &Task) -> bool {
        self.top_level()
            .is_some_and(|l| l > running.priority().get() as usize)
    }

    fn visit_ready(&self, priority: Priority, visit: &mut dyn FnMut(TaskId) -> bool) {
        // From the tail: those tasks would run last here, so they lose least
        // by moving.
        let mut slot = self.tails[priority.get() as usize];
        while slot != NIL {
            let link = self.links[slot as usize];
            if !visit(TaskId::new(slot, link.generation)) {
                return;
            }
            slot = link.prev;
        }
    }

    fn reserve(&mut self, slots: usize) {
        if self.links.len() < slots {
            self.links.resize(slots, UNLINKED);
        }
    }
}
