//! Load balancing: an idle core asks the busiest core for work; the busiest
//! core hands over up to half of its movable ready tasks.
//!
//! Each reactor publishes its ready-task count (`ReactorStats::ready`). A core
//! with more ready tasks than one polling batch wakes one sleeping core (a
//! doorbell, no message), which then finds itself idle and asks for work. A
//! core that just ran nothing picks the core with the most ready tasks (at
//! least two) and sends it one `StealRequest`; it sends no other until an
//! answer (`Migrate` or `StealDenied`) arrives. The victim takes tasks bucket
//! by bucket, lowest priority first and none below the priority the thief
//! asked for (`TaskTree::steal` never returns pinned or running tasks), and
//! sends each as a `Migrate` message carrying the task's cell and priority.
//! Wakes that reach the old core afterwards are forwarded (see
//! `Reactor::take_local`), so none is lost.

use core::sync::atomic::Ordering;

use percore_proto::Message;
use percore_sched::Priority;

use super::task::{NOT_ADOPTED, send_task};
use super::{Reactor, reactors};
use crate::arch::{CoreId, doorbell};

/// More ready tasks here than one batch: wake one sleeping core so that it
/// comes asking for work (each sleeping core is woken at most once per sleep).
pub(super) fn when_busy(me: &Reactor) {
    if me.stats.ready.load(Ordering::Relaxed) <= super::POLL_BATCH {
        return;
    }
    let sleeper = reactors()
        .iter()
        .find(|r| r.core != me.core && r.asleep.swap(false, Ordering::AcqRel));
    if let Some(sleeper) = sleeper {
        doorbell::ring(sleeper.core);
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
            Message::StealRequest {
                thief: me.core,
                priority: Priority::MIN.get(),
            },
        );
    }
}

/// Answers a thief: migrate up to half of this core's movable ready tasks
/// of at least priority `min_priority`.
pub(super) fn on_steal_request(me: &Reactor, thief: CoreId, min_priority: u8) {
    let quota = me.executor.borrow_mut().tree.ready_len().div_ceil(2);
    let mut moved = 0;
    while moved < quota {
        let cell = {
            let mut exec = me.executor.borrow_mut();
            let migrant = (min_priority..Priority::LEVELS as u8)
                .filter_map(Priority::new)
                .find_map(|p| exec.tree.steal(p));
            migrant.and_then(|m| exec.cells.get_mut(m.from().index()).and_then(Option::take))
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
