//! A process's submission/completion ring pair, as the kernel keeps it:
//! where it is mapped, the indices the kernel owns (its own copies, never
//! read back from user memory), and the operations taken from the ring
//! that still wait. The servicing (copying entries in, running them,
//! posting completions) is `syscall::ring`'s.

use alloc::vec::Vec;

use percore_abi::Handle;
use percore_abi::ring::Layout;

use crate::reactor::Sleep;

/// An operation that waits, with its arguments already checked (through
/// either way in).
pub enum Blocked {
    Sleep(Sleep),
    /// `recv(handle, ptr, len)`.
    Recv {
        handle: Handle,
        ptr: u64,
        len: u64,
    },
    /// `wait(timer)`.
    Wait(Handle),
    /// `poll_wait(ptr, capacity, timeout)`: `None` waits with no timeout.
    PollWait {
        ptr: u64,
        capacity: u64,
        timeout: Option<Sleep>,
    },
}

/// One operation taken from the ring and not completed yet.
pub struct InFlight {
    /// The submission's tag, returned in its completion.
    pub user_data: u64,
    pub op: Blocked,
}

/// The kernel's side of a ring pair.
pub struct Ring {
    /// The handle that names the pair (closing it unmaps them).
    pub handle: Handle,
    /// Mapped at `percore_abi::ring::RING_BASE`, `layout.size` bytes.
    pub layout: Layout,
    /// The next submission the kernel takes.
    pub sq_head: u32,
    /// The next completion slot the kernel fills.
    pub cq_tail: u32,
    /// Taken, waiting; each holds a completion slot promised to it.
    pub in_flight: Vec<InFlight>,
    /// Whether the kernel has found nothing to take for a while: it then
    /// looks only at full slices until the program calls `ring_enter`.
    pub asleep: bool,
    /// When a look last took a submission (ns since boot).
    pub last_taken: u64,
}

impl Ring {
    pub fn new(handle: Handle, layout: Layout) -> Ring {
        Ring {
            handle,
            layout,
            sq_head: 0,
            cq_tail: 0,
            in_flight: Vec::new(),
            asleep: true,
            last_taken: 0,
        }
    }
}
