//! What goes in and comes out of a queue: [`Segment`]s of a request, the
//! [`RequestId`] the queue hands back for it, and the [`Completion`] the
//! device reports.

/// One contiguous buffer of a request, at a device address (translated by
/// the caller, who knows its memory: a physical address, an IOMMU address).
/// The queue never dereferences it.
///
/// ```
/// use percore_virtqueue::Segment;
/// let s = Segment::new(0x2000, 512);
/// assert_eq!((s.addr, s.len), (0x2000, 512));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Device address of the first byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
}

impl Segment {
    /// A segment of `len` bytes at device address `addr`.
    ///
    /// ```
    /// assert_eq!(percore_virtqueue::Segment::new(8, 4).len, 4);
    /// ```
    pub const fn new(addr: u64, len: u32) -> Self {
        Segment { addr, len }
    }
}

/// A request in flight: the index of its head descriptor, unique among the
/// requests in flight and below the queue size, so callers can keep their
/// per-request context in a preallocated array indexed by [`index`].
///
/// [`index`]: RequestId::index
///
/// ```
/// use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
/// let layout = Layout::new(4).unwrap();
/// let mut q = Virtqueue::new(HostRegion::new(layout, 0).unwrap(), 4, false).unwrap();
/// let id = q.add(&[Segment::new(0x1000, 16)], &[]).unwrap();
/// assert!(id.index() < 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u16);

impl RequestId {
    /// The id as an index below the queue size.
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
    /// # let mut q = Virtqueue::new(HostRegion::new(Layout::new(1).unwrap(), 0).unwrap(), 1, false).unwrap();
    /// let id = q.add(&[Segment::new(0x1000, 16)], &[]).unwrap();
    /// assert_eq!(id.index(), 0);
    /// ```
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A request the device has finished, with the number of bytes it wrote
/// into the request's device-writable segments (validated: never more than
/// they hold).
///
/// ```
/// use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
/// let layout = Layout::new(4).unwrap();
/// let mut q = Virtqueue::new(HostRegion::new(layout, 0).unwrap(), 4, false).unwrap();
/// assert_eq!(q.poll_used(), Ok(None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The request, as [`Virtqueue::add`](crate::Virtqueue::add) returned it.
    pub id: RequestId,
    /// Bytes the device wrote.
    pub written: u32,
}
