//! # percore-sched: the per-core task tree
//!
//! Each percore core owns one [`TaskTree`]: a table of tasks with
//! generation-checked [`TaskId`]s, 64 [`Priority`] levels, [`TaskState`]s
//! (ready, running, blocked, sleeping, finished), and a [`Discipline`] that
//! orders the ready tasks. The reactor picks the flavour per core at boot:
//!
//! | flavour | type | select | for |
//! |---|---|---|---|
//! | strict priority, round-robin within a level | [`RoundRobin`] | O(1): bitmap + per-level ring | general purpose |
//! | earliest deadline first | [`Deadline`] | O(log n): indexed heap | real-time cores |
//! | weighted virtual runtime | [`Fair`] | O(log n): ordered tree | throughput / fairness |
//!
//! The crate knows nothing of futures: the kernel keeps them in its own slab
//! at [`TaskId::index`] and calls the tree's transitions ([`TaskTree::select`],
//! [`TaskTree::yield_now`], [`TaskTree::block`], [`TaskTree::wake`], ...). The
//! load balancer moves work with [`TaskTree::steal`] / [`TaskTree::adopt`];
//! pinned tasks never move.
//!
//! ```
//! use percore_sched::{AnyDiscipline, Flavour, Priority, TaskParams, TaskTree};
//!
//! let mut tree = TaskTree::new(AnyDiscipline::new(Flavour::Fair));
//! let a = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
//! let b = tree.spawn(TaskParams::new(Priority::DEFAULT)).unwrap();
//! let mut ran = [0u32; 2];
//! for _ in 0..10 {
//!     let id = tree.select().unwrap();
//!     ran[usize::from(id == b)] += 1;
//!     tree.charge(id, 1_000).unwrap(); // it ran 1 µs
//!     tree.yield_now(id).unwrap();
//! }
//! assert_eq!(ran, [5, 5]);
//! # let _ = a;
//! ```
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

mod balance;
mod deadline;
mod discipline;
mod error;
mod fair;
mod id;
mod migrant;
mod round_robin;
mod table;
mod task;
mod tree;

pub use deadline::Deadline;
pub use discipline::{AnyDiscipline, Discipline, Flavour};
pub use error::{SpawnError, StateError};
pub use fair::Fair;
pub use id::{Priority, TaskId};
pub use migrant::Migrant;
pub use round_robin::RoundRobin;
pub use task::{NO_DEADLINE, Task, TaskParams, TaskState};
pub use tree::TaskTree;
