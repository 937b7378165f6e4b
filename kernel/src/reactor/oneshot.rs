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
use core::task::{Context, Poll, Waker};

use percore_proto::{Handle, Message, Word};

use super::reactor;
use crate::arch::{CoreId, cpu};

/// The shared state, under one lock: the two sides each take it once per
/// send or poll, so no wake-up can slip between a check and a parking.
struct State<T> {
    value: Option<T>,
    /// The value is in place, or the sender is gone.
    done: bool,
    /// The receiver's waker and the core it waits on.
    waiter: Option<(CoreId, Waker)>,
}

type Inner<T> = spin::Mutex<State<T>>;

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
    let inner = Arc::new(spin::Mutex::new(State {
        value: None,
        done: false,
        waiter: None,
    }));
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
            finish(&inner, Some(value));
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            finish(&inner, None);
        }
    }
}

fn finish<T>(inner: &Inner<T>, value: Option<T>) {
    let waiter = {
        let mut state = inner.lock();
        state.value = value;
        state.done = true;
        state.waiter.take()
    };
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
        self.inner.lock().done
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.inner.lock();
        if state.done {
            return Poll::Ready(state.value.take());
        }
        let me = cpu::core_id();
        match &mut state.waiter {
            Some((core, waker)) if *core == me => waker.clone_from(cx.waker()),
            waiter => *waiter = Some((me, cx.waker().clone())),
        }
        Poll::Pending
    }
}
