//! Typed async channels between tasks on any cores, on a lock-free
//! multi-producer ring (`percore_ring::mpsc::cas`).
//!
//! Bounded with backpressure: `send().await` waits for space, `try_send`
//! hands the value back on a full channel. Nothing is dropped. The receiver
//! is woken through its waker (a same-core wake or a `Wake` message over the
//! intercore bus); senders waiting for space are woken when a value is taken.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::future::poll_fn;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::{Poll, Waker};

use percore_ring::mpsc::cas;
use percore_ring::{CapacityError, PushError};

struct Shared {
    receiver: spin::Mutex<Option<Waker>>,
    senders_waiting: spin::Mutex<VecDeque<Waker>>,
    senders: AtomicUsize,
}

/// The sending half; clone it for more senders (on any cores).
pub struct Sender<T> {
    ring: cas::Producer<T>,
    shared: Arc<Shared>,
}

/// The receiving half (one per channel).
pub struct Receiver<T> {
    ring: cas::Consumer<T>,
    shared: Arc<Shared>,
}

/// Why `try_send` did not send; the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    Full(T),
}

/// A channel of `capacity` values (rounded up to a power of two).
pub fn channel<T: Send>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), CapacityError> {
    let (producer, consumer) = cas::channel(capacity)?;
    let shared = Arc::new(Shared {
        receiver: spin::Mutex::new(None),
        senders_waiting: spin::Mutex::new(VecDeque::new()),
        senders: AtomicUsize::new(1),
    });
    Ok((
        Sender {
            ring: producer,
            shared: shared.clone(),
        },
        Receiver {
            ring: consumer,
            shared,
        },
    ))
}

impl<T> Sender<T> {
    /// Sends without waiting; a full channel hands the value back.
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        match self.ring.try_push(value) {
            Ok(()) => {
                if let Some(waker) = self.shared.receiver.lock().take() {
                    waker.wake();
                }
                Ok(())
            }
            Err(PushError::Full(value)) => Err(TrySendError::Full(value)),
        }
    }

    /// Sends, waiting for space while the channel is full.
    pub async fn send(&mut self, value: T) {
        let mut value = Some(value);
        poll_fn(|cx| {
            let Some(v) = value.take() else {
                return Poll::Ready(());
            };
            match self.try_send(v) {
                Ok(()) => Poll::Ready(()),
                Err(TrySendError::Full(v)) => {
                    self.shared
                        .senders_waiting
                        .lock()
                        .push_back(cx.waker().clone());
                    // Re-try once: the receiver may have made room before our waker was queued.
                    match self.try_send(v) {
                        Ok(()) => Poll::Ready(()),
                        Err(TrySendError::Full(v)) => {
                            value = Some(v);
                            Poll::Pending
                        }
                    }
                }
            }
        })
        .await
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        Sender {
            ring: self.ring.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(waker) = self.shared.receiver.lock().take()
        {
            waker.wake(); // the receiver learns the channel is closed
        }
    }
}

impl<T> Receiver<T> {
    /// Takes a value without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        let value = self.ring.try_pop().ok()?;
        // Wake every waiting sender, not just one: a queued waker may be
        // stale (its sender got a slot on its re-try), and waking only that
        // one could leave a real waiter asleep forever.
        let waiting = core::mem::take(&mut *self.shared.senders_waiting.lock());
        for waker in waiting {
            waker.wake();
        }
        Some(value)
    }

    /// The next value, or `None` once every sender is gone and the channel is empty.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            if let Some(value) = self.try_recv() {
                return Poll::Ready(Some(value));
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(self.try_recv());
            }
            *self.shared.receiver.lock() = Some(cx.waker().clone());
            // Re-check after publishing the waker: a value sent in between is not missed.
            match self.try_recv() {
                Some(value) => Poll::Ready(Some(value)),
                None if self.shared.senders.load(Ordering::Acquire) == 0 => Poll::Ready(None),
                None => Poll::Pending,
            }
        })
        .await
    }
}
