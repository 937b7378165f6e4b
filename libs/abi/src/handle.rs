//! Handles: how a process names a kernel object.

/// A reference to a kernel object in the calling process's handle table:
/// the slot index in the low 32 bits, the slot's generation in the high
/// 32. A slot's generation grows every time it is freed, so a handle kept
/// after `close` names nothing (or, once reused, fails its generation
/// check) instead of silently reaching the slot's next object. Generation 0
/// is never handed out: [`Handle::NULL`] is never valid.
///
/// ```
/// use percore_abi::Handle;
/// let h = Handle::new(5, 2);
/// assert_eq!((h.index(), h.generation()), (5, 2));
/// assert_eq!(Handle::from_raw(h.raw()), h);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Handle(u64);

impl Handle {
    /// The handle that names nothing.
    pub const NULL: Handle = Handle(0);

    /// The handle of slot `index` at `generation`.
    pub const fn new(index: u32, generation: u32) -> Handle {
        Handle(((generation as u64) << 32) | index as u64)
    }

    /// A handle as it travels in a register.
    pub const fn from_raw(raw: u64) -> Handle {
        Handle(raw)
    }

    pub const fn raw(self) -> u64 {
        self.0
    }

    pub const fn index(self) -> u32 {
        self.0 as u32
    }

    pub const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// The kinds of object a handle names (for [`WrongType`](crate::Error::WrongType)
/// checks and `ps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HandleKind {
    Channel = 1,
    Timer = 2,
    /// Reserved: a submission/completion ring pair.
    Ring = 3,
    TcpListener = 4,
    TcpStream = 5,
    UdpSocket = 6,
    /// The machine's disk log ([`Sys::DlogOpen`](crate::Sys::DlogOpen)).
    DiskLog = 7,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_at_their_limits() {
        for (index, generation) in [(0, 1), (u32::MAX, u32::MAX), (7, 0), (1 << 20, 1 << 31)] {
            let handle = Handle::new(index, generation);
            assert_eq!(handle.index(), index);
            assert_eq!(handle.generation(), generation);
            assert_eq!(Handle::from_raw(handle.raw()), handle);
        }
        assert_eq!(Handle::NULL.generation(), 0);
    }
}
