//! The memory a queue lives in, behind a trait: the driver never touches a
//! raw pointer, it asks its [`QueueMemory`] for little-endian loads and
//! stores at byte offsets with an explicit memory ordering.
//!
//! Why a trait and not `&mut [u8]`: the region is shared with a device that
//! reads and writes it concurrently, so every access must be atomic (the
//! Rust memory model has no other way to share memory with a concurrent
//! writer), and the orderings are the whole protocol (2.7.13: "the driver
//! MUST perform a suitable memory barrier before the idx update"). The
//! trait also lets the loom models substitute model-checked atomics for
//! the real region and lets host tests put a simulated device on the other
//! side.
//!
//! Every field is always accessed with the same width by both sides
//! (descriptor `addr` as u64, `len` and used elements as u32, everything
//! else as u16), so no mixed-size atomic access ever happens.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};

use alloc::alloc::{alloc_zeroed, dealloc};

use crate::error::ConfigError;
use crate::layout::Layout;

/// A region of memory shared with the device, holding one queue's
/// descriptor table and rings ([`Layout`]). All values are little-endian
/// in the region; implementations convert.
///
/// The queue calls the accessors only with in-bounds offsets aligned to the
/// access width; an implementation may panic on any other offset (a bug in
/// its caller, never a consequence of device input).
///
/// ```
/// use core::sync::atomic::Ordering;
/// use percore_virtqueue::{HostRegion, Layout, QueueMemory};
/// let region = HostRegion::new(Layout::new(4).unwrap(), 0x8000).unwrap();
/// region.store_u16(2, 7, Ordering::Release);
/// assert_eq!(region.load_u16(2, Ordering::Acquire), 7);
/// assert_eq!(region.device_address(), 0x8000);
/// ```
pub trait QueueMemory {
    /// The address at which the device sees offset 0 (a physical or IOMMU
    /// address): DMA address translation for the rings.
    fn device_address(&self) -> u64;
    /// Length of the region in bytes.
    fn size(&self) -> usize;
    /// Loads the u16 at `offset`.
    fn load_u16(&self, offset: usize, order: Ordering) -> u16;
    /// Stores `value` as the u16 at `offset`.
    fn store_u16(&self, offset: usize, value: u16, order: Ordering);
    /// Loads the u32 at `offset`.
    fn load_u32(&self, offset: usize, order: Ordering) -> u32;
    /// Stores `value` as the u32 at `offset`.
    fn store_u32(&self, offset: usize, value: u32, order: Ordering);
    /// Loads the u64 at `offset`.
    fn load_u64(&self, offset: usize, order: Ordering) -> u64;
    /// Stores `value` as the u64 at `offset`.
    fn store_u64(&self, offset: usize, value: u64, order: Ordering);
}

impl<T: QueueMemory + ?Sized> QueueMemory for &T {
    fn device_address(&self) -> u64 {
        (**self).device_address()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn load_u16(&self, offset: usize, order: Ordering) -> u16 {
        (**self).load_u16(offset, order)
    }
    fn store_u16(&self, offset: usize, value: u16, order: Ordering) {
        (**self).store_u16(offset, value, order)
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        (**self).load_u32(offset, order)
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        (**self).store_u32(offset, value, order)
    }
    fn load_u64(&self, offset: usize, order: Ordering) -> u64 {
        (**self).load_u64(offset, order)
    }
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) {
        (**self).store_u64(offset, value, order)
    }
}

/// A region the caller already has: DMA memory mapped into the address
/// space at `ptr` and seen by the device at `device_address`. This is what
/// the kernel uses; it does not own the memory.
///
/// ```
/// use core::sync::atomic::Ordering;
/// use percore_virtqueue::{DmaRegion, QueueMemory};
/// let mut words = [0u64; 4];
/// let ptr = core::ptr::NonNull::from(&mut words).cast::<u8>();
/// // SAFETY: `words` is 32 bytes, 8-aligned, and outlives `region`.
/// let region = unsafe { DmaRegion::new(ptr, 32, 0x1000) };
/// region.store_u32(4, 9, Ordering::Relaxed);
/// assert_eq!(region.load_u32(4, Ordering::Relaxed), 9);
/// ```
#[derive(Debug)]
pub struct DmaRegion {
    ptr: NonNull<u8>,
    size: usize,
    device_address: u64,
}

// SAFETY: the region is only ever accessed through atomics.
unsafe impl Send for DmaRegion {}
// SAFETY: as above; shared access from several threads is atomic access.
unsafe impl Sync for DmaRegion {}

impl DmaRegion {
    /// Wraps `size` bytes at `ptr`, seen by the device at `device_address`.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes of `size` bytes and aligned
    /// to 8 for as long as the `DmaRegion` lives, and nothing else may
    /// access those bytes meanwhile except through atomics of the same
    /// widths (the device, a simulated device, another `DmaRegion`).
    pub const unsafe fn new(ptr: NonNull<u8>, size: usize, device_address: u64) -> Self {
        DmaRegion {
            ptr,
            size,
            device_address,
        }
    }

    /// The pointer to `width` bytes at `offset`, after checking bounds and
    /// alignment (which then hold for `from_ptr`).
    fn at(&self, offset: usize, width: usize) -> *mut u8 {
        assert!(
            offset
                .checked_add(width)
                .is_some_and(|end| end <= self.size)
                && offset.is_multiple_of(width),
            "queue memory access out of bounds or misaligned: {offset} + {width} of {}",
            self.size
        );
        // SAFETY: `offset + width <= size`, inside the region (`new`).
        unsafe { self.ptr.as_ptr().add(offset) }
    }
}

impl QueueMemory for DmaRegion {
    fn device_address(&self) -> u64 {
        self.device_address
    }
    fn size(&self) -> usize {
        self.size
    }
    fn load_u16(&self, offset: usize, order: Ordering) -> u16 {
        // SAFETY: in bounds and 2-aligned (`at`), valid and shared only
        // atomically (`new`'s contract).
        u16::from_le(unsafe { AtomicU16::from_ptr(self.at(offset, 2).cast()) }.load(order))
    }
    fn store_u16(&self, offset: usize, value: u16, order: Ordering) {
        // SAFETY: as in `load_u16`.
        unsafe { AtomicU16::from_ptr(self.at(offset, 2).cast()) }.store(value.to_le(), order)
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        // SAFETY: in bounds and 4-aligned (`at`), valid and shared only
        // atomically (`new`'s contract).
        u32::from_le(unsafe { AtomicU32::from_ptr(self.at(offset, 4).cast()) }.load(order))
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        // SAFETY: as in `load_u32`.
        unsafe { AtomicU32::from_ptr(self.at(offset, 4).cast()) }.store(value.to_le(), order)
    }
    fn load_u64(&self, offset: usize, order: Ordering) -> u64 {
        // SAFETY: in bounds and 8-aligned (`at`), valid and shared only
        // atomically (`new`'s contract).
        u64::from_le(unsafe { AtomicU64::from_ptr(self.at(offset, 8).cast()) }.load(order))
    }
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) {
        // SAFETY: as in `load_u64`.
        unsafe { AtomicU64::from_ptr(self.at(offset, 8).cast()) }.store(value.to_le(), order)
    }
}

/// A zeroed region on the heap, for host tests, simulators and examples,
/// seen by the (simulated) device at a chosen `device_address`. Freed on
/// drop.
///
/// ```
/// use percore_virtqueue::{HostRegion, Layout, QueueMemory};
/// let layout = Layout::new(8).unwrap();
/// let region = HostRegion::new(layout, 0x10_0000).unwrap();
/// assert_eq!(region.size(), layout.size());
/// ```
#[derive(Debug)]
pub struct HostRegion {
    region: DmaRegion,
    layout: core::alloc::Layout,
}

impl HostRegion {
    /// Allocates a zeroed region for a queue of `layout`'s shape.
    /// `device_address` must be a multiple of [`Layout::ALIGN`].
    ///
    /// ```
    /// use percore_virtqueue::{ConfigError, HostRegion, Layout};
    /// let layout = Layout::new(8).unwrap();
    /// assert_eq!(HostRegion::new(layout, 3).err(), Some(ConfigError::Misaligned(3)));
    /// ```
    pub fn new(layout: Layout, device_address: u64) -> Result<Self, ConfigError> {
        if !device_address.is_multiple_of(Layout::ALIGN as u64) {
            return Err(ConfigError::Misaligned(device_address));
        }
        let heap = core::alloc::Layout::from_size_align(layout.size(), Layout::ALIGN)
            .map_err(|_| ConfigError::BadQueueSize(layout.queue_size()))?;
        // SAFETY: `heap` has a non-zero size (a queue has at least one entry).
        let ptr = NonNull::new(unsafe { alloc_zeroed(heap) }).ok_or(ConfigError::OutOfMemory)?;
        // SAFETY: freshly allocated, `layout.size()` bytes, 16-aligned, owned
        // by `self` and freed only in `drop`, after the `DmaRegion` is gone.
        let region = unsafe { DmaRegion::new(ptr, layout.size(), device_address) };
        Ok(HostRegion {
            region,
            layout: heap,
        })
    }
}

impl Drop for HostRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.region.ptr.as_ptr(), self.layout) }
    }
}

impl QueueMemory for HostRegion {
    fn device_address(&self) -> u64 {
        self.region.device_address
    }
    fn size(&self) -> usize {
        self.region.size
    }
    fn load_u16(&self, offset: usize, order: Ordering) -> u16 {
        self.region.load_u16(offset, order)
    }
    fn store_u16(&self, offset: usize, value: u16, order: Ordering) {
        self.region.store_u16(offset, value, order)
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        self.region.load_u32(offset, order)
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        self.region.store_u32(offset, value, order)
    }
    fn load_u64(&self, offset: usize, order: Ordering) -> u64 {
        self.region.load_u64(offset, order)
    }
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) {
        self.region.store_u64(offset, value, order)
    }
}
