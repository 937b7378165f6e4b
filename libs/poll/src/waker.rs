//! [`Waker`]: wakes a `Poll` from another core (mio's `Waker`).

use crate::{Interest, Ready, Registry, Result, Signal, Token};

/// Wakes the [`Poll`](crate::Poll) it was made for, from any core or
/// interrupt: the next `poll` reports a readable event with the waker's token.
///
/// Send + Sync; share it with `Arc`. Wakes coalesce: several `wake` calls
/// before a `poll` give one event. Dropping it frees its registration slot
/// (the `Poll` reclaims the slot during its next `poll`).
///
/// ```
/// use std::sync::Arc;
/// use percore_poll::{Events, Poll, Token, Waker};
///
/// const WAKE: Token = Token(10);
/// let mut poll = Poll::new().unwrap();
/// let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
/// let w = Arc::clone(&waker);
/// let t = std::thread::spawn(move || w.wake().unwrap());
///
/// let mut events = Events::with_capacity(2);
/// poll.poll(&mut events, None).unwrap();
/// let e = events.iter().next().unwrap();
/// assert_eq!(e.token(), WAKE);
/// assert!(e.is_readable());
/// t.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Waker {
    signal: Signal,
}

impl Waker {
    /// Registers a waker under `token` (it takes one registration slot).
    pub fn new(registry: &Registry, token: Token) -> Result<Waker> {
        let signal = registry.open(token, Interest::READABLE)?;
        Ok(Waker { signal })
    }

    /// Makes the `Poll` report `token` as readable and unparks it if it waits.
    pub fn wake(&self) -> Result<()> {
        self.signal.set(Ready::READABLE)
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.signal
            .shared
            .release(self.signal.slot, self.signal.generation);
    }
}
