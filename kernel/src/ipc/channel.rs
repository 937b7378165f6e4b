//! Typed async channels between tasks on any cores, on a lock-free
//! multi-producer ring (`percore_ring::mpsc::cas`).
//!
//! Bounded with backpressure: `send().await` waits for space, `try_send`
//! hands the value back on a full channel. Nothing is dropped. The receiver
//! is woken through its waker (a same-core wake or a `Wake` message over the
//! intercore bus); senders waiting for space are woken when a value is taken.
//!
//! The receiver is a `futures_core::Stream` (it ends when every sender is
//! gone) and the sender a `futures_sink::Sink` whose readiness is the
//! channel's room, so `futures-util`'s combinators compose them
//! (`rx.map(f).forward(tx)` moves values across cores with backpressure).

use alloc::sync::Arc;
use core::convert::Infallible;
use core::future::poll_fn;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;

use percore_ring::mpsc::cas;
use percore_ring::{CapacityError, PushError};
use percore_wake::{WaitList, WakerSlot};

struct Shared {
    receiver: WakerSlot,
    senders_waiting: WaitList,
    senders: AtomicUsize,
}

/// The sending half; clone it for more senders (on any cores).
pub struct Sender<T> {
    ring: cas::Producer<T>,
    shared: Arc<Shared>,
    /// A value the `Sink` side accepted and could not place yet (placed by
    /// the next `poll_ready` or `poll_flush`).
    pending: Option<T>,
}

// No field is ever pinned (the pending value is moved in and out freely).
impl<T> Unpin for Sender<T> {}

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
        receiver: WakerSlot::new(),
        // Room for a few waiting senders from the start: a stream of
        // messages allocates nothing, even the first time a sender waits.
        senders_waiting: WaitList::with_capacity(4),
        senders: AtomicUsize::new(1),
    });
    Ok((
        Sender {
            ring: producer,
            shared: shared.clone(),
            pending: None,
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
                self.shared.receiver.wake();
                Ok(())
            }
            Err(PushError::Full(value)) => Err(TrySendError::Full(value)),
        }
    }

    /// Sends, waiting for space while the channel is full.
    pub async fn send(&mut self, value: T) {
        let mut value = Some(value);
        poll_fn(|cx| self.poll_place(cx, &mut value)).await
    }

    /// Places the value in `slot` (if any), or registers for room and
    /// leaves it there.
    fn poll_place(&mut self, cx: &mut Context<'_>, slot: &mut Option<T>) -> Poll<()> {
        let Some(v) = slot.take() else {
            return Poll::Ready(());
        };
        match self.try_send(v) {
            Ok(()) => Poll::Ready(()),
            Err(TrySendError::Full(v)) => {
                self.shared.senders_waiting.register(cx.waker());
                // Re-try: the receiver may have made room before we registered.
                match self.try_send(v) {
                    Ok(()) => Poll::Ready(()),
                    Err(TrySendError::Full(v)) => {
                        *slot = Some(v);
                        Poll::Pending
                    }
                }
            }
        }
    }

    /// Places the value the sink side holds back.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut pending = self.pending.take();
        let placed = self.poll_place(cx, &mut pending);
        self.pending = pending;
        placed
    }
}

/// A sink with the channel's backpressure: ready once the value accepted
/// before is in the ring (at most one is held back). Sending never fails.
impl<T> Sink<T> for Sender<T> {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.get_mut().poll_pending(cx).map(Ok)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Infallible> {
        let this = self.get_mut();
        debug_assert!(this.pending.is_none(), "start_send without poll_ready");
        this.pending = Some(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.get_mut().poll_pending(cx).map(Ok)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.get_mut().poll_pending(cx).map(Ok)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        Sender {
            ring: self.ring.clone(),
            shared: self.shared.clone(),
            pending: None,
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // A sink dropped without a flush: place its held-back value if there
        // is room, or say that it is lost.
        if let Some(value) = self.pending.take()
            && self.try_send(value).is_err()
        {
            log::warn!("channel: a sender dropped unflushed with a full channel; one value lost");
        }
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.receiver.wake(); // the receiver learns the channel is closed
        }
    }
}

impl<T> Receiver<T> {
    /// Takes a value without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        let value = self.ring.try_pop().ok()?;
        self.shared.senders_waiting.wake_all();
        Some(value)
    }

    /// The next value, or `None` once every sender is gone and the channel is empty.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll: the stream's step.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(value) = self.try_recv() {
            return Poll::Ready(Some(value));
        }
        if self.shared.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(self.try_recv());
        }
        self.shared.receiver.register(cx.waker());
        // Re-check after registering: a value sent in between is not missed.
        match self.try_recv() {
            Some(value) => Poll::Ready(Some(value)),
            None if self.shared.senders.load(Ordering::Acquire) == 0 => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// The values in order; ends once every sender is gone and all were read.
impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

/// `count` round trips of one `u64` between this core and core `far` (an
/// echo task there, two channels of `capacity`): each round trip in clock
/// cycles, in order. The shell's `bench` and `cargo xtask bench reactor`
/// both measure with this.
pub async fn round_trips(far: crate::arch::CoreId, count: usize) -> alloc::vec::Vec<u64> {
    use crate::arch::clock;
    use crate::reactor::{priority, spawn_on};
    let (Ok((mut to_far, mut at_far)), Ok((mut back, mut at_home))) =
        (channel::<u64>(64), channel::<u64>(64))
    else {
        return alloc::vec::Vec::new();
    };
    let echo = spawn_on(far, priority(40), async move {
        while let Some(v) = at_far.recv().await {
            back.send(v).await;
        }
    });
    let mut samples = alloc::vec::Vec::with_capacity(count);
    for i in 0..count as u64 {
        let t0 = clock::cycles();
        to_far.send(i).await;
        let _ = at_home.recv().await;
        samples.push(clock::cycles() - t0);
    }
    drop(to_far);
    echo.await;
    samples
}
