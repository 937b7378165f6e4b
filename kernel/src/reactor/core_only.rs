//! `CoreOnly<T>`: state that belongs to one core and is reached from a table
//! shared by all cores.
//!
//! The reactor of core N keeps its task tree, timer wheel and bus endpoint in
//! a static per-core table so that code running on core N (a task, a waker)
//! can find them. Only core N may touch them, and never from interrupt
//! context; a `RefCell` inside catches overlapping borrows (a bug) with a
//! panic instead of undefined behaviour, and `borrow_mut` checks the core.

use core::cell::{RefCell, RefMut};

use crate::arch::{CoreId, cpu};

pub struct CoreOnly<T> {
    owner: CoreId,
    cell: RefCell<T>,
}

// SAFETY: the cell is only ever borrowed on its owner core (checked in
// `borrow_mut`), from non-interrupt context, so no two cores access it.
unsafe impl<T: Send> Sync for CoreOnly<T> {}

impl<T> CoreOnly<T> {
    pub fn new(owner: CoreId, value: T) -> Self {
        CoreOnly {
            owner,
            cell: RefCell::new(value),
        }
    }

    /// Borrows the state; panics if called on another core or while borrowed.
    pub fn borrow_mut(&self) -> RefMut<'_, T> {
        assert_eq!(
            cpu::core_id(),
            self.owner,
            "core-local state used from another core"
        );
        self.cell.borrow_mut()
    }
}
