//! One turn of the loop (steps 1 to 5 of the module doc of `reactor`): the
//! engine's dispatch of protocol messages and its idle decision.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::task::Waker;

use percore_proto::{Handle, Message, TaskRef, Word};
use percore_timer::Expired;

use super::task::TaskCell;
use super::{DRAIN_BATCH, Reactor, balance, reactors, readiness, service, stop};
use crate::arch::{CoreId, call, cpu, doorbell, timer};
use crate::time::{Clock, Instant};

/// The task a `Spawn`, `Wake` or `Migrate` message carries.
fn task_of(task: TaskRef) -> Arc<TaskCell> {
    // SAFETY: every task reference on the bus was packed from an owned
    // `Arc<TaskCell>` by `task::send_task` or `task::send_wake` (the only
    // senders of these messages), and each message is received once.
    unsafe { Arc::from_word(task.0) }
}

/// The waker a `Timer` or `Join` message carries.
fn waker_of(waker: Handle) -> Box<Waker> {
    // SAFETY: every waker handle on the bus was packed from an owned
    // `Box<Waker>` by `timer::sleep_on` or `oneshot::wake_on` (the only
    // senders of these messages), and each message is received once.
    unsafe { waker.take() }
}

impl Reactor {
    /// One turn of the loop; sleeps at the end if nothing is ready and
    /// `may_sleep()` still says so with interrupts masked.
    pub(super) fn turn(&self, may_sleep: &dyn Fn() -> bool) {
        self.drain_bus();
        if self.stopping.load(Ordering::Acquire) {
            self.stop_here();
        }
        self.fire_timers();
        readiness::dispatch(self);
        self.take_local();
        let (ran, ran_top) = self.run_batch();
        balance::when_busy(self, ran, ran_top);
        self.flush_overflow();
        call::serve_pending();
        if ran == 0 {
            balance::when_idle(self);
            self.idle(may_sleep);
        }
    }

    /// Step 1: takes a batch of messages from the inbound rings and acts on them.
    fn drain_bus(&self) {
        // The batch goes through a buffer kept from turn to turn (a
        // dispatched message may send, which borrows the bus again, so the
        // batch is taken off the rings before any is acted on).
        let mut incoming = core::mem::take(&mut *self.inbox.borrow_mut());
        let count = {
            let mut bus = self.bus.borrow_mut();
            let count = bus.drain(DRAIN_BATCH, |from, message| incoming.push((from, message)));
            // The depth this turn found: a drain under budget emptied every
            // ring (it stops after a lap that finds nothing), so it is the
            // count; only a drain that spent its budget needs to look at
            // what is left (a second pass over the cursors, only then).
            let depth = if count < DRAIN_BATCH {
                count
            } else {
                count + bus.inbound_depth()
            };
            self.stats.ring_depth.store(depth, Ordering::Relaxed);
            self.stats
                .ring_depth_max
                .fetch_max(depth, Ordering::Relaxed);
            count
        };
        self.stats
            .messages_in
            .fetch_add(count as u64, Ordering::Relaxed);
        for (from, message) in incoming.drain(..) {
            self.dispatch(from, message);
        }
        *self.inbox.borrow_mut() = incoming;
    }

    /// Acts on one message: the engine's own here, a service's through the
    /// handler it registered.
    pub(super) fn dispatch(&self, from: CoreId, message: Message) {
        match message {
            Message::Spawn { task, .. } => self.adopt(task_of(task)),
            Message::Migrate { task, .. } => {
                self.stats.migrated_in.fetch_add(1, Ordering::Relaxed);
                self.steal_pending.store(false, Ordering::Release);
                self.adopt(task_of(task));
            }
            // `take_local` applies it, or forwards it if the task moved on.
            Message::Wake { task } => self.local.lock().push_back(task_of(task)),
            Message::StealRequest { thief, priority } => {
                balance::on_steal_request(self, thief, priority)
            }
            Message::StealDenied => balance::on_denied(self),
            Message::Timer { waker, deadline_ns } => self.arm_timer(deadline_ns, *waker_of(waker)),
            Message::Join { waker } => {
                self.stats.joins_in.fetch_add(1, Ordering::Relaxed);
                waker_of(waker).wake();
            }
            Message::Stop => self.stopping.store(true, Ordering::Release),
            Message::Register {
                source,
                token,
                interest,
            } => readiness::on_register(self, source, token, interest),
            other => {
                if !service::dispatch(from, other) {
                    log::warn!("reactor: no service takes {other:?} from core {from}");
                }
            }
        }
    }

    /// Arms a timer on this core's wheel that wakes `waker` at `deadline_ns`.
    /// A full wheel wakes it at once rather than never (a sleeper re-checks
    /// its deadline and asks again).
    pub(super) fn arm_timer(&self, deadline_ns: u64, waker: Waker) {
        let inserted = {
            let mut wheel = self.wheel.borrow_mut();
            let inserted = wheel.insert(deadline_ns, waker);
            self.stats.timers.store(wheel.len(), Ordering::Relaxed);
            inserted
        };
        if let Err(percore_timer::InsertError::Full(waker)) = inserted {
            waker.wake();
        }
    }

    /// Step 2: wakes the sleepers whose deadline has passed.
    fn fire_timers(&self) {
        let now = Clock::now().0;
        let mut due = Vec::new();
        {
            let mut wheel = self.wheel.borrow_mut();
            if wheel.next_deadline().is_some_and(|d| d <= now) {
                wheel.advance(now, |expired| {
                    if let Expired::Oneshot { payload, .. } = expired {
                        due.push(payload);
                    }
                });
            }
            self.stats.timers.store(wheel.len(), Ordering::Relaxed);
        }
        // Wake outside the wheel borrow: a wake may re-enter the reactor.
        for waker in due {
            waker.wake();
        }
    }

    /// Moves overflowed messages into rings with room and rings the
    /// doorbells that needs. Overflow towards a stopped core can never
    /// drain: it is reported and dropped, or this core could never sleep
    /// again.
    fn flush_overflow(&self) {
        let ring = {
            let mut bus = self.bus.borrow_mut();
            if bus.stats().overflow_pending > 0 {
                for r in reactors().iter().filter(|r| r.is_stopped()) {
                    let dropped = bus.discard_overflow(r.core);
                    if dropped > 0 {
                        self.stats
                            .undeliverable
                            .fetch_add(dropped as u64, Ordering::Relaxed);
                        log::warn!(
                            "reactor: {dropped} queued messages to stopped core {} dropped",
                            r.core
                        );
                    }
                }
            }
            let ring = bus.flush();
            self.stats
                .overflow_pending
                .store(bus.stats().overflow_pending, Ordering::Relaxed);
            ring
        };
        for to in ring.iter() {
            doorbell::ring(to);
        }
    }

    /// Step 5, nothing to run: poll for work for the adaptive window
    /// ([`idle`](super::idle)); then arm the timer for the next deadline
    /// (early by the timer advance) and sleep until an interrupt, unless
    /// work arrived in the meantime; woken early by the timer, poll until
    /// the deadline.
    fn idle(&self, may_sleep: &dyn Fn() -> bool) {
        if self.busy_poll.load(Ordering::Relaxed) {
            // Poll mode: never sleep, so nothing needs a doorbell or a timer
            // interrupt to wake this core; the next turn looks again. A
            // deadline armed before poll mode began is withdrawn once.
            if self.timer_armed.swap(false, Ordering::Relaxed) {
                timer::cancel();
            }
            core::hint::spin_loop();
            return;
        }
        let tuning = *self.tuning.borrow_mut();
        let next = self.wheel.borrow_mut().next_deadline();
        let now = Clock::now().0;
        // Halt polling: up to the window, or to a deadline inside it.
        let poll_until = match next {
            Some(deadline) => deadline.min(now + tuning.window()),
            None => now + tuning.window(),
        };
        if self.poll_for_work(poll_until, next, may_sleep) {
            return;
        }
        cpu::disable_interrupts();
        let armed = next.map(|deadline| tuning.arm_at(deadline));
        match armed {
            Some(at) => timer::arm(Clock::cycles_at(Instant(at))),
            None => timer::cancel(),
        }
        self.timer_armed.store(next.is_some(), Ordering::Relaxed);
        let mut woke_early = false;
        if !self.has_work() && may_sleep() && self.bus.borrow_mut().prepare_sleep() {
            // Readiness signalled from another core from here on rings our doorbell.
            let readiness = self.readiness.borrow_mut();
            if readiness.prepare_sleep() && self.announce_sleep(may_sleep) {
                self.stats.sleeps.fetch_add(1, Ordering::Relaxed);
                let slept_at = Clock::now().0;
                // An interrupt pending since interrupts were masked ends the sleep at once.
                cpu::wait_for_interrupt();
                let woke = Clock::now().0;
                let mut tuning = self.tuning.borrow_mut();
                tuning.slept(woke.saturating_sub(slept_at));
                if let Some(at) = armed.filter(|&at| woke >= at) {
                    tuning.timer_woke(woke - at);
                }
                self.stats
                    .poll_window_ns
                    .store(tuning.window(), Ordering::Relaxed);
                self.stats
                    .timer_advance_ns
                    .store(tuning.advance(), Ordering::Relaxed);
                // Woken inside the advance window, before the deadline.
                woke_early = armed.is_some_and(|at| woke >= at)
                    && next.is_some_and(|deadline| woke < deadline);
            }
            self.asleep.store(false, Ordering::Release);
            readiness.end_sleep();
            drop(readiness);
            self.bus.borrow_mut().end_sleep();
        }
        cpu::enable_interrupts();
        if woke_early && let Some(deadline) = next {
            // The advanced timer woke us before the deadline: wait it out
            // here, unless other work comes first.
            self.poll_for_work(deadline, next, may_sleep);
        }
    }

    /// Marks this core asleep, then asks `may_sleep` once more: `false`
    /// (the caller's own wake-up came in the meantime) means do not sleep.
    /// A `block_on` waker on another core sets its flag, then rings only if
    /// it finds the core asleep (`FlagWaker`); with the fence on both
    /// sides, either it sees `asleep` and rings, or this sees its flag.
    fn announce_sleep(&self, may_sleep: &dyn Fn() -> bool) -> bool {
        self.asleep.store(true, Ordering::Relaxed);
        core::sync::atomic::fence(Ordering::SeqCst);
        may_sleep()
    }

    /// Spins with interrupts enabled until work arrives (`true`; also when
    /// `may_sleep` turns false: a `block_on` future was woken), the clock
    /// reaches `until`, or the clock reaches `deadline` (`true`: the next
    /// turn fires the timer). Returns at once if `until` has passed.
    fn poll_for_work(
        &self,
        until: u64,
        deadline: Option<u64>,
        may_sleep: &dyn Fn() -> bool,
    ) -> bool {
        loop {
            if self.has_work()
                || self.bus.borrow_mut().has_inbound()
                || self.readiness.borrow_mut().has_pending()
                || !may_sleep()
            {
                self.stats.poll_hits.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            let now = Clock::now().0;
            if deadline.is_some_and(|deadline| now >= deadline) {
                return true;
            }
            if now >= until {
                return false;
            }
            core::hint::spin_loop();
        }
    }

    /// Whether this core stopped for good on a `Stop` message.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn stop_here(&self) -> ! {
        stop::stop_this_core(self)
    }
}
