//! Identifiers that cross cores: which core ([`CoreId`]), which task
//! ([`TaskRef`]) and which other kernel-owned object ([`Handle`]). Newtypes, so a core index can never be passed where a task
//! is expected.

use core::fmt;

/// The index of a CPU core on the bus, `0..cores`.
///
/// ```
/// use percore_proto::CoreId;
/// let c = CoreId(3);
/// assert_eq!(c.index(), 3);
/// assert_eq!(format!("{c}"), "3");
/// assert_eq!(format!("[{c:>3}]"), "[  3]");
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

/// The bare number, honouring width and alignment, so that it composes:
/// `"core {id}"`, `"{id:>4}"`.
impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
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

/// An owned kernel object travelling in a message (a waker, a reply cell):
/// a [`Word`](crate::Word) packed by the sender and taken back exactly once
/// by the receiver. This crate only copies it and never dereferences it.
///
/// ```
/// use percore_proto::Handle;
/// let h = Handle::new(std::boxed::Box::new(5u32));
/// // SAFETY: made from a Box<u32> just above, taken once.
/// let back: std::boxed::Box<u32> = unsafe { h.take() };
/// assert_eq!(*back, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle(pub u64);

impl Handle {
    /// Packs `value` (ownership moves into the handle).
    pub fn new<W: crate::Word>(value: W) -> Handle {
        Handle(value.into_word())
    }

    /// Unpacks the owned value.
    ///
    /// # Safety
    /// The handle must come from [`Handle::new`] with the same type `W`, and
    /// be taken at most once (copies of a handle share one owner).
    pub unsafe fn take<W: crate::Word>(self) -> W {
        // SAFETY: forwarded to the caller.
        unsafe { W::from_word(self.0) }
    }
}
