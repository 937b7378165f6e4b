//! The control virtqueue (virtio 1.2, 5.1.6.5): commands to the device,
//! each a device-readable `class, command, data` and a device-writable
//! one-byte answer (`VIRTIO_NET_OK` or `VIRTIO_NET_ERR`).
//!
//! The queue has no interrupt (`NO_VECTOR`): commands are rare (set-up,
//! the tests), so the caller rings the doorbell and polls the used ring,
//! a bounded number of times, under the queue's lock; one command is in
//! flight at a time. An answer other than OK is [`CtrlError::Refused`]; a
//! device that never answers is [`CtrlError::NoAnswer`] (the command's
//! buffer stays the device's: the queue is then out of service).

use core::sync::atomic::{AtomicBool, Ordering};

use percore_virtqueue::{DeviceError, DmaRegion, Layout, Segment, Virtqueue};

use super::super::transport::QueueNotify;
use crate::mem::dma::DmaBuffer;

/// `VIRTIO_NET_CTRL_MQ`, its commands and their limits.
pub const CLASS_MQ: u8 = 4;
pub const MQ_VQ_PAIRS_SET: u8 = 0;
pub const MQ_RSS_CONFIG: u8 = 1;
/// `VIRTIO_NET_OK`.
const OK: u8 = 0;
/// Entries in the control queue (a command uses three descriptors).
pub const SIZE: u16 = 16;
/// The most bytes of command data (an RSS configuration with a 128-entry
/// table and a 40-byte key is 305).
pub const MAX_DATA: usize = 1024;
/// Reads of the used ring before giving up on an answer.
const POLLS: u32 = 50_000_000;

/// Why a control command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrlError {
    /// The device has no control queue (`CTRL_VQ` not negotiated).
    Unsupported,
    /// The device answered this status instead of `VIRTIO_NET_OK`.
    Refused(u8),
    /// More data than [`MAX_DATA`].
    TooLong(usize),
    /// No answer after polling; the queue is out of service.
    NoAnswer,
    /// The device broke the queue's rules (the queue is out of service).
    Device(DeviceError),
}

/// The control queue and its one command buffer.
pub struct Control {
    inner: spin::Mutex<Inner>,
    dead: AtomicBool,
}

struct Inner {
    queue: Virtqueue<DmaRegion>,
    notify: Option<QueueNotify>,
    memory: DmaBuffer,
    /// Offset of the command buffer (after the rings, page aligned).
    buffer_at: usize,
}

impl Control {
    /// The queue's memory: rings, then a page for commands.
    pub fn new(event_idx: bool) -> Result<Control, crate::mem::MemoryError> {
        use crate::mem::MemoryError;
        let layout = Layout::new(SIZE).map_err(|_| MemoryError::OutOfFrames)?;
        let buffer_at = layout.size().next_multiple_of(4096);
        let memory = DmaBuffer::allocate(buffer_at + 2 + MAX_DATA + 1)?;
        // SAFETY: the first `layout.size()` bytes of `memory` (page aligned)
        // are used only through this region, by atomics, for as long as
        // `Control` (which owns `memory`) lives.
        let region = unsafe { DmaRegion::new(memory.as_ptr(), layout.size(), memory.phys()) };
        let queue =
            Virtqueue::new(region, SIZE, event_idx).map_err(|_| MemoryError::OutOfFrames)?;
        Ok(Control {
            inner: spin::Mutex::new(Inner {
                queue,
                notify: None,
                memory,
                buffer_at,
            }),
            dead: AtomicBool::new(false),
        })
    }

    /// Ring addresses for the transport's set-up.
    pub fn addresses(&self) -> [u64; 3] {
        self.inner.lock().queue.addresses()
    }

    /// Gives the queue its doorbell.
    pub fn attach(&self, notify: QueueNotify) {
        self.inner.lock().notify = Some(notify);
    }

    /// Sends one command and waits for the device's answer.
    pub fn command(&self, class: u8, command: u8, data: &[u8]) -> Result<(), CtrlError> {
        if data.len() > MAX_DATA {
            return Err(CtrlError::TooLong(data.len()));
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        if self.dead.load(Ordering::Acquire) {
            return Err(CtrlError::NoAnswer);
        }
        let Some(notify) = inner.notify.as_mut() else {
            return Err(CtrlError::Unsupported);
        };
        let at = inner.buffer_at;
        let ack_at = at + 2 + MAX_DATA;
        // SAFETY: no command is in flight (one at a time, under the lock;
        // a command without an answer takes the queue out of service), so
        // the device does not touch the buffer now.
        unsafe {
            inner.memory.write(at, &[class, command]);
            inner.memory.write(at + 2, data);
            inner.memory.write(ack_at, &[0xFF]);
        }
        let phys = inner.memory.phys();
        let header = Segment::new(phys + at as u64, 2);
        let payload = Segment::new(phys + (at + 2) as u64, data.len() as u32);
        let ack = Segment::new(phys + ack_at as u64, 1);
        let readable: &[Segment] = if data.is_empty() {
            &[header]
        } else {
            &[header, payload]
        };
        let id = inner
            .queue
            .add(readable, &[ack])
            .map_err(|_| self.out_of_service(None))?;
        inner.queue.kick(notify);
        for _ in 0..POLLS {
            match inner.queue.poll_used() {
                Ok(Some(done)) if done.id == id => {
                    let mut status = [0u8];
                    // SAFETY: the device handed the buffer back.
                    unsafe { inner.memory.read(ack_at, &mut status) };
                    return match status[0] {
                        OK => Ok(()),
                        other => Err(CtrlError::Refused(other)),
                    };
                }
                Ok(Some(_)) => return Err(self.out_of_service(None)),
                Ok(None) => core::hint::spin_loop(),
                Err(error) => return Err(self.out_of_service(Some(error))),
            }
        }
        Err(self.out_of_service(None))
    }

    fn out_of_service(&self, error: Option<DeviceError>) -> CtrlError {
        self.dead.store(true, Ordering::Release);
        error.map_or(CtrlError::NoAnswer, CtrlError::Device)
    }
}
