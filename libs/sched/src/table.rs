//! The slab of task records, indexed by slot, with generation-checked access.
//!
//! Freed slots go on a LIFO free list so the most recently used (cache-warm)
//! slot is reused first; reuse bumps the slot's generation, so ids of reaped
//! tasks stop matching. Generations wrap after 2^32 reuses of one slot, which
//! is the (accepted) limit of the stale-id check.

use alloc::vec::Vec;

use crate::{Task, TaskId, TaskParams};

#[derive(Debug)]
struct Slot {
    generation: u32,
    task: Option<Task>,
}

#[derive(Debug)]
pub(crate) struct TaskTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    limit: usize,
}

impl TaskTable {
    /// `limit` is the most live tasks ever held; it is also the preallocation.
    pub(crate) fn with_limit(limit: usize, prealloc: bool) -> Self {
        let cap = if prealloc { limit } else { 0 };
        Self {
            slots: Vec::with_capacity(cap),
            free: Vec::with_capacity(cap),
            len: 0,
            limit,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Takes a free slot and stores a new Ready task there; `None` when full.
    pub(crate) fn insert(&mut self, params: TaskParams) -> Option<&mut Task> {
        if self.len >= self.limit {
            return None;
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                // Slot indices are u32 so that ids stay 8 bytes.
                let index = u32::try_from(self.slots.len()).ok()?;
                self.slots.push(Slot {
                    generation: 0,
                    task: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        self.len += 1;
        Some(
            slot.task
                .insert(Task::new(TaskId::new(index, slot.generation), params)),
        )
    }

    /// Frees the slot of `id`, bumping its generation; returns the record.
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Task> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        let task = slot.task.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.slot());
        self.len -= 1;
        Some(task)
    }

    pub(crate) fn get(&self, id: TaskId) -> Option<&Task> {
        let slot = self.slots.get(id.index())?;
        slot.task.as_ref().filter(|t| t.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        let slot = self.slots.get_mut(id.index())?;
        slot.task.as_mut().filter(|t| t.id == id)
    }

    /// The live task records, by slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Task> {
        self.slots.iter().filter_map(|s| s.task.as_ref())
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Task> {
        self.slots.iter_mut().filter_map(|s| s.task.as_mut())
    }
}
