//! Real-time jobs under the deadline discipline: periodic release on the
//! core's timer wheel ([`next_period`]) and deadline misses.
//!
//! A task spawned with a relative deadline `D` ([`SpawnOptions::deadline`])
//! has one job, released at its spawn and due `D` later. A task with a
//! period `T` as well ([`SpawnOptions::period`]) has one job per period: the
//! `k`-th is released at `spawn + k·T` and due `D` after its release. The
//! task ends a job by awaiting [`next_period`]; the executor tells the task
//! tree the new absolute deadline after that poll, so EDF orders the next
//! job by it, and the timer wheel wakes the task at the release.
//!
//! Under EDF a task without a deadline runs only when no task with one is
//! ready (the kernel's own control tasks, a discipline switch or a task
//! listing, carry the earliest deadline so that they always run).
//!
//! A job that ends (a periodic task's at `next_period`, a one-shot task's
//! at its completion) after its deadline is a *miss*, counted on the task and on the core it ran on
//! ([`ReactorStats::deadline_misses`](super::ReactorStats)). Releases do not
//! slip: a job that overran its period is followed at once by the next one,
//! which has its own deadline — under overload every late job counts.
//!
//! [`SpawnOptions::deadline`]: super::SpawnOptions::deadline
//! [`SpawnOptions::period`]: super::SpawnOptions::period

use core::sync::atomic::Ordering;

use super::task::TaskCell;
use super::timer::sleep_until;
use super::{Reactor, this};
use crate::time::{Clock, Instant};

/// Why [`next_period`] could not wait for a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodError {
    /// Not called from a task of the reactor (e.g. from `block_on`'s future).
    NotInTask,
    /// The task has no period.
    NotPeriodic,
}

impl Reactor {
    /// Counts a missed deadline of `cell`'s current job.
    pub(super) fn count_miss(&self, cell: &TaskCell) {
        cell.misses.fetch_add(1, Ordering::Relaxed);
        self.stats.deadline_misses.fetch_add(1, Ordering::Relaxed);
    }
}

/// Ends the calling periodic task's current job and waits for the release
/// of the next one (returned at once if it is already due). Returns whether
/// the job that ended met its deadline.
pub async fn next_period() -> Result<bool, PeriodError> {
    let here = this();
    let cell = {
        let exec = here.executor.borrow_mut();
        let (_, cell) = exec.current().ok_or(PeriodError::NotInTask)?;
        cell.clone()
    };
    let period = cell.options.period_ns;
    if period == 0 {
        return Err(PeriodError::NotPeriodic);
    }
    let met = Clock::now().0 <= cell.deadline.load(Ordering::Acquire);
    if !met {
        here.count_miss(&cell);
    }
    let release = cell.release.load(Ordering::Acquire).saturating_add(period);
    cell.release.store(release, Ordering::Release);
    cell.deadline.store(
        release.saturating_add(cell.options.deadline_ns),
        Ordering::Release,
    );
    drop(cell);
    sleep_until(Instant(release)).await;
    Ok(met)
}
