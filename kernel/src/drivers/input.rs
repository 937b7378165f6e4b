//! A byte-input device as an ordinary event source: what the UART and the
//! keyboard share.
//!
//! The device's interrupt handler pushes bytes into a work-distributing
//! ring (`percore_ring::spmc::work`: one producer, the handler; any number
//! of readers, each byte taken by exactly one) and raises the source's
//! readiness in the owner core's readiness queue. Wakers never run in the
//! handler: the owner's reactor wakes the registered readers from its
//! queue, through the bus when a reader lives on another core. A byte that
//! finds the ring full is counted rather than silently lost.

use core::future::{Future, poll_fn};
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};

use futures_core::Stream;

use percore_poll::{Interest, Ready};
use percore_ring::spmc::work;

use crate::arch::CoreId;
use crate::reactor::readiness::{self, Readiness, ReadinessError, SourceId};

/// Why an input device is not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// The device's `init` has not run, or failed.
    NotReady,
    /// The readiness registration failed.
    Readiness(ReadinessError),
}

/// A device's input ring and readiness source.
pub struct Input {
    ring: spin::Mutex<work::Producer<u8>>,
    readers: work::Consumer<u8>,
    source: SourceId,
    received: AtomicU64,
    overruns: AtomicU64,
}

impl Input {
    /// A ring of `capacity` bytes and a source owned by core `owner` (the
    /// core the device's interrupt goes to).
    pub fn new(owner: CoreId, capacity: usize) -> Result<Input, InputError> {
        let source = readiness::define_source(owner).map_err(InputError::Readiness)?;
        let (producer, consumer) = work::channel(capacity).map_err(|_| InputError::NotReady)?;
        Ok(Input {
            ring: spin::Mutex::new(producer),
            readers: consumer,
            source,
            received: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
        })
    }

    /// The device's interrupt handler: queues every byte `next` yields,
    /// then raises readiness once.
    pub fn receive(&self, mut next: impl FnMut() -> Option<u8>) {
        let mut ring = self.ring.lock();
        while let Some(byte) = next() {
            self.received.fetch_add(1, Ordering::Relaxed);
            if ring.try_push(byte).is_err() {
                self.overruns.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(ring);
        readiness::raise(self.source, Ready::READABLE);
    }

    /// A task's reader of this input, on any core.
    pub fn reader(&self) -> Result<Reader, InputError> {
        Ok(Reader {
            readiness: Readiness::register(self.source, Interest::READABLE)
                .map_err(InputError::Readiness)?,
            ring: self.readers.clone(),
        })
    }

    /// The next byte, if any, without registering.
    pub fn try_read(&self) -> Option<u8> {
        self.readers.clone().try_pop().ok()
    }

    /// (bytes received, bytes dropped because the ring was full).
    pub fn stats(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.overruns.load(Ordering::Relaxed),
        )
    }
}

/// A task's reader of one input (its registration lives in the owner
/// core's readiness queue).
pub struct Reader {
    readiness: Readiness,
    ring: work::Consumer<u8>,
}

impl Reader {
    /// Waits for the next byte. Cancel-safe: a byte is taken only by the
    /// poll that returns it, so dropping the future loses nothing.
    pub async fn next_byte(&mut self) -> u8 {
        poll_fn(|cx| self.poll_byte(cx)).await
    }

    /// [`next_byte`](Self::next_byte) as a poll: the stream's step.
    pub fn poll_byte(&mut self, cx: &mut Context<'_>) -> Poll<u8> {
        loop {
            // Edge-triggered: take what is there, then wait for the next edge.
            if let Ok(byte) = self.ring.try_pop() {
                return Poll::Ready(byte);
            }
            if self.readiness.poll_ready(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// The bytes typed, as a `futures_core::Stream` (it never ends).
impl Stream for Reader {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        self.get_mut().poll_byte(cx).map(Some)
    }
}

/// Waits for the next byte from either reader (whichever has one first).
pub async fn next_of_two(first: &mut Reader, second: &mut Reader) -> u8 {
    let mut a = pin!(first.next_byte());
    let mut b = pin!(second.next_byte());
    poll_fn(|cx| match a.as_mut().poll(cx) {
        Poll::Ready(byte) => Poll::Ready(byte),
        Poll::Pending => b.as_mut().poll(cx),
    })
    .await
}
