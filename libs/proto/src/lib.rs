//! The intercore protocol of percore: the [`Message`]s cores send each
//! other and the bus that carries them.
//!
//! Every core runs a reactor loop; cores talk only through an N x N matrix
//! of SPSC rings (one per ordered core pair, from `percore-ring`) plus one
//! broadcast ring per core. [`Bus::new`] builds all of it up front and hands
//! out one [`Endpoint`] per core. A sender learns from each send whether the
//! receiver had halted ([`Delivery::RingDoorbell`]); only then does the
//! kernel send an IPI, so a busy core is never interrupted.
//!
//! The reactor loop of one core, against this crate:
//!
//! ```
//! use percore_proto::{Bus, CoreId, Message, TaskRef};
//! let mut eps = Bus::new(2, 64).unwrap();
//! let (mut a, mut b) = (eps.remove(0), eps.remove(0));
//! let d = a.send(CoreId(1), Message::Wake { task: TaskRef(7) }).unwrap();
//! if d.must_ring() { /* kernel: send IPI to core 1 */ }
//!
//! // core 1, one loop iteration:
//! b.drain(64, |from, msg| { /* 1. act on msg */ });
//! for core in b.flush().iter() { /* send IPI to `core` */ }
//! // 2.-4. timers, readiness, run a task; 5. nothing ready:
//! if b.prepare_sleep() {
//!     /* halt until IPI */
//!     b.end_sleep();
//! }
//! ```

#![no_std]

extern crate alloc;

mod bus;
mod core_set;
mod delivery;
mod endpoint;
mod error;
mod id;
mod inbound;
mod message;
mod stats;
mod word;

pub use bus::Bus;
pub use core_set::{CoreSet, MAX_CORES};
pub use delivery::{Batch, Delivery};
pub use endpoint::Endpoint;
pub use error::{BusError, RouteError, SendError};
pub use id::{CoreId, Handle, TaskRef};
pub use message::Message;
pub use stats::Stats;
pub use word::Word;
