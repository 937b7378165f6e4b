//! The synchronisation primitives the rings are built from, switched to
//! [loom]'s model-checked versions under `--cfg loom`.
//!
//! Slot storage stays a plain contiguous array in both builds (so chunks can
//! hand out real slices); under loom every slot access is additionally
//! announced to a per-slot [`SlotTracker`], which lets loom report a data race
//! on a slot exactly as it would for its own `UnsafeCell`.
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
pub(crate) use loom::hint::spin_loop;
#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering, fence,
};

#[cfg(not(loom))]
pub(crate) use alloc::sync::Arc;
#[cfg(not(loom))]
pub(crate) use core::hint::spin_loop;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering, fence,
};

/// Race detector for one slot: a no-op outside loom.
#[cfg(not(loom))]
pub(crate) struct SlotTracker;

#[cfg(not(loom))]
impl SlotTracker {
    /// A tracker for a fresh slot.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        SlotTracker
    }
    /// Announces a shared (read) access to the slot.
    #[inline(always)]
    pub(crate) fn read(&self) {}
    /// Announces an exclusive (write) access to the slot.
    #[inline(always)]
    pub(crate) fn write(&self) {}
}

/// Race detector for one slot: loom checks that every `write` is ordered
/// with every other access by happens-before.
#[cfg(loom)]
pub(crate) struct SlotTracker(loom::cell::UnsafeCell<()>);

#[cfg(loom)]
impl SlotTracker {
    /// A tracker for a fresh slot.
    pub(crate) fn new() -> Self {
        SlotTracker(loom::cell::UnsafeCell::new(()))
    }
    /// Announces a shared (read) access to the slot.
    pub(crate) fn read(&self) {
        self.0.with(|_| ());
    }
    /// Announces an exclusive (write) access to the slot.
    pub(crate) fn write(&self) {
        self.0.with_mut(|_| ());
    }
}
