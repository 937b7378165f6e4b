//! Identifiers that cross cores: which core ([`CoreId`]) and which task
//! ([`TaskRef`]). Newtypes, so a core index can never be passed where a task
//! is expected.

use core::fmt;

/// The index of a CPU core on the bus, `0..cores`.
///
/// ```
/// use percore_proto::CoreId;
/// let c = CoreId(3);
/// assert_eq!(c.index(), 3);
/// assert_eq!(format!("{c}"), "core3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(pub u16);

impl CoreId {
    /// The id as an index into per-core tables.
    ///
    /// ```
    /// use percore_proto::CoreId;
    /// assert_eq!(CoreId(7).index(), 7usize);
    /// ```
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core{}", self.0)
    }
}

/// An opaque reference to a task. The kernel stores whatever it likes here
/// (typically a pointer to the task, or a `TaskId` from `percore-sched`);
/// this crate only copies it and never dereferences it.
///
/// ```
/// use percore_proto::TaskRef;
/// let t = TaskRef(0xdead_beef);
/// assert_eq!(t.0, 0xdead_beef);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskRef(pub u64);
