//! How the driver tells the device that new buffers are available: the
//! transport's doorbell (a PCI notify register write, an MMIO
//! `QueueNotify`), behind a trait so the queue knows no hardware.

/// Rings the device's doorbell for this queue.
///
/// Closures implement it, so a test can count notifications:
///
/// ```
/// use percore_virtqueue::Notify;
/// let mut rung = 0;
/// let mut bell = || rung += 1;
/// bell.notify();
/// assert_eq!(rung, 1);
/// ```
pub trait Notify {
    /// Tells the device to look at the available ring.
    fn notify(&mut self);
}

impl<F: FnMut()> Notify for F {
    fn notify(&mut self) {
        self()
    }
}
