//! The two adaptive numbers of the idle step (step 5), kept per core.
//!
//! **Halt polling.** Before a core sleeps it spins for up to a *window*,
//! watching its task queues, inbound rings and readiness queue; work that
//! arrives meanwhile is taken on the next turn with no doorbell IPI on the
//! sender's side and no wake-up latency on ours (a consumer that drains a
//! ring faster than its producer fills it otherwise sleeps between every
//! burst). The window adapts the way KVM's `halt_poll_ns` and Linux's
//! cpuidle-haltpoll do: a sleep that ended within [`POLL_MAX_NS`] (a
//! longer window would have caught its wake-up) doubles it, starting at
//! [`POLL_GROW_START_NS`]; a longer sleep halves it, down to zero. A core
//! that only wakes for millisecond timers, or not at all, never polls; a
//! core in a ping-pong polls just long enough.
//!
//! **Timer advance.** Waking from `hlt` on a timer interrupt takes time
//! (interrupt delivery, leaving the idle state; tens of microseconds under
//! QEMU's TCG, a few on hardware). The idle step arms the timer *advance*
//! nanoseconds before the next deadline and polls the rest, so a sleeper
//! runs at its deadline rather than a wake-up latency after it (KVM's
//! `lapic_timer_advance_ns` does the same for its guests). The advance
//! follows the wake-up latencies measured at each timer wake: it moves
//! half-way up to a later one and one sixteenth down to an earlier one, so
//! it settles near the upper end of the distribution, bounded by
//! [`ADVANCE_MAX_NS`].
//!
//! Both cost spinning time on the idle core, at most the window (or the
//! advance) per sleep; poll mode ([`super::set_busy_poll`]) spins always.

/// The first window after a short sleep.
pub const POLL_GROW_START_NS: u64 = 10_000;
/// The longest window; a sleep longer than this shrinks the window.
pub const POLL_MAX_NS: u64 = 100_000;
/// The largest timer advance.
pub const ADVANCE_MAX_NS: u64 = 50_000;

/// The adaptive state of one core's idle step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleTuning {
    window: u64,
    advance: u64,
}

impl IdleTuning {
    /// No polling and no advance until the first sleeps are measured.
    pub const fn new() -> IdleTuning {
        IdleTuning {
            window: 0,
            advance: 0,
        }
    }

    /// How long to poll for work before sleeping (ns).
    pub fn window(&self) -> u64 {
        self.window
    }

    /// How long before a deadline to arm the timer (ns).
    pub fn advance(&self) -> u64 {
        self.advance
    }

    /// The core slept `slept` ns after polling found nothing.
    pub fn slept(&mut self, slept: u64) {
        if slept > POLL_MAX_NS {
            self.window /= 2;
            if self.window < POLL_GROW_START_NS {
                self.window = 0;
            }
        } else if slept > self.window {
            self.window = (self.window * 2).clamp(POLL_GROW_START_NS, POLL_MAX_NS);
        }
    }

    /// A timer interrupt armed for some moment woke the core `latency` ns
    /// after it.
    pub fn timer_woke(&mut self, latency: u64) {
        let latency = latency.min(ADVANCE_MAX_NS);
        if latency > self.advance {
            self.advance += (latency - self.advance).div_ceil(2);
        } else {
            self.advance -= (self.advance - latency) / 16;
        }
    }

    /// When to arm the timer for `deadline` (ns since boot).
    pub fn arm_at(&self, deadline: u64) -> u64 {
        deadline.saturating_sub(self.advance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sleeps_grow_the_window_long_ones_shrink_it() {
        let mut t = IdleTuning::new();
        assert_eq!(t.window(), 0);
        t.slept(3_000);
        assert_eq!(t.window(), POLL_GROW_START_NS);
        t.slept(5_000); // caught by a window this long: no change
        assert_eq!(t.window(), POLL_GROW_START_NS);
        t.slept(30_000);
        assert_eq!(t.window(), 2 * POLL_GROW_START_NS);
        for _ in 0..10 {
            t.slept(POLL_MAX_NS);
        }
        assert_eq!(t.window(), POLL_MAX_NS);
        t.slept(POLL_MAX_NS + 1);
        assert_eq!(t.window(), POLL_MAX_NS / 2);
        for _ in 0..4 {
            t.slept(1_000_000);
        }
        assert_eq!(t.window(), 0, "a core that sleeps long stops polling");
    }

    #[test]
    fn advance_settles_near_the_upper_latencies_and_is_bounded() {
        let mut t = IdleTuning::new();
        // Latencies 20..=30 us, one in ten at 30.
        for i in 0..1000u64 {
            t.timer_woke(20_000 + (i % 10) * 1_000 + if i % 10 == 9 { 1_000 } else { 0 });
        }
        assert!(
            t.advance() >= 25_000 && t.advance() <= 30_000,
            "{}",
            t.advance()
        );
        t.timer_woke(10_000_000);
        assert!(t.advance() <= ADVANCE_MAX_NS);
        assert_eq!(t.arm_at(5), 0);
        assert_eq!(t.arm_at(1_000_000), 1_000_000 - t.advance());
        // Fast wake-ups bring it down.
        for _ in 0..1000 {
            t.timer_woke(1_000);
        }
        assert!(t.advance() < 2_000, "{}", t.advance());
    }
}
