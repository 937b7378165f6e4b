//! Preallocated frame buffers for steering: received frames cross cores
//! without touching the heap.
//!
//! The owner of a queue pair (every core that owns one: with a pair per
//! core, every core) copies each received frame out of the device's DMA
//! buffer (so the buffer goes back to the device at once) into a buffer of
//! the target core's pool (the target may be the owner itself), and passes
//! the buffer through that core's intercore ring. The target core's
//! smoltcp reads the frame in place; the spent buffer then goes back to
//! the owner it came from ([`Buffer::home`]) over that owner's return ring
//! for the target (one per owner and core, filled with [`FRAMES`] buffers
//! shared out among the owners at start). No frame allocates: an empty
//! pool (every buffer of that core in flight) drops the frame and counts
//! it (`drop_pool_empty`), like a full ring.

use alloc::vec::Vec;

use super::{Error, Result};
use crate::drivers::virtio::net::pair::BUFFER;
use crate::ipc::channel::{self, Receiver, Sender};

/// Buffers per core.
pub const FRAMES: usize = 512;
/// Bytes of one buffer: a whole device buffer.
pub const FRAME: usize = BUFFER;

/// A frame in a buffer, and the owner core whose pool it goes back to
/// (`None`: a frame the stack sent to itself, from the heap, freed).
pub struct Buffer {
    pub data: Vec<u8>,
    pub home: Option<u16>,
}

/// An owner core's side: each core's free buffers.
pub struct Free {
    /// The owner core (the buffers' home).
    home: u16,
    returned: Vec<Receiver<Vec<u8>>>,
    spare: Vec<Vec<Vec<u8>>>,
}

impl Free {
    /// A free buffer of core `core`'s pool holding `frame`.
    pub fn copy(&mut self, core: usize, frame: &[u8]) -> Option<Buffer> {
        let mut buffer = match self.spare.get_mut(core)?.pop() {
            Some(buffer) => buffer,
            None => self.returned.get_mut(core)?.try_recv()?,
        };
        buffer.clear();
        buffer.extend_from_slice(frame);
        Some(Buffer {
            data: buffer,
            home: Some(self.home),
        })
    }

    /// Takes back a buffer that was not sent.
    pub fn put(&mut self, core: usize, buffer: Buffer) {
        if let Some(spare) = self.spare.get_mut(core) {
            spare.push(buffer.data);
        }
    }
}

/// One core's return rings, by owner core (`None`: that core owns no pair).
pub type Backs = Vec<Option<Sender<Vec<u8>>>>;

/// What [`pools`] makes.
pub struct Pools {
    /// Each owner core and its side of the pools.
    pub frees: Vec<(usize, Free)>,
    /// Each core's return rings.
    pub backs: Vec<Backs>,
}

/// Every owner's pools: for each core of `owners`, its [`Free`]; for every
/// core, its return rings by owner core (`None` where that core owns no
/// pair). The [`FRAMES`] buffers of a core are shared out among the owners.
pub fn pools(cores: usize, owners: &[usize]) -> Result<Pools> {
    let per_owner = (FRAMES / owners.len().max(1)).max(1);
    let mut frees = Vec::with_capacity(owners.len());
    let mut backs: Vec<Backs> = (0..cores)
        .map(|_| (0..cores).map(|_| None).collect())
        .collect();
    for &owner in owners {
        let mut returned = Vec::with_capacity(cores);
        for back_of_core in backs.iter_mut() {
            let (mut back, ret) =
                channel::channel::<Vec<u8>>(per_owner).map_err(|_| Error::NoNetwork)?;
            for _ in 0..per_owner {
                if back.try_send(Vec::with_capacity(FRAME)).is_err() {
                    break;
                }
            }
            returned.push(ret);
            back_of_core[owner] = Some(back);
        }
        frees.push((
            owner,
            Free {
                home: owner as u16,
                returned,
                spare: (0..cores).map(|_| Vec::new()).collect(),
            },
        ));
    }
    Ok(Pools { frees, backs })
}
