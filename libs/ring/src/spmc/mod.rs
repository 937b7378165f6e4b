//! Single-producer multi-consumer rings:
//!
//! - [`broadcast`]: Disruptor-style multi-cursor ring. The publisher writes
//!   each message once; every subscriber reads every message in place through
//!   its own cursor; the publisher waits for the slowest subscriber.
//! - [`work`]: work distribution. Each message goes to exactly one consumer.

pub mod broadcast;
pub mod work;
