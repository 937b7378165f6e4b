//! Load balancing: an idle core asks the busiest core for work; the busiest
//! core hands over up to half of its movable ready tasks.
//!
//! Each reactor publishes its ready-task count (`ReactorStats::ready`). A core
//! with more ready tasks than one polling batch wakes one halted core (an
//! IPI, no message), which then finds itself idle and asks for work. A core
//! that just ran nothing picks the core with the most ready tasks (at least
//! two) and sends it one `StealRequest`; it sends no other until an answer
//! (`Migrate` or `StealDenied`) arrives. The victim takes tasks bucket by
//! bucket, lowest priority first (`TaskTree::steal` never returns pinned or
//! running tasks), and sends each as a `Migrate` message carrying the task's
//! cell. Wakes that reach the old core afterwards are forwarded (see
//! `Reactor::handle`), so none is lost.

use core::sync::atomic::Ordering;

use percore_sched::Priority;

use super::bus::Letter;
use super::{Reactor, reactors};
use crate::arch::x86_64::cpu_local::CoreId;
use crate::arch::x86_64::lapic;

/// More ready tasks here than one batch: wake one halted core so that it
/// comes asking for work (each halted core is woken at most once per halt).
pub(super) fn when_busy(me: &Reactor) {
    if me.stats.ready.load(Ordering::Relaxed) <= super::POLL_BATCH {
        return;
    }
    let sleeper = reactors()
        .iter()
        .find(|r| r.core != me.core && r.halted.swap(false, Ordering::AcqRel));
    if let Some(sleeper) = sleeper {
        me.stats.doorbells.fetch_add(1, Ordering::Relaxed);
        lapic::send_ipi(sleeper.core, lapic::IPI_VECTOR);
    }
}

/// Called when this core ran nothing in a turn.
pub(super) fn when_idle(me: &Reactor) {
    if me.steal_pending.load(Ordering::Acquire) {
        return;
    }
    let busiest = reactors()
        .iter()
        .filter(|r| r.core != me.core)
        .map(|r| (r.stats.ready.load(Ordering::Relaxed), r.core))
        .max();
    if let Some((ready, victim)) = busiest
        && ready >= 2
    {
        me.steal_pending.store(true, Ordering::Release);
        me.send(
            victim,
            Letter::StealRequest {
                priority: Priority::MIN.get(),
            },
        );
    }
}

/// Answers a thief: migrate up to half of this core's movable ready tasks.
pub(super) fn on_steal_request(me: &Reactor, thief: CoreId, _min_priority: u8) {
    let quota = me.executor.borrow_mut().tree.ready_len().div_ceil(2);
    let mut moved = 0;
    while moved < quota {
        let cell = {
            let mut exec = me.executor.borrow_mut();
            let migrant = (0..Priority::LEVELS as u8)
                .filter_map(Priority::new)
                .find_map(|p| exec.tree.steal(p));
            migrant.and_then(|m| exec.cells.get_mut(m.from().index()).and_then(Option::take))
        };
        let Some(cell) = cell else { break };
        me.stats.tasks.fetch_sub(1, Ordering::Relaxed);
        cell.local_id.store(u64::MAX, Ordering::Release);
        cell.home.store(thief.0, Ordering::Release);
        me.stats.migrated_out.fetch_add(1, Ordering::Relaxed);
        me.send(thief, Letter::Migrate(cell));
        moved += 1;
    }
    me.publish_ready(&me.executor.borrow_mut());
    if moved == 0 {
        me.send(thief, Letter::StealDenied);
    }
}
