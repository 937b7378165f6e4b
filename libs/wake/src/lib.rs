//! Wake-up primitives for percore's async services, written once and
//! model-checked: every kernel object that parks a task (a channel's
//! receiver, a port's senders, a topic's subscribers, a readiness
//! registration) uses one of these two and the one protocol they share.
//!
//! - [`WakerSlot`]: one waiter (a receiver, a publisher waiting for room).
//!   Lock-free, like `futures`' `AtomicWaker`.
//! - [`WaitList`]: any number of waiters, all woken at once (senders
//!   waiting for room). Costs the waking side one fence and one load while
//!   nobody waits.
//!
//! The protocol, the same for both: the waiting side **registers, then
//! checks its condition again**, and returns `Pending` only if it still does
//! not hold; the side that makes progress **publishes it, then wakes**. The
//! primitives order the two so that at least one side sees the other: the
//! waiter sees the progress, or the waker sees the waiter. No wake-up is
//! lost (`tests/loom.rs` checks every interleaving).
//!
//! ```
//! use percore_wake::WakerSlot;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::task::Poll;
//!
//! let ready = Arc::new(AtomicBool::new(false));
//! let slot = Arc::new(WakerSlot::new());
//! let (r, s) = (ready.clone(), slot.clone());
//! let waiter = std::future::poll_fn(move |cx| {
//!     if r.load(Ordering::Acquire) { return Poll::Ready(()); }
//!     s.register(cx.waker());
//!     if r.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
//! });
//! let t = std::thread::spawn(move || { ready.store(true, Ordering::Release); slot.wake(); });
//! futures_executor::block_on(waiter);
//! t.join().unwrap();
//! ```
#![no_std]

extern crate alloc;

mod sync;
mod wait_list;
mod waker_slot;

pub use wait_list::WaitList;
pub use waker_slot::WakerSlot;
