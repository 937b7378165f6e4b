//! # percore-poll: mio-compatible readiness
//!
//! The API of [mio](https://docs.rs/mio) 1.x by name and semantics —
//! [`Poll::poll`]`(&mut Events, Option<Duration>)`, [`Registry`]'s
//! `register` / `reregister` / `deregister` with [`Token`] and [`Interest`],
//! [`Events`] / [`Event`], [`Waker`], edge-triggered — over a backend that
//! needs no operating system:
//!
//! - An event source (a virtio queue, an intercore ring, a timer) implements
//!   [`Source`] by embedding a [`Registration`] and reports readiness through
//!   its [`Signal`], lock-free, from any core or interrupt handler.
//! - Readiness goes into a bounded ring with de-duplication: one atomic state
//!   word per registration remembers whether it is already queued, so a storm
//!   of signals sets bits and never grows memory.
//! - `poll` cannot block in `no_std`; it waits through a pluggable [`Park`]
//!   hook (the kernel: LAPIC deadline + `hlt`, woken by IPI; host: thread park).
//!
//! ```
//! use std::time::Duration;
//! use percore_poll::{Events, Interest, Poll, Ready, Registration, Token};
//!
//! const RX: Token = Token(0);
//! let mut poll = Poll::new().unwrap();
//! let mut events = Events::with_capacity(128);
//! let mut rx = Registration::new();
//! poll.registry().register(&mut rx, RX, Interest::READABLE).unwrap();
//!
//! let irq = rx.signal().unwrap().clone(); // handed to the interrupt handler
//! irq.set(Ready::READABLE).unwrap();
//!
//! poll.poll(&mut events, Some(Duration::from_millis(10))).unwrap();
//! for event in events.iter() {
//!     match event.token() {
//!         RX => assert!(event.is_readable()),
//!         _ => unreachable!(),
//!     }
//! }
//! ```
//!
//! Where this API differs from mio, and why, is listed in the crate README.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

mod error;
pub mod event;
mod interest;
mod park;
mod poll;
mod queue;
mod ready;
mod registry;
mod shared;
mod signal;
mod source;
mod sync;
mod token;
mod waker;

pub use error::{Error, Result};
pub use event::{Event, Events};
pub use interest::Interest;
pub use park::{Park, Spin};
pub use poll::Poll;
pub use ready::Ready;
pub use registry::Registry;
pub use signal::Signal;
pub use source::{Registration, Source};
pub use token::Token;
pub use waker::Waker;
