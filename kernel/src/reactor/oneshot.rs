//! A one-shot answer that may cross cores: a task's result for its
//! `JoinHandle`, a topic's reply to a subscriber, a probe's round trip.
//!
//! The receiver records its waker together with the core it waits on. The
//! sender fills the value and, when the waiter sits on another core, sends
//! it the protocol's `Join` message carrying the waker, so the wake-up runs
//! on the waiter's own core (and is counted there, `ReactorStats::joins_in`).
//! A [`Sender`] can itself travel in a message (it is a `Word`), which is
//! how a reply finds its way back.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use percore_proto::{Handle, Message, Word};

use super::reactor;
use crate::arch::{CoreId, cpu};

struct Inner<T> {
    /// Set (Release) once the value is in place, or the sender is gone.
    done: AtomicBool,
    value: spin::Mutex<Option<T>>,
    /// The receiver's waker and the core it waits on.
    waiter: spin::Mutex<Option<(CoreId, Waker)>>,
}

/// The filling half.
pub struct Sender<T> {
    inner: Option<Arc<Inner<T>>>,
}

/// The waiting half: a future of the value, `None` if the sender was
/// dropped without sending.
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

/// A new one-shot pair.
pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        done: AtomicBool::new(false),
        value: spin::Mutex::new(None),
        waiter: spin::Mutex::new(None),
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Fills the value and wakes the receiver (on its own core).
    pub fn send(mut self, value: T) {
        if let Some(inner) = self.inner.take() {
            *inner.value.lock() = Some(value);
            finish(&inner);
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            finish(&inner);
        }
    }
}

fn finish<T>(inner: &Inner<T>) {
    inner.done.store(true, Ordering::Release);
    let waiter = inner.waiter.lock().take();
    if let Some((core, waker)) = waiter {
        wake_on(core, waker);
    }
}

/// Wakes `waker`, which waits on core `core`: directly when that is this
/// core, else as a `Join` message to it.
fn wake_on(core: CoreId, waker: Waker) {
    match reactor(cpu::core_id()) {
        Some(here) if core != here.core() => here.send(
            core,
            Message::Join {
                waker: Handle::new(Box::new(waker)),
            },
        ),
        _ => waker.wake(),
    }
}

impl<T> Word for Sender<T> {
    fn into_word(mut self) -> u64 {
        match self.inner.take() {
            Some(inner) => inner.into_word(),
            None => 0,
        }
    }

    unsafe fn from_word(word: u64) -> Self {
        Sender {
            // SAFETY: forwarded to the caller (a word from `into_word` of a
            // `Sender<T>`, unpacked once); 0 stands for an emptied sender.
            inner: (word != 0).then(|| unsafe { Arc::from_word(word) }),
        }
    }
}

impl<T> Receiver<T> {
    /// Whether the value is in place (or the sender is gone).
    pub fn is_done(&self) -> bool {
        self.inner.done.load(Ordering::Acquire)
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let inner = &self.inner;
        if !inner.done.load(Ordering::Acquire) {
            *inner.waiter.lock() = Some((cpu::core_id(), cx.waker().clone()));
            // Re-check: the sender may have finished before the waker was stored.
            if !inner.done.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            // It did: take the waker back, so that the sender (if it has not
            // taken it yet) sends no needless wake-up.
            inner.waiter.lock().take();
        }
        Poll::Ready(inner.value.lock().take())
    }
}
