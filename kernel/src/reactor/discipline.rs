//! Which discipline each core's task tree runs, chosen at boot
//! ([`SchedConfig`], e.g. from the boot configuration `opt/percore/sched`)
//! and switched at run time ([`set_flavour`]); and what the trees hold
//! ([`task_list`], [`current_task`]) for the shell and the tests.
//!
//! A switch runs on the core it changes, as a pinned task that goes first
//! under every discipline (see `on_core`): that core's tree is only ever touched by that core, and
//! `TaskTree::set_discipline` moves its ready tasks into the new discipline
//! with their ids, parameters and runtime (nothing is dropped or re-spawned).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use percore_sched::{AnyDiscipline, Flavour, Priority, TaskState};

use super::task::SpawnOptions;
use super::{Reactor, reactor, spawn_with, this};
use crate::arch::{CoreId, cpu};

/// The short names of the flavours, as the boot configuration and the shell
/// spell them.
pub fn flavour_name(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::RoundRobin => "rr",
        Flavour::Fair => "fair",
        Flavour::Deadline => "edf",
    }
}

/// A flavour by its short name (or the library's long one).
pub fn parse_flavour(name: &str) -> Result<Flavour, SchedError> {
    match name.trim() {
        "rr" | "round-robin" => Ok(Flavour::RoundRobin),
        "fair" => Ok(Flavour::Fair),
        "edf" | "deadline" => Ok(Flavour::Deadline),
        _ => Err(SchedError::UnknownFlavour),
    }
}

/// What went wrong choosing a discipline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// Not `rr`, `fair` or `edf`.
    UnknownFlavour,
    /// No reactor on that core, or it has stopped.
    NoSuchCore,
}

/// The discipline of every core: `flavours[i]` for core `i`; cores past the
/// end of the list take its last entry (so `fair` alone means every core);
/// an empty list means round robin everywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedConfig {
    flavours: Vec<Flavour>,
}

impl SchedConfig {
    /// Every core runs `flavour`.
    pub fn uniform(flavour: Flavour) -> SchedConfig {
        SchedConfig {
            flavours: alloc::vec![flavour],
        }
    }

    /// Parses a comma-separated list of short names, one per core
    /// (`rr,fair,edf`).
    pub fn parse(text: &str) -> Result<SchedConfig, SchedError> {
        let flavours = text
            .split(',')
            .filter(|w| !w.trim().is_empty())
            .map(parse_flavour)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SchedConfig { flavours })
    }

    /// Core `core`'s discipline.
    pub fn flavour(&self, core: CoreId) -> Flavour {
        self.flavours
            .get(core.index())
            .or(self.flavours.last())
            .copied()
            .unwrap_or(Flavour::RoundRobin)
    }
}

fn code(flavour: Flavour) -> u8 {
    match flavour {
        Flavour::RoundRobin => 0,
        Flavour::Fair => 1,
        Flavour::Deadline => 2,
    }
}

impl Reactor {
    /// The discipline this core's tree runs now.
    pub fn flavour(&self) -> Flavour {
        match self.flavour.load(Ordering::Relaxed) {
            1 => Flavour::Fair,
            2 => Flavour::Deadline,
            _ => Flavour::RoundRobin,
        }
    }

    pub(super) fn publish_flavour(&self, flavour: Flavour) {
        self.flavour.store(code(flavour), Ordering::Relaxed);
    }

    /// Switches this core's tree to `flavour` (on this core); returns the old one.
    pub(super) fn switch_discipline(&self, flavour: Flavour) -> Flavour {
        let old = self.flavour();
        let mut exec = self.executor.borrow_mut();
        exec.tree.set_discipline(AnyDiscipline::new(flavour));
        self.publish_flavour(flavour);
        self.publish_ready(&exec);
        old
    }
}

/// A reactor that can take work: it exists and has not stopped.
fn live(core: CoreId) -> Result<&'static Reactor, SchedError> {
    reactor(core)
        .filter(|r| !r.is_stopped())
        .ok_or(SchedError::NoSuchCore)
}

/// Runs `f` on core `core`'s reactor, as a pinned task that goes first
/// under every discipline (the highest priority, and under EDF the
/// earliest deadline: a core busy with deadline work still answers).
async fn on_core<T: Send + 'static>(
    core: CoreId,
    f: impl FnOnce(&Reactor) -> T + Send + 'static,
) -> Result<T, SchedError> {
    live(core)?;
    let options = SpawnOptions {
        urgent: true,
        ..SpawnOptions::new(Priority::MAX).pinned()
    };
    spawn_with(core, options, async move {
        // `spawn_with` runs it here instead if the core stopped meanwhile.
        (cpu::core_id() == core).then(|| f(this()))
    })
    .await
    .ok_or(SchedError::NoSuchCore)
}

/// Switches core `core` to `flavour`, moving its tasks into the new
/// discipline; returns the flavour it ran before.
pub async fn set_flavour(core: CoreId, flavour: Flavour) -> Result<Flavour, SchedError> {
    on_core(core, move |r| r.switch_discipline(flavour)).await
}

/// One task as its core's tree and its cell see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The core it lives on.
    pub core: CoreId,
    /// Its raw id in that core's tree.
    pub id: u64,
    pub state: TaskState,
    /// The parameters the tree orders it by (priority, weight, pinning) and
    /// the ones the reactor keeps (relative deadline, period).
    pub options: SpawnOptions,
    /// The tree's fair-share weight (in `Priority::weight` units).
    pub tree_weight: u64,
    /// The current job's absolute deadline in the tree (`NO_DEADLINE` if none).
    pub tree_deadline: u64,
    /// CPU nanoseconds charged, on every core it ran on.
    pub runtime_ns: u64,
    /// Jobs that finished after their deadline.
    pub misses: u64,
}

/// The tasks of this core's tree.
fn list_here() -> Vec<TaskInfo> {
    let here = this();
    let exec = here.executor.borrow_mut();
    exec.tree
        .tasks()
        .filter_map(|task| {
            let cell = exec.cells.get(task.id().index())?.as_ref()?;
            Some(info(here.core, task, cell))
        })
        .collect()
}

fn info(core: CoreId, task: &percore_sched::Task, cell: &super::task::TaskCell) -> TaskInfo {
    TaskInfo {
        core,
        id: task.id().to_raw(),
        state: task.state(),
        options: cell.options,
        tree_weight: task.weight(),
        tree_deadline: task.deadline(),
        runtime_ns: cell.runtime.load(Ordering::Relaxed),
        misses: cell.misses.load(Ordering::Relaxed),
    }
}

/// The tasks living on core `core` (asked on that core; the asking task
/// itself is among them when `core` is its own).
pub async fn task_list(core: CoreId) -> Result<Vec<TaskInfo>, SchedError> {
    on_core(core, |_| list_here()).await
}

/// The calling task's runtime so far, in ns: the polls before this one
/// (each is charged when it ends). 0 outside a task.
pub fn current_runtime_ns() -> u64 {
    let exec = this().executor.borrow_mut();
    exec.current()
        .map_or(0, |(_, cell)| cell.runtime.load(Ordering::Relaxed))
}

/// The calling task as its tree sees it now (`None` outside a task).
pub fn current_task() -> Option<TaskInfo> {
    let here = this();
    let exec = here.executor.borrow_mut();
    let (id, cell) = exec.current()?;
    let task = exec.tree.task(id)?;
    Some(info(here.core, task, cell))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_list_names_each_core_and_the_last_entry_repeats() {
        let config = SchedConfig::parse("rr, fair,edf").unwrap();
        let flavours: Vec<_> = (0..5).map(|c| config.flavour(CoreId(c))).collect();
        assert_eq!(
            flavours,
            [
                Flavour::RoundRobin,
                Flavour::Fair,
                Flavour::Deadline,
                Flavour::Deadline,
                Flavour::Deadline
            ]
        );
        assert_eq!(
            SchedConfig::parse("fair").unwrap(),
            SchedConfig::uniform(Flavour::Fair)
        );
        let none = SchedConfig::parse("").unwrap();
        assert_eq!(none.flavour(CoreId(3)), Flavour::RoundRobin);
        assert_eq!(
            SchedConfig::parse("rr,cfs"),
            Err(SchedError::UnknownFlavour)
        );
        for f in [Flavour::RoundRobin, Flavour::Fair, Flavour::Deadline] {
            assert_eq!(parse_flavour(flavour_name(f)), Ok(f));
        }
    }
}
