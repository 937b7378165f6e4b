//! Lock-free intercore queues for the percore microkernel.
//!
//! Every bounded ring here is allocated once, at creation, with a capacity
//! rounded up to a power of two ([`capacity_for`]); afterwards no operation
//! allocates, blocks, or drops a message: a full ring hands the value back
//! ([`PushError::Full`]). Blocking is the caller's choice of
//! [`wait::WaitStrategy`].
//!
//! | module | shape | notes |
//! |---|---|---|
//! | [`spsc`] | 1 -> 1 | the core-pair link; in-place `write_chunk` / `read_chunk` |
//! | [`mpsc::cas`] | N -> 1 | one ring, producers CAS the tail |
//! | [`mpsc::fanin`] | N -> 1 | one SPSC per producer, fair or priority select |
//! | [`spmc::broadcast`] | 1 -> every subscriber | Disruptor multi-cursor, zero copy |
//! | [`spmc::work`] | 1 -> one of N | work distribution |
//! | [`priority`] | 1 -> 1 | a ring per level + bitmap of non-empty levels |
//! | [`link`] | 1 -> 1 | **unbounded**, allocates segments; never backpressures |
//!
//! All flavours implement [`Sender`] / [`Receiver`].
//!
//! ```
//! use percore_ring::{Receiver, Sender, spsc, wait::BusySpin};
//! let (mut tx, mut rx) = spsc::channel::<u64>(1024).unwrap();
//! tx.push(7, &mut BusySpin);
//! assert_eq!(rx.pop(&mut BusySpin), 7);
//! ```

#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod buffer;
mod cache_pad;
mod error;
mod queue;
mod seq_ring;
mod sync;

pub mod link;
pub mod mpsc;
pub mod priority;
pub mod spmc;
pub mod spsc;
pub mod wait;

pub use buffer::capacity_for;
pub use error::{CapacityError, ChunkError, PopError, PushError, SubscribeError};
pub use queue::{Receiver, Sender};
