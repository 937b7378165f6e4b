//! [`Buffer`]: the preallocated, power-of-two slot array behind the
//! contiguous rings (SPSC, broadcast), and the capacity rule they share.
//!
//! The array starts on a 128-byte boundary (a pair of cache lines, see
//! `cache_pad.rs`), so a run of slots whose byte offset is a multiple of 128
//! never shares a line with the slots before it: the SPSC consumer releases
//! slots in such runs, and the producer refilling them then never writes
//! into the line the consumer is reading.
//!
//! Positions are free-running `usize` counters that are never reduced; the
//! slot of position `p` is `p & mask` (with `capacity = mask + 1` a power of
//! two this equals `p % capacity`, and stays correct when `p` wraps past
//! `usize::MAX`, because `2^64` is a multiple of the capacity). The fill level
//! is `tail.wrapping_sub(head)`, which is also wrap-proof.

use alloc::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crate::error::CapacityError;
use crate::sync::SlotTracker;

/// The largest capacity accepted: `2^(usize::BITS - 2)`, far beyond memory,
/// but it keeps `tail - head` unambiguous.
pub(crate) const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);

/// The capacity rule of every bounded ring: a request is rounded **up** to
/// the next power of two (`3 -> 4`, `1000 -> 1024`); `0` and requests above
/// 2^62 are errors.
///
/// ```
/// use percore_ring::{CapacityError, capacity_for};
/// assert_eq!(capacity_for(3), Ok(4));
/// assert_eq!(capacity_for(1024), Ok(1024));
/// assert_eq!(capacity_for(0), Err(CapacityError::Zero));
/// ```
pub fn capacity_for(requested: usize) -> Result<usize, CapacityError> {
    match requested {
        0 => Err(CapacityError::Zero),
        n if n > MAX_CAPACITY => Err(CapacityError::TooLarge),
        n => Ok(n.next_power_of_two()),
    }
}

/// Alignment of the slot array: two 64-byte cache lines.
const SLOT_ARRAY_ALIGN: usize = 128;

/// A fixed array of possibly-uninitialised slots. It never drops its
/// contents: the ring that owns it knows which slots hold values.
pub(crate) struct Buffer<T> {
    ptr: *mut MaybeUninit<T>,
    /// What `ptr` was allocated with: `capacity` slots, 128-byte aligned.
    layout: Layout,
    mask: usize,
    trackers: Box<[SlotTracker]>,
}

impl<T> Buffer<T> {
    /// Allocates `capacity` (a power of two) uninitialised slots;
    /// `TooLarge` if they would not fit the address space.
    pub(crate) fn new(capacity: usize) -> Result<Self, CapacityError> {
        let layout = Layout::array::<MaybeUninit<T>>(capacity)
            .and_then(|l| l.align_to(SLOT_ARRAY_ALIGN))
            .map_err(|_| CapacityError::TooLarge)?;
        let ptr = if layout.size() == 0 {
            // Zero-sized slots (or none): no memory, any aligned pointer.
            NonNull::<MaybeUninit<T>>::dangling().as_ptr()
        } else {
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { alloc(layout) };
            if raw.is_null() {
                handle_alloc_error(layout);
            }
            raw.cast::<MaybeUninit<T>>()
        };
        let trackers: Box<[SlotTracker]> = (0..capacity)
            .map(|_| SlotTracker::new())
            .collect::<Vec<_>>()
            .into();
        Ok(Buffer {
            ptr,
            layout,
            mask: capacity - 1,
            trackers,
        })
    }

    /// Number of slots.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Pointer to the slot of position `pos`, announcing a read to loom.
    #[inline(always)]
    pub(crate) fn read_ptr(&self, pos: usize) -> *mut MaybeUninit<T> {
        self.track(pos, 1, false);
        self.raw(pos)
    }

    /// Pointer to the slot of position `pos`, announcing a write to loom.
    #[inline(always)]
    pub(crate) fn write_ptr(&self, pos: usize) -> *mut MaybeUninit<T> {
        self.track(pos, 1, true);
        self.raw(pos)
    }

    /// The slot pointer of `pos` without telling loom: the caller announced
    /// the access with [`Buffer::track`] already.
    #[inline(always)]
    pub(crate) fn raw(&self, pos: usize) -> *mut MaybeUninit<T> {
        // `pos & mask < capacity`, so the offset stays in the allocation
        // (wrapping_add keeps this free of UB reasoning; it never wraps).
        self.ptr.wrapping_add(pos & self.mask)
    }

    /// Announces an access to `len` slots starting at position `pos`.
    #[inline(always)]
    pub(crate) fn track(&self, pos: usize, len: usize, write: bool) {
        if cfg!(loom) {
            for p in pos..pos.wrapping_add(len) {
                let t = &self.trackers[p & self.mask];
                if write { t.write() } else { t.read() }
            }
        }
    }

    /// The (up to two) contiguous index ranges covering `len` positions from
    /// `pos`: `(start, first_len, second_len)`, the second starting at index 0.
    #[inline(always)]
    pub(crate) fn split(&self, pos: usize, len: usize) -> (usize, usize, usize) {
        let start = pos & self.mask;
        let first = len.min(self.capacity() - start);
        (start, first, len - first)
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: `ptr` came from `alloc` with this layout in `new` and
            // is freed only here. The slots are `MaybeUninit`, so no `T` is
            // dropped.
            unsafe { dealloc(self.ptr.cast::<u8>(), self.layout) };
        }
    }
}
