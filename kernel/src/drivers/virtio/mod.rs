//! virtio devices over PCI (virtio 1.x, modern only): the transport
//! ([`transport`]), the block device ([`blk`]) and the network device
//! ([`net`]). Queues are the split
//! virtqueues of `percore-virtqueue`, in DMA memory (`mem::dma`), one per
//! core with an MSI-X vector that targets that core.

pub mod blk;
pub mod net;
pub mod slots;
pub mod transport;

pub use transport::{QueueConfig, QueueNotify, Transport, TransportError};

/// Priority of the drivers' completion tasks: above ordinary work, so
/// completions are taken as soon as their core runs its tasks.
const COMPLETION_PRIORITY: u8 = 56;

/// A feature flag of `virtio-spec` (a 128-bit set) as the transport's
/// 64-bit feature word.
fn feature_bit(flag: u128) -> u64 {
    flag as u64
}

/// Starts every virtio driver on the devices PCI enumeration found (once,
/// at boot, after the reactors exist: each queue's completions are events
/// of its core's reactor). A device that fails is reset and logged; the
/// kernel goes on without it.
pub fn init() {
    // A device that is absent or fails is logged by its driver.
    let _ = blk::init();
    let _ = net::init();
}
