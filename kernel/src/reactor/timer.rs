//! Timer futures on the per-core wheel: `sleep`, `sleep_until`, `interval`,
//! and `sleep_on` (a timer on another core's wheel, the protocol's `Timer`).
//!
//! A sleeping task puts its waker into the wheel of the core it runs on; the
//! reactor advances the wheel every loop iteration and programs the timer
//! for the wheel's next deadline only (tickless: no timer interrupt unless a
//! timer is due). If a task migrates while sleeping, its old core's timer
//! still fires and the waker follows the task to its new core.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use percore_proto::{Handle, Message};
use percore_timer::{TimerHandle, Wheel};

use super::{reactor, this};
use crate::arch::{CoreId, cpu};
use crate::time::{Clock, Instant};

/// Runs `f` on this core's timer wheel (None before the reactor exists).
fn with_wheel<R>(f: impl FnOnce(&mut Wheel<Waker>) -> R) -> Option<R> {
    let reactor = reactor(cpu::core_id())?;
    let mut wheel = reactor.wheel.borrow_mut();
    let result = f(&mut wheel);
    reactor.stats.timers.store(wheel.len(), Ordering::Relaxed);
    Some(result)
}

/// The earliest deadline on this core's timer wheel, if any: for a task
/// that keeps its core busy past its slice and arms the timer interrupt
/// itself (a user thread), so the wheel's timers still fire on time.
pub fn next_deadline() -> Option<Instant> {
    with_wheel(|wheel| wheel.next_deadline())
        .flatten()
        .map(Instant)
}

/// Completes at `deadline` (never earlier).
pub struct Sleep {
    deadline: Instant,
    armed: Option<(CoreId, TimerHandle)>,
}

/// Sleeps for `duration`.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant(
        Clock::now().0.saturating_add(duration.as_nanos() as u64),
    ))
}

/// Sleeps until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        armed: None,
    }
}

impl Sleep {
    fn disarm(&mut self) {
        if let Some((core, handle)) = self.armed.take()
            && core == cpu::core_id()
        {
            // On another core the timer stays: it fires once, waking a task
            // that no longer waits, which is harmless.
            with_wheel(|wheel| {
                let _ = wheel.cancel(handle);
            });
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Clock::now() >= self.deadline {
            self.disarm();
            return Poll::Ready(());
        }
        // Re-arm on every poll that is not the timer's own wake-up: the
        // waker may have changed, or the task may have moved cores.
        self.disarm();
        let deadline = self.deadline.0;
        let waker = cx.waker().clone();
        match with_wheel(|wheel| wheel.insert(deadline, waker)) {
            Some(Ok(handle)) => self.armed = Some((cpu::core_id(), handle)),
            // The wheel is full or absent: poll again soon instead of losing the wake-up.
            Some(Err(_)) | None => cx.waker().wake_by_ref(),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Ticks every `period`, without drift: tick n is due at start + n·period,
/// however late the previous one was taken.
pub struct Interval {
    next: Instant,
    period: u64,
    sleep: Option<Sleep>,
}

/// An interval whose first tick is one `period` from now.
pub fn interval(period: Duration) -> Interval {
    let period = (period.as_nanos() as u64).max(1);
    Interval {
        next: Instant(Clock::now().0 + period),
        period,
        sleep: None,
    }
}

impl Interval {
    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        core::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// [`tick`](Interval::tick) as a poll: ready with the tick's scheduled
    /// instant once it is due, else the waker is woken then.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let due = self.next;
        let sleep = self.sleep.get_or_insert_with(|| sleep_until(due));
        match Pin::new(sleep).poll(cx) {
            Poll::Ready(()) => {
                self.sleep = None;
                self.next = Instant(due.0 + self.period);
                Poll::Ready(due)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Sleeps until `deadline` on a timer armed in core `core`'s wheel (the
/// protocol's `Timer` message): the wake-up comes back over the bus. Never
/// completes before the deadline.
pub async fn sleep_on(core: CoreId, deadline: Instant) {
    core::future::poll_fn(|cx| {
        if Clock::now() >= deadline {
            return Poll::Ready(());
        }
        // Not due (first poll, or a wake-up a few ns ahead of this core's
        // clock): arm a timer there for the deadline.
        let here = this();
        if core == here.core() || reactor(core).is_none() {
            here.arm_timer(deadline.0, cx.waker().clone());
        } else {
            here.send(
                core,
                Message::Timer {
                    waker: Handle::new(Box::new(cx.waker().clone())),
                    deadline_ns: deadline.0,
                },
            );
        }
        Poll::Pending
    })
    .await
}
