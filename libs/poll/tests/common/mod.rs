//! Host test helpers: a `Park` built on std thread parking.

use std::time::Duration;

use percore_poll::{Park, Poll};

/// Parks the thread that created the `Poll`; unparked from any thread.
pub struct ThreadPark(pub std::thread::Thread);

impl Park for ThreadPark {
    fn park(&self, timeout: Option<Duration>) {
        match timeout {
            Some(t) => std::thread::park_timeout(t),
            None => std::thread::park(),
        }
    }

    fn unpark(&self) {
        self.0.unpark();
    }
}

/// A poll that sleeps on the current thread.
pub fn thread_poll(capacity: usize) -> Poll {
    Poll::with_park(capacity, ThreadPark(std::thread::current())).unwrap()
}
