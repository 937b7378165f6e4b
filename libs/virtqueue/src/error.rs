//! Error types. A misbehaving device is a [`DeviceError`], never a panic;
//! the caller's own mistakes are [`AddError`] and [`ConfigError`].

use core::fmt;

/// A queue could not be set up with this shape or memory.
///
/// ```
/// use percore_virtqueue::{ConfigError, Layout};
/// assert_eq!(Layout::new(6), Err(ConfigError::BadQueueSize(6)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The queue size is not a power of two in `1..=32768`.
    BadQueueSize(u16),
    /// The region's device address is not 16-byte aligned (2.7.5).
    Misaligned(u64),
    /// The region is smaller than the layout needs.
    TooSmall {
        /// Bytes the layout needs.
        need: usize,
        /// Bytes the region has.
        have: usize,
    },
    /// The allocator had no memory for the queue's state.
    OutOfMemory,
}

/// A request could not be added; nothing was written to the queue.
///
/// ```
/// use percore_virtqueue::{AddError, HostRegion, Layout, Segment, Virtqueue};
/// let layout = Layout::new(2).unwrap();
/// let mut q = Virtqueue::new(HostRegion::new(layout, 0).unwrap(), 2, false).unwrap();
/// let seg = Segment::new(0x1000, 512);
/// assert_eq!(q.add(&[seg; 3], &[]), Err(AddError::TooManySegments { segments: 3, queue_size: 2 }));
/// q.add(&[seg], &[seg]).unwrap();
/// assert_eq!(q.add(&[seg], &[]), Err(AddError::Full { needed: 1, free: 0 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// A request needs at least one segment.
    Empty,
    /// A segment of zero bytes.
    ZeroLength,
    /// More segments than the queue has descriptors: can never fit.
    TooManySegments {
        /// Segments in the request.
        segments: usize,
        /// Descriptors in the queue.
        queue_size: u16,
    },
    /// Not enough free descriptors now: poll completions and retry.
    Full {
        /// Descriptors the request needs.
        needed: usize,
        /// Descriptors free now.
        free: u16,
    },
    /// The device misbehaved earlier ([`DeviceError`]); the queue accepts
    /// nothing until [`Virtqueue::reset`](crate::Virtqueue::reset).
    Broken,
}

/// The device wrote something into the used ring that no correct device
/// writes. The queue is broken from then on: the caller resets the device
/// and then the queue ([`Virtqueue::reset`](crate::Virtqueue::reset)),
/// which hands back every request still in flight.
///
/// ```
/// use percore_virtqueue::DeviceError;
/// let e = DeviceError::BadId { id: 70_000 };
/// assert_eq!(e.to_string(), "device completed descriptor 70000, beyond the queue");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// A used element's id is not a descriptor index of this queue.
    BadId {
        /// The id the device wrote.
        id: u32,
    },
    /// A used element names a descriptor that heads no request in flight:
    /// a duplicate completion, a free descriptor, or the middle of a chain.
    NotInFlight {
        /// The id the device wrote.
        id: u32,
    },
    /// A used element claims more bytes written than the request's
    /// device-writable segments hold.
    BadLength {
        /// The request's head descriptor.
        id: u32,
        /// The length the device wrote.
        len: u32,
        /// Device-writable bytes of the request.
        capacity: u32,
    },
    /// The used ring's `idx` moved further than there are requests in
    /// flight (it raced ahead, or went backwards).
    UsedIdxJump {
        /// The `idx` the device published.
        used_idx: u16,
        /// The last `idx` the driver had consumed.
        last_used: u16,
        /// Requests in flight.
        in_flight: u16,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadQueueSize(n) => {
                write!(f, "queue size {n} is not a power of two up to 32768")
            }
            ConfigError::Misaligned(a) => {
                write!(f, "queue memory at {a:#x} is not 16-byte aligned")
            }
            ConfigError::TooSmall { need, have } => {
                write!(f, "queue memory has {have} bytes, needs {need}")
            }
            ConfigError::OutOfMemory => f.write_str("out of memory for queue state"),
        }
    }
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddError::Empty => f.write_str("request has no segments"),
            AddError::ZeroLength => f.write_str("request has a zero-length segment"),
            AddError::TooManySegments {
                segments,
                queue_size,
            } => write!(f, "{segments} segments never fit a queue of {queue_size}"),
            AddError::Full { needed, free } => {
                write!(f, "request needs {needed} descriptors, {free} free")
            }
            AddError::Broken => f.write_str("queue is broken by a device error; reset it"),
        }
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::BadId { id } => {
                write!(f, "device completed descriptor {id}, beyond the queue")
            }
            DeviceError::NotInFlight { id } => {
                write!(
                    f,
                    "device completed descriptor {id}, which heads no request in flight"
                )
            }
            DeviceError::BadLength { id, len, capacity } => write!(
                f,
                "device wrote {len} bytes into request {id}, which has room for {capacity}"
            ),
            DeviceError::UsedIdxJump {
                used_idx,
                last_used,
                in_flight,
            } => write!(
                f,
                "used idx jumped from {last_used} to {used_idx} with {in_flight} requests in flight"
            ),
        }
    }
}
