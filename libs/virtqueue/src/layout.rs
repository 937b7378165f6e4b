//! Where the three parts of a split virtqueue live in one region of memory
//! (virtio 1.2, section 2.7 "Split Virtqueues"), and what a queue costs.
//!
//! ```text
//! offset 0                 descriptor table   16 * N bytes, align 16  (2.7.5)
//! offset 16 * N            available ring      6 + 2 * N, align 2     (2.7.6)
//!                            flags, idx, ring[N], used_event
//! offset align4(...)       used ring           6 + 8 * N (+2 pad), align 4 (2.7.8)
//!                            flags, idx, ring[N] {id, len}, avail_event
//! ```
//!
//! The `used_event` / `avail_event` words are always laid out, whether or
//! not `VIRTIO_F_EVENT_IDX` is negotiated: four bytes buy one layout for both
//! modes. The sizes come from `virtio-spec`'s own layouts.

use core::mem::size_of;

use virtio_spec::virtq::{Avail, Desc, Used, UsedElem};

use crate::error::ConfigError;

/// The largest queue size a split virtqueue allows (2.7: "Queue Size ...
/// maximum 32768").
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// Byte offsets of the descriptor table, available ring and used ring of a
/// split virtqueue of `size` entries inside one region.
///
/// ```
/// use percore_virtqueue::Layout;
/// let l = Layout::new(256).unwrap();
/// assert_eq!(l.desc_offset(), 0);
/// assert_eq!(l.avail_offset(), 4096);
/// assert_eq!(l.used_offset(), 4096 + 520);
/// assert_eq!(l.size(), 4096 + 520 + 2056);
/// assert!(Layout::new(3).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    queue_size: u16,
    avail: usize,
    used: usize,
    size: usize,
}

impl Layout {
    /// Alignment the region must have (the descriptor table's, 2.7.5).
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Layout::ALIGN, 16);
    /// ```
    pub const ALIGN: usize = 16;

    /// The layout of a queue of `queue_size` entries: a power of two in
    /// `1..=32768` (2.7: split queue sizes are powers of two).
    ///
    /// ```
    /// use percore_virtqueue::{ConfigError, Layout};
    /// assert_eq!(Layout::new(0), Err(ConfigError::BadQueueSize(0)));
    /// assert_eq!(Layout::new(128).unwrap().queue_size(), 128);
    /// ```
    pub fn new(queue_size: u16) -> Result<Self, ConfigError> {
        if !queue_size.is_power_of_two() || queue_size > MAX_QUEUE_SIZE {
            return Err(ConfigError::BadQueueSize(queue_size));
        }
        let n = usize::from(queue_size);
        let avail = n * size_of::<Desc>();
        let used_layout = Used::layout(queue_size, true);
        let used =
            (avail + Avail::layout(queue_size, true).size()).next_multiple_of(used_layout.align());
        Ok(Layout {
            queue_size,
            avail,
            used,
            size: used + used_layout.size(),
        })
    }

    /// Entries in each ring (and descriptors in the table).
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Layout::new(8).unwrap().queue_size(), 8);
    /// ```
    pub const fn queue_size(&self) -> u16 {
        self.queue_size
    }

    /// Bytes the region must have: what one queue costs in shared memory.
    /// `26 * N + 12` plus 4 bytes of alignment padding: 6 672 bytes for
    /// 256 entries, 3 344 for 128.
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Layout::new(128).unwrap().size(), 3344);
    /// ```
    pub const fn size(&self) -> usize {
        self.size
    }

    /// Offset of the descriptor table (always 0): the device's `queue_desc`.
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Layout::new(8).unwrap().desc_offset(), 0);
    /// ```
    pub const fn desc_offset(&self) -> usize {
        0
    }

    /// Offset of the available ring: the device's `queue_driver` area.
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Layout::new(8).unwrap().avail_offset(), 128);
    /// ```
    pub const fn avail_offset(&self) -> usize {
        self.avail
    }

    /// Offset of the used ring: the device's `queue_device` area.
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Layout::new(8).unwrap().used_offset(), 152);
    /// ```
    pub const fn used_offset(&self) -> usize {
        self.used
    }

    /// Offset of descriptor `i`'s `addr` (u64); `len` (u32) follows at +8,
    /// `flags` (u16) at +12, `next` (u16) at +14.
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Layout::new(8).unwrap().desc(2), 32);
    /// ```
    pub const fn desc(&self, i: u16) -> usize {
        i as usize * size_of::<Desc>()
    }

    /// Offset of the available ring's `flags`.
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.avail_flags(), l.avail_offset());
    /// ```
    pub const fn avail_flags(&self) -> usize {
        self.avail
    }

    /// Offset of the available ring's `idx`, which the driver publishes.
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.avail_idx(), l.avail_offset() + 2);
    /// ```
    pub const fn avail_idx(&self) -> usize {
        self.avail + 2
    }

    /// Offset of available ring entry `slot` (`slot < queue_size`).
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.avail_ring(1), l.avail_offset() + 6);
    /// ```
    pub const fn avail_ring(&self, slot: u16) -> usize {
        self.avail + 4 + 2 * slot as usize
    }

    /// Offset of `used_event`, after the available ring's entries.
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.used_event(), l.avail_offset() + 4 + 16);
    /// ```
    pub const fn used_event(&self) -> usize {
        self.avail_ring(self.queue_size)
    }

    /// Offset of the used ring's `flags`.
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.used_flags(), l.used_offset());
    /// ```
    pub const fn used_flags(&self) -> usize {
        self.used
    }

    /// Offset of the used ring's `idx`, which the device publishes.
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.used_idx(), l.used_offset() + 2);
    /// ```
    pub const fn used_idx(&self) -> usize {
        self.used + 2
    }

    /// Offset of used ring element `slot`'s `id` (u32); its `len` (u32)
    /// follows at +4.
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.used_ring(1), l.used_offset() + 12);
    /// ```
    pub const fn used_ring(&self, slot: u16) -> usize {
        self.used + 4 + slot as usize * size_of::<UsedElem>()
    }

    /// Offset of `avail_event`, after the used ring's elements.
    ///
    /// ```
    /// let l = percore_virtqueue::Layout::new(8).unwrap();
    /// assert_eq!(l.avail_event(), l.used_offset() + 4 + 64);
    /// ```
    pub const fn avail_event(&self) -> usize {
        self.used_ring(self.queue_size)
    }
}
