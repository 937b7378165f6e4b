//! Processes: isolated ring-3 programs. A process is an address space
//! ([`vm`]) loaded from an ELF image ([`elf`], programs from the boot
//! archive: [`image`]), one thread's registers, a handle table of kernel
//! objects ([`handle`], [`object`]), its submission/completion rings
//! ([`ring`]), and the counters `ps` shows. User
//! memory is reached only through [`umem`]'s checked copies.
//!
//! The thread runs as a task of its core's reactor (`syscall::spawn`);
//! the [`Process`] value is owned by that task, so its memory, frames and
//! handles are released when the task ends, however it ends (exit, kill,
//! fault). What other cores may look at — the counters, the kill flag —
//! is in [`Shared`], listed in a table by pid for `ps` and `kill`.

pub mod elf;
pub mod handle;
pub mod image;
pub mod object;
pub mod ring;
pub mod umem;
pub mod vm;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::task::{Poll, Waker};

use crate::arch::user::{Fault, UserContext};
use crate::arch::{CoreId, cpu, doorbell};
use elf::ElfError;
use handle::HandleTable;
use object::KernelObject;
use vm::{AddressSpace, VmError};

/// Where every process's stack ends (a page below the user top is left
/// unmapped).
pub const STACK_TOP: u64 = 0x0000_7FFF_FFFF_0000;
/// A process's stack (above one guard page).
pub const STACK_SIZE: u64 = 64 * 1024;

/// What a process is doing, as `ps` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Running in user mode or ready to.
    Running = 0,
    /// Waiting in a syscall (sleep, receive, timer).
    Blocked = 1,
}

/// Why a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit(code)`.
    Code(i64),
    /// `kill` ended it.
    Killed,
    /// It raised an exception.
    Fault(Fault),
    /// It corrupted its ring's indices.
    BadRing(percore_abi::ring::Corrupt),
}

/// Why a process could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No program of that name in the boot archive.
    NotFound,
    /// The image was refused.
    Image(ElfError),
    /// No memory for the address space or stack.
    NoMemory,
    /// No such core (or it is not online).
    NoSuchCore,
}

/// The part of a process other cores see.
pub struct Shared {
    pub pid: u32,
    pub name: String,
    pub core: CoreId,
    state: AtomicU8,
    killed: AtomicBool,
    /// The task's waker while it blocks (so `kill` can end the wait).
    waker: spin::Mutex<Option<Waker>>,
    pub handles: AtomicUsize,
    pub syscalls: AtomicU64,
    /// Time in user mode and in syscalls, in ns.
    pub cpu_ns: AtomicU64,
    /// Operations taken from the submission ring.
    pub ring_ops: AtomicU64,
}

impl Shared {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            0 => State::Running,
            _ => State::Blocked,
        }
    }

    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Whether `kill` was asked for.
    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

static PROCESSES: spin::Mutex<BTreeMap<u32, Arc<Shared>>> = spin::Mutex::new(BTreeMap::new());
static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// One process, owned by the task that runs its thread.
pub struct Process {
    pub shared: Arc<Shared>,
    pub space: AddressSpace,
    pub handles: HandleTable<KernelObject>,
    pub context: Box<UserContext>,
    /// The start arguments (see `Sys::Args`).
    pub args: String,
    /// The submission/completion rings, once set up (boxed: the service
    /// takes the ring out of the process for each look, and moving a
    /// pointer is cheaper than moving the ring).
    pub ring: Option<Box<ring::Ring>>,
    /// The readiness queue of its sockets, once one is registered or
    /// waited on.
    pub readiness: Option<object::Readiness>,
}

impl Process {
    /// Loads `image` into a fresh address space with a stack, ready to
    /// start at its entry point on core `core`.
    pub fn new(name: &str, image: &[u8], core: CoreId, args: &str) -> Result<Process, SpawnError> {
        if !cpu::is_online(core) {
            return Err(SpawnError::NoSuchCore);
        }
        let mut space = AddressSpace::new().map_err(|_| SpawnError::NoMemory)?;
        let entry = elf::load(image, &mut space).map_err(SpawnError::Image)?;
        let stack = space
            .map_stack(STACK_TOP, STACK_SIZE)
            .map_err(|error| match error {
                VmError::NoMemory => SpawnError::NoMemory,
                _ => SpawnError::Image(ElfError::Overlap),
            })?;
        let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            pid,
            name: String::from(name),
            core,
            state: AtomicU8::new(State::Running as u8),
            killed: AtomicBool::new(false),
            waker: spin::Mutex::new(None),
            handles: AtomicUsize::new(0),
            syscalls: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            ring_ops: AtomicU64::new(0),
        });
        PROCESSES.lock().insert(pid, shared.clone());
        Ok(Process {
            shared,
            space,
            handles: HandleTable::default(),
            context: Box::new(UserContext::new(entry, stack)),
            args: String::from(args),
            ring: None,
            readiness: None,
        })
    }

    /// One line about how the process ended (pid, core, RIP, reason).
    pub fn report(&self, exit: &Exit) -> String {
        let s = &self.shared;
        match exit {
            Exit::Code(code) => alloc::format!(
                "process {} ({}) on core {} exited with code {code}",
                s.pid,
                s.name,
                s.core
            ),
            Exit::Killed => alloc::format!(
                "process {} ({}) on core {} killed at rip {:#x}",
                s.pid,
                s.name,
                s.core,
                self.context.rip()
            ),
            Exit::BadRing(corrupt) => alloc::format!(
                "process {} ({}) on core {} killed at rip {:#x}: {corrupt}",
                s.pid,
                s.name,
                s.core,
                self.context.rip()
            ),
            Exit::Fault(fault) => alloc::format!(
                "process {} ({}) on core {} killed at rip {:#x}: {fault}",
                s.pid,
                s.name,
                s.core,
                fault.rip
            ),
        }
    }
}

/// Runs `future` (a blocking syscall of the process of `shared`) unless or
/// until the process is killed: `None` then. The process shows as blocked
/// meanwhile.
pub async fn blocking<F: Future>(shared: &Shared, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    shared.set_state(State::Blocked);
    let result = poll_fn(|cx| {
        if shared.killed() {
            return Poll::Ready(None);
        }
        *shared.waker.lock() = Some(cx.waker().clone());
        // Checked again: a kill between the check and the store saw no waker.
        if shared.killed() {
            return Poll::Ready(None);
        }
        future.as_mut().poll(cx).map(Some)
    })
    .await;
    *shared.waker.lock() = None;
    shared.set_state(State::Running);
    result
}

impl Drop for Process {
    fn drop(&mut self) {
        PROCESSES.lock().remove(&self.shared.pid);
    }
}

/// Asks process `pid` to end; false if there is no such process. A
/// thread in user mode is interrupted (a doorbell to its core), a blocked
/// one woken; it ends at its next return to the kernel.
pub fn kill(pid: u32) -> bool {
    let Some(shared) = PROCESSES.lock().get(&pid).cloned() else {
        return false;
    };
    shared.killed.store(true, Ordering::Release);
    if let Some(waker) = shared.waker.lock().take() {
        waker.wake();
    }
    if shared.core != cpu::core_id() {
        doorbell::ring(shared.core);
    }
    true
}

/// Every live process, by pid.
pub fn list() -> Vec<Arc<Shared>> {
    PROCESSES.lock().values().cloned().collect()
}

/// Live processes.
pub fn count() -> usize {
    PROCESSES.lock().len()
}
