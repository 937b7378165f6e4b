//! The one synchronisation primitive the driver issues itself, the full
//! fence of the notification handshakes, switched to [loom]'s model-checked
//! version under `--cfg loom`. Every other ordered access goes through
//! [`QueueMemory`](crate::QueueMemory), whose loom implementation lives in
//! the tests.
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::fence;
