//! Earliest deadline first: an indexed binary min-heap keyed by
//! `(deadline, arrival sequence)`.
//!
//! The heap lives in a `Vec` (children of `i` at `2i+1`, `2i+2`); `pos`
//! maps a task slot to its heap index so a task can be removed from the middle
//! in O(log n) (it blocked, it was stolen). The arrival sequence breaks ties,
//! so tasks with equal deadlines (including all tasks with none) run FIFO.

use alloc::vec::Vec;

use crate::{Discipline, Priority, Task, TaskId};

/// Not in the heap.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Entry {
    deadline: u64,
    seq: u64,
    id: TaskId,
    priority: Priority,
}

impl Entry {
    fn key(&self) -> (u64, u64) {
        (self.deadline, self.seq)
    }
}

/// Earliest deadline first (EDF), for real-time cores.
///
/// Selects the ready task with the smallest absolute deadline
/// ([`TaskParams::with_deadline`](crate::TaskParams::with_deadline)); priority
/// is ignored except to choose migration victims. `select` and requeue are
/// O(log n).
///
/// ```
/// use percore_sched::{Deadline, Priority, TaskParams, TaskTree};
///
/// let mut tree = TaskTree::new(Deadline::new());
/// let p = Priority::DEFAULT;
/// let c = tree.spawn(TaskParams::new(p).with_deadline(30)).unwrap();
/// let a = tree.spawn(TaskParams::new(p).with_deadline(10)).unwrap();
/// let b = tree.spawn(TaskParams::new(p).with_deadline(20)).unwrap();
/// assert_eq!(tree.select(), Some(a));
/// assert_eq!(tree.select(), Some(b));
/// assert_eq!(tree.select(), Some(c));
/// ```
#[derive(Debug)]
pub struct Deadline {
    heap: Vec<Entry>,
    pos: Vec<u32>,
    seq: u64,
    quantum: u64,
}

impl Deadline {
    /// Default time slice: 1 ms.
    pub const DEFAULT_QUANTUM_NS: u64 = 1_000_000;

    /// An empty discipline.
    ///
    /// ```
    /// # use percore_sched::{Deadline, Discipline};
    /// assert_eq!(Deadline::new().len(), 0);
    /// ```
    pub const fn new() -> Self {
        Self::with_quantum(Self::DEFAULT_QUANTUM_NS)
    }

    /// An empty discipline whose tasks run `quantum_ns` before preemption.
    ///
    /// ```
    /// # use percore_sched::{Deadline, Priority, TaskParams, TaskTree};
    /// let mut tree = TaskTree::new(Deadline::with_quantum(5));
    /// let id = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
    /// assert_eq!(tree.time_slice(id), Some(5));
    /// ```
    pub const fn with_quantum(quantum_ns: u64) -> Self {
        Self {
            heap: Vec::new(),
            pos: Vec::new(),
            seq: 0,
            quantum: quantum_ns,
        }
    }

    /// Puts `entry` at heap index `i` and records that in `pos`.
    fn place(&mut self, i: usize, entry: Entry) {
        self.pos[entry.id.index()] = i as u32;
        self.heap[i] = entry;
    }

    /// Moves the entry at `i` up while it is smaller than its parent.
    fn sift_up(&mut self, mut i: usize) {
        let entry = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].key() <= entry.key() {
                break;
            }
            self.place(i, self.heap[parent]);
            i = parent;
        }
        self.place(i, entry);
    }

    /// Moves the entry at `i` down while a child is smaller.
    fn sift_down(&mut self, mut i: usize) {
        let entry = self.heap[i];
        let n = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.heap[right].key() < self.heap[left].key() {
                right
            } else {
                left
            };
            if entry.key() <= self.heap[child].key() {
                break;
            }
            self.place(i, self.heap[child]);
            i = child;
        }
        self.place(i, entry);
    }

    /// Removes the entry at heap index `i`: the last entry fills the hole and
    /// moves up or down, whichever restores the heap order.
    fn remove_at(&mut self, i: usize) -> Entry {
        let removed = self.heap.swap_remove(i);
        self.pos[removed.id.index()] = NIL;
        if i < self.heap.len() {
            self.pos[self.heap[i].id.index()] = i as u32;
            if i > 0 && self.heap[i].key() < self.heap[(i - 1) / 2].key() {
                self.sift_up(i);
            } else {
                self.sift_down(i);
            }
        }
        removed
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Self::new()
    }
}

impl Discipline for Deadline {
    fn name(&self) -> &'static str {
        "deadline"
    }

    fn enqueue(&mut self, task: &mut Task) {
        let slot = task.id().index();
        if self.pos.len() <= slot {
            self.pos.resize(slot + 1, NIL);
        }
        let entry = Entry {
            deadline: task.deadline(),
            seq: self.seq,
            id: task.id(),
            priority: task.priority(),
        };
        self.seq += 1;
        self.heap.push(entry);
        self.sift_up(self.heap.len() - 1);
    }

    fn dequeue(&mut self, task: &Task) {
        if let Some(&i) = self.pos.get(task.id().index())
            && i != NIL
        {
            self.remove_at(i as usize);
        }
    }

    fn select(&mut self) -> Option<TaskId> {
        if self.heap.is_empty() {
            None
        } else {
            Some(self.remove_at(0).id)
        }
    }

    fn peek(&self) -> Option<TaskId> {
        self.heap.first().map(|e| e.id)
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn time_slice(&self, _running: &Task) -> u64 {
        self.quantum
    }

    fn preempts(&self, running: &Task) -> bool {
        self.heap
            .first()
            .is_some_and(|e| e.deadline < running.deadline())
    }

    fn visit_ready(&self, priority: Priority, visit: &mut dyn FnMut(TaskId) -> bool) {
        // Leaves hold the latest deadlines, roughly: walk the array backwards.
        for e in self.heap.iter().rev() {
            if e.priority == priority && !visit(e.id) {
                return;
            }
        }
    }

    fn reserve(&mut self, slots: usize) {
        if self.pos.len() < slots {
            self.pos.resize(slots, NIL);
        }
        self.heap.reserve(slots.saturating_sub(self.heap.len()));
    }
}
