//! Multi-producer single-consumer queues, in two flavours behind the one
//! [`Sender`](crate::Sender) / [`Receiver`](crate::Receiver) API:
//!
//! - [`cas`]: one ring shared by all producers, who claim slots with a CAS on
//!   the tail. One allocation, global FIFO order, `Producer: Clone`; the tail
//!   cache line bounces between producing cores on every push.
//! - [`fanin`]: one SPSC ring per producer, drained by a [`fanin::FanIn`] with
//!   a fair (round-robin) or priority-ordered select. No shared write line
//!   between producers, so pushes scale; order is FIFO per producer only, and
//!   the number of producers is fixed at creation. This is the intercore
//!   inbox: one SPSC ring per peer core.
//!
//! Which wins when: see the `mpsc` rows of the crate's benchmark (README).
//! With producers on different cores the fan-in avoids the contended CAS and
//! wins; the CAS ring wins on memory (one ring) and when producers are many
//! and mostly idle (the consumer polls one ring, not N).

pub mod cas;
pub mod fanin;
