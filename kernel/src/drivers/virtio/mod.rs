//! virtio devices over PCI (virtio 1.x, modern only): the transport
//! ([`transport`]), the block device ([`blk`]) and the network device
//! ([`net`]). Queues are the split
//! virtqueues of `percore-virtqueue`, in DMA memory (`mem::dma`), one per
//! core with an MSI-X vector that targets that core.

pub mod blk;
pub mod net;
pub mod transport;

pub use transport::{QueueConfig, QueueNotify, Transport, TransportError};

/// Starts every virtio driver on the devices PCI enumeration found (once,
/// at boot, after the reactors exist: each queue's completions are events
/// of its core's reactor). A device that fails is reset and logged; the
/// kernel goes on without it.
pub fn init() {
    // A device that is absent or fails is logged by its driver.
    let _ = blk::init();
    let _ = net::init();
}
