//! A small async executor over [`Poll`](crate::poll::Poll): one future run
//! to its end by [`block_on`]; while it waits, the poll waits for events
//! (one `ring_enter` when nothing is ready) and records which tokens
//! became readable; [`readable`] is the future that waits for one.
//!
//! ```ignore
//! let mut poll = Poll::new(Ring::setup(16)?);
//! poll.registry().register(timer, Token(1), Interest::READABLE)?;
//! block_on(&mut poll, async {
//!     for _ in 0..3 {
//!         readable(Token(1)).await; // three timer expiries
//!     }
//! });
//! ```

use core::cell::Cell;
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::{Context, Poll as TaskPoll, Waker};

use crate::poll::{Events, MAX_EVENTS, Poll, Token};

/// Tokens `0..64` seen readable and not yet awaited, as bits.
struct Ready(Cell<u64>);

// SAFETY: a program has one thread.
unsafe impl Sync for Ready {}

static READY: Ready = Ready(Cell::new(0));

/// Completes when `token` (below 64) has been readable since it was last
/// awaited.
pub async fn readable(token: Token) {
    let bit = 1u64 << (token.0 % 64);
    poll_fn(|_| {
        let ready = READY.0.get();
        if ready & bit != 0 {
            READY.0.set(ready & !bit);
            TaskPoll::Ready(())
        } else {
            TaskPoll::Pending
        }
    })
    .await
}

/// Runs `future` to its end, waiting on `poll` while it cannot go on.
pub fn block_on<F: Future>(poll: &mut Poll, future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let mut events = Events::with_capacity(MAX_EVENTS);
    loop {
        if let TaskPoll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // Every event re-polls the future (one future: no need to know
        // which waker it registered).
        if let Err(error) = poll.poll(&mut events, None) {
            panic!("block_on: poll failed: {error}");
        }
        for event in events.iter() {
            READY.0.set(READY.0.get() | 1u64 << (event.token().0 % 64));
        }
    }
}
