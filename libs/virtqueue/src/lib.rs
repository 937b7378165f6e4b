//! The driver side of a virtio 1.x split virtqueue (virtio 1.2, section
//! 2.7), with no hardware knowledge: the queue's memory is a
//! [`QueueMemory`] (loads and stores at offsets, with a device address for
//! DMA), the doorbell is a [`Notify`].
//!
//! - [`Layout`]: where the descriptor table, available ring and used ring
//!   live in one region, and what a queue costs in bytes.
//! - [`Virtqueue`]: [`add`](Virtqueue::add) a request (device-readable then
//!   device-writable [`Segment`]s, one descriptor chain) and get a
//!   [`RequestId`]; [`kick`](Virtqueue::kick) to notify with
//!   `VIRTIO_F_EVENT_IDX` suppression ([`need_event`]);
//!   [`poll_used`](Virtqueue::poll_used) for [`Completion`]s;
//!   [`enable_interrupts`](Virtqueue::enable_interrupts) with the re-check
//!   that closes the lost-interrupt race.
//! - Every value the device writes is validated: a bad id, an id not in
//!   flight, a length beyond the buffers or a used index that jumps is a
//!   [`DeviceError`], never a panic or an out-of-bounds access.
//!
//! ```
//! use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
//! let layout = Layout::new(16).unwrap();
//! let mut q = Virtqueue::new(HostRegion::new(layout, 0x1_0000).unwrap(), 16, true).unwrap();
//! let id = q.add(&[Segment::new(0x8000, 16)], &[Segment::new(0x9000, 512)]).unwrap();
//! q.kick(&mut || { /* write the transport's notify register */ });
//! // ... the device completes it; the interrupt handler then drains:
//! while let Ok(Some(done)) = q.poll_used() {
//!     assert_eq!(done.id, id);
//! }
//! # let _ = id;
//! ```

#![no_std]

extern crate alloc;

mod chain;
mod error;
mod event;
mod layout;
mod memory;
mod notify;
mod queue;
mod sync;
mod token;

pub use error::{AddError, ConfigError, DeviceError};
pub use event::need_event;
pub use layout::{Layout, MAX_QUEUE_SIZE};
pub use memory::{DmaRegion, HostRegion, QueueMemory};
pub use notify::Notify;
pub use queue::Virtqueue;
pub use token::{Completion, RequestId, Segment};
