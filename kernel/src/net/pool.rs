//! Preallocated frame buffers for steering: received frames cross cores
//! without touching the heap.
//!
//! The owner of the queue pair copies each received frame out of the
//! device's DMA buffer (so the buffer goes back to the device at once)
//! into a buffer of the target core's pool, and passes the buffer through
//! that core's intercore ring. The target core's smoltcp reads the frame
//! in place; the spent buffer then goes back to the owner over the pool's
//! return ring (one per core, filled with [`FRAMES`] buffers at start).
//! No frame allocates: an empty pool (every buffer of that core in flight)
//! drops the frame and counts it (`drop_pool_empty`), like a full ring.

use alloc::vec::Vec;

use super::{Error, Result};
use crate::drivers::virtio::net::pair::BUFFER;
use crate::ipc::channel::{self, Receiver, Sender};

/// Buffers per core.
pub const FRAMES: usize = 512;
/// Bytes of one buffer: a whole device buffer.
pub const FRAME: usize = BUFFER;

/// The owner core's side: each core's free buffers.
pub struct Free {
    returned: Vec<Receiver<Vec<u8>>>,
    spare: Vec<Vec<Vec<u8>>>,
}

impl Free {
    /// A free buffer of core `core`'s pool holding `frame`.
    pub fn copy(&mut self, core: usize, frame: &[u8]) -> Option<Vec<u8>> {
        let mut buffer = match self.spare.get_mut(core)?.pop() {
            Some(buffer) => buffer,
            None => self.returned.get_mut(core)?.try_recv()?,
        };
        buffer.clear();
        buffer.extend_from_slice(frame);
        Some(buffer)
    }

    /// Takes back a buffer that was not sent.
    pub fn put(&mut self, core: usize, buffer: Vec<u8>) {
        if let Some(spare) = self.spare.get_mut(core) {
            spare.push(buffer);
        }
    }
}

/// Every core's pool: the owner's side, and each core's return ring.
pub fn pools(cores: usize) -> Result<(Free, Vec<Sender<Vec<u8>>>)> {
    let mut returned = Vec::with_capacity(cores);
    let mut backs = Vec::with_capacity(cores);
    for _ in 0..cores {
        let (mut back, ret) = channel::channel::<Vec<u8>>(FRAMES).map_err(|_| Error::NoNetwork)?;
        for _ in 0..FRAMES {
            if back.try_send(Vec::with_capacity(FRAME)).is_err() {
                break;
            }
        }
        returned.push(ret);
        backs.push(back);
    }
    Ok((
        Free {
            returned,
            spare: (0..cores).map(|_| Vec::new()).collect(),
        },
        backs,
    ))
}
