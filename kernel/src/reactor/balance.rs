//! Load balancing by priority: a core whose own work is idle or of lower
//! priority than work waiting elsewhere asks for that work; the victim
//! hands over the most urgent movable tasks.
//!
//! Each reactor publishes, once a turn, its ready-task count
//! (`ReactorStats::ready`), the highest priority level it has ready
//! (`ready_top`), and, around each poll, the level it is polling
//! (`running`). The rule this module keeps is the one of the issue: *a
//! ready task of priority P does not wait on one core while another core
//! idles, or runs only work of lower priority than P, for longer than one
//! balancing round*. So at the end of each turn a core decides ([`choose`]):
//!
//! - **idle** (it ran nothing): it asks the core with the most urgent
//!   waiting work — the highest `ready_top`, then the most ready tasks —
//!   provided that work really waits there — two or more ready tasks, or one
//!   while that core is polling another — and some of it is movable (not
//!   pinned; `ReactorStats::movable`). The request names priority 0 (any
//!   work); the victim gives up to half of its movable ready tasks,
//!   **highest priority first**, so the urgent work gets the free core.
//! - **busy** at level L (the highest level it ran this turn or has ready):
//!   it asks a core whose `ready_top` P is above L, on the same condition
//!   of really waiting. The request names L + 1; the victim gives **one**
//!   movable task, the most urgent at or above L + 1, so the thief trades
//!   its low work for the victim's urgent work one task at a time and
//!   never takes work no more urgent than its own (equal priorities never
//!   move between busy cores: no ping-pong).
//!
//! A core has at most one request outstanding (`steal_pending`, cleared by
//! the `Migrate` or `StealDenied` answer). A denied busy request (the
//! victim's urgent work was pinned, or already gone) holds further busy
//! requests back for [`DENIED_BACKOFF_NS`]. Pinned and running tasks never
//! move (`TaskTree::steal`). A migrated task travels with its scheduling
//! record (`Migrant`: priority, weight, deadline, fair lag, runtime), and
//! wakes that reach its old core later are forwarded (`Reactor::take_local`).
//!
//! An idle core sleeps (tickless), so it cannot see work arrive elsewhere: a
//! saturated core ([`saturated`]: a full polling batch run and two or more
//! tasks still ready, one of them movable) wakes one sleeping core with a
//! doorbell (no message), which then finds itself idle and asks. A lone
//! task that yields in a loop, or pinned work, wakes nobody (each such
//! wake-up would end in a denied request); a core whose request was just
//! denied anyway (the movable work was gone) is not woken again within the
//! backoff.

use core::sync::atomic::Ordering;

use percore_proto::Message;
use percore_sched::Priority;

use super::task::{NOT_ADOPTED, send_task};
use super::{NO_LEVEL, Reactor, reactors};
use crate::arch::{CoreId, doorbell};
use crate::time::Clock;

/// How long a core waits after a denied busy request before the next one.
pub(super) const DENIED_BACKOFF_NS: u64 = 1_000_000;

/// What one other core publishes, as the balancer reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Load {
    pub core: CoreId,
    /// Ready tasks.
    pub ready: usize,
    /// Ready tasks that are not pinned.
    pub movable: usize,
    /// Highest ready level, or [`NO_LEVEL`].
    pub ready_top: u8,
    /// Whether it is polling a task now.
    pub polling: bool,
}

impl Load {
    /// Whether its ready work waits — it cannot start all of it right away
    /// — and some of it could move.
    fn waits(&self) -> bool {
        self.ready_top != NO_LEVEL
            && self.movable >= 1
            && (self.ready >= 2 || (self.ready >= 1 && self.polling))
    }
}

/// The balancing decision of a core whose own level is `mine` ([`NO_LEVEL`]
/// when idle): which core to ask, and the lowest priority to ask for.
pub(super) fn choose(mine: u8, others: impl Iterator<Item = Load>) -> Option<(CoreId, u8)> {
    let victim = others
        .filter(|l| l.waits() && (mine == NO_LEVEL || l.ready_top > mine))
        .max_by_key(|l| (l.ready_top, l.ready))?;
    let wanted = if mine == NO_LEVEL {
        Priority::MIN.get()
    } else {
        mine + 1
    };
    Some((victim.core, wanted))
}

/// This core's highest ready level, or [`NO_LEVEL`].
fn ready_top(me: &Reactor) -> u8 {
    let exec = me.executor.borrow_mut();
    if exec.tree.ready_len() == 0 {
        return NO_LEVEL;
    }
    (0..Priority::LEVELS as u8)
        .rev()
        .filter_map(Priority::new)
        .find(|&p| exec.tree.ready_at(p) > 0)
        .map_or(NO_LEVEL, Priority::get)
}

/// The other cores' published loads.
fn loads(me: &Reactor) -> impl Iterator<Item = Load> + '_ {
    reactors()
        .iter()
        .filter(move |r| r.core != me.core && !r.is_stopped())
        .map(|r| Load {
            core: r.core,
            ready: r.stats.ready.load(Ordering::Relaxed),
            movable: r.stats.movable.load(Ordering::Relaxed),
            ready_top: r.ready_top.load(Ordering::Relaxed),
            polling: r.running.load(Ordering::Relaxed) != NO_LEVEL,
        })
}

fn ask(me: &Reactor, victim: CoreId, priority: u8) {
    me.steal_pending.store(true, Ordering::Release);
    me.send(
        victim,
        Message::StealRequest {
            thief: me.core,
            priority,
        },
    );
}

/// After a polling batch that ran `ran` tasks, the highest at level
/// `ran_top` ([`NO_LEVEL`] if none): publishes this core's highest ready
/// level; if this core is saturated ([`saturated`]: more ready tasks than
/// one batch, or a full batch run with two or more still ready), wakes one
/// sleeping core — at most
/// once per sleep, and not one whose last request was denied within
/// [`DENIED_BACKOFF_NS`] — so that it comes asking; and if this core ran
/// work while more urgent work waits on another core, asks for it.
pub(super) fn when_busy(me: &Reactor, ran: usize, ran_top: u8) {
    let top = ready_top(me);
    me.ready_top.store(top, Ordering::Relaxed);
    let ready = me.stats.ready.load(Ordering::Relaxed);
    let movable = me.stats.movable.load(Ordering::Relaxed);
    if saturated(ready, movable, ran) {
        let now = Clock::now().0;
        let sleeper = reactors().iter().find(|r| {
            r.core != me.core
                && now >= r.steal_backoff.load(Ordering::Relaxed)
                && r.asleep.swap(false, Ordering::AcqRel)
        });
        if let Some(sleeper) = sleeper {
            doorbell::ring(sleeper.core);
        }
    }
    if ran_top == NO_LEVEL
        || me.steal_pending.load(Ordering::Acquire)
        || Clock::now().0 < me.steal_backoff.load(Ordering::Relaxed)
    {
        return;
    }
    let mine = if top == NO_LEVEL {
        ran_top
    } else {
        ran_top.max(top)
    };
    if let Some((victim, priority)) = choose(mine, loads(me)) {
        ask(me, victim, priority);
    }
}

/// Whether a core that has `ready` tasks ready (`movable` of them not
/// pinned) after a polling batch that ran `ran` has work that waits for a
/// free core, and that a free core could take: more than one batch, or,
/// after a full batch, at least two ready tasks; and at least one of them
/// movable. One ready task is the one this core runs next (a task that
/// yields in a loop keeps every batch full), and pinned work cannot move:
/// waking a core for either would only earn a denied request, about once
/// per [`DENIED_BACKOFF_NS`] for as long as the work lasts. `Load::waits`
/// applies the same rule.
fn saturated(ready: usize, movable: usize, ran: usize) -> bool {
    movable >= 1 && (ready > super::POLL_BATCH || (ready >= 2 && ran == super::POLL_BATCH))
}

/// Called when this core ran nothing in a turn.
pub(super) fn when_idle(me: &Reactor) {
    if me.steal_pending.load(Ordering::Acquire) {
        return;
    }
    if let Some((victim, priority)) = choose(NO_LEVEL, loads(me)) {
        ask(me, victim, priority);
    }
}

/// A `StealDenied` arrived: no request is outstanding any more; busy
/// requests wait a little, and so do wake-ups of this core to come asking.
pub(super) fn on_denied(me: &Reactor) {
    me.steal_pending.store(false, Ordering::Release);
    me.steal_backoff.store(
        Clock::now().0.saturating_add(DENIED_BACKOFF_NS),
        Ordering::Relaxed,
    );
}

/// Answers a thief that wants work of at least `min_priority`: an idle
/// thief (priority 0) gets up to half of this core's movable ready tasks, a
/// busy one a single task; the most urgent first.
pub(super) fn on_steal_request(me: &Reactor, thief: CoreId, min_priority: u8) {
    let quota = if min_priority == Priority::MIN.get() {
        me.executor.borrow_mut().tree.ready_len().div_ceil(2)
    } else {
        1
    };
    let mut moved = 0;
    while moved < quota {
        let cell = {
            let mut exec = me.executor.borrow_mut();
            let migrant = (min_priority..Priority::LEVELS as u8)
                .rev()
                .filter_map(Priority::new)
                .find_map(|p| exec.tree.steal(p));
            migrant.and_then(|m| {
                let cell = exec
                    .cells
                    .get_mut(m.from().index())
                    .and_then(Option::take)?;
                *cell.migrant.lock() = Some(m);
                Some(cell)
            })
        };
        let Some(cell) = cell else { break };
        me.stats.tasks.fetch_sub(1, Ordering::Relaxed);
        cell.local_id.store(NOT_ADOPTED, Ordering::Release);
        cell.home.store(thief.0, Ordering::Release);
        me.stats.migrated_out.fetch_add(1, Ordering::Relaxed);
        send_task(me, thief, cell, true);
        moved += 1;
    }
    me.publish_ready(&me.executor.borrow_mut());
    if moved == 0 {
        me.send(thief, Message::StealDenied);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(core: u16, ready: usize, ready_top: u8, polling: bool) -> Load {
        Load {
            core: CoreId(core),
            ready,
            movable: ready,
            ready_top,
            polling,
        }
    }

    #[test]
    fn an_idle_core_asks_for_the_most_urgent_waiting_work() {
        let others = [
            load(1, 9, 10, true),
            load(2, 2, 50, false),
            load(3, 1, 60, false), // its only ready task starts next: not waiting
        ];
        assert_eq!(choose(NO_LEVEL, others.into_iter()), Some((CoreId(2), 0)));
    }

    #[test]
    fn one_ready_task_waits_only_behind_a_poll() {
        assert_eq!(
            choose(NO_LEVEL, [load(1, 1, 32, true)].into_iter()),
            Some((CoreId(1), 0))
        );
        assert_eq!(choose(NO_LEVEL, [load(1, 1, 32, false)].into_iter()), None);
        assert_eq!(
            choose(NO_LEVEL, [load(1, 0, NO_LEVEL, true)].into_iter()),
            None
        );
    }

    #[test]
    fn a_lone_yielding_task_or_pinned_work_wakes_nobody() {
        let full = super::super::POLL_BATCH;
        assert!(!saturated(1, 1, full), "its only task runs next here");
        assert!(saturated(2, 2, full));
        assert!(saturated(2, 1, full), "one of two may move");
        assert!(!saturated(2, 0, full), "pinned work cannot move");
        assert!(!saturated(full + 1, 0, 1));
        assert!(
            !saturated(2, 2, full - 1),
            "a short batch: the core keeps up"
        );
        assert!(saturated(full + 1, 1, 1));
        assert!(!saturated(0, 0, full));
    }

    #[test]
    fn pinned_work_is_not_asked_for() {
        let pinned = Load {
            movable: 0,
            ..load(1, 5, 40, true)
        };
        assert_eq!(choose(NO_LEVEL, [pinned].into_iter()), None);
        let some = Load {
            movable: 1,
            ..pinned
        };
        assert_eq!(choose(NO_LEVEL, [some].into_iter()), Some((CoreId(1), 0)));
    }

    #[test]
    fn a_busy_core_asks_only_for_work_above_its_own() {
        let others = [load(1, 5, 40, true), load(2, 3, 20, true)];
        assert_eq!(choose(30, others.into_iter()), Some((CoreId(1), 31)));
        assert_eq!(choose(40, others.into_iter()), None, "equal work stays");
        assert_eq!(choose(50, others.into_iter()), None);
    }
}
