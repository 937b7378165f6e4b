//! A user thread as a task of its core's reactor.
//!
//! Polling the task runs the thread: it enters ring 3 and comes back on a
//! syscall, an interrupt or an exception.
//!
//! - A syscall is handled in the task ([`super::dispatch`]); one that
//!   blocks awaits, so the task returns to the reactor until it is woken.
//!   A quick one ([`super::quick`]: never waits, never prints, adds no
//!   timer) is answered at once and the thread goes straight back to
//!   ring 3 within the same slice, without re-arming the timer or saving
//!   its FPU state: the cost of a null syscall is the trap and the answer.
//! - Before entering ring 3 the task arms its core's timer for the end of
//!   its slice ([`SLICE_NS`]) or the wheel's next deadline, whichever is
//!   first: a thread that never makes a syscall (`spin`) is interrupted
//!   there, and the task then ends the reactor's batch and yields, so the
//!   core's timers, rings and other tasks run before the thread goes on.
//!   Any other interrupt (a doorbell) yields the same way.
//! - If the process has a submission ring, each turn first services it
//!   (`super::ring`): while the ring is awake (it took submissions
//!   lately) the slice is [`ring::RING_POLL_NS`], so the kernel looks
//!   again soon.
//! - An exception kills the process with a one-line report (pid, core,
//!   RIP, reason); so does `kill` (checked at every return to the kernel,
//!   and a doorbell makes a thread in user mode return).
//!
//! The task is pinned to its core: the address space is active only there.
//! When the task ends, the [`Process`] it owns drops: every frame, page
//! table and handle is released.

use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::Ordering;
use core::task::Poll;

use percore_abi::Sys;

use super::ring::{self, Turn};
use super::{Outcome, dispatch};
use crate::arch::user::{self, Trap};
use crate::arch::{CoreId, cpu, timer};
use crate::process::object::KernelObject;
use crate::process::{Exit, Process, SpawnError, image};
use crate::reactor::{self, JoinHandle, SpawnOptions};
use crate::time::{self, Clock};

/// How long a thread runs before its core's reactor gets a turn, in ns.
pub const SLICE_NS: u64 = 2_000_000;
/// The priority user threads run at (below the shell's 48).
pub const USER_PRIORITY: u8 = 16;

/// Starts the boot archive's program `name` on core `core` with `args`.
/// Returns its pid and a handle that completes with how it ended.
pub fn spawn(name: &str, core: CoreId, args: &str) -> Result<(u32, JoinHandle<Exit>), SpawnError> {
    let program = image::find(name).ok_or(SpawnError::NotFound)?;
    spawn_image(name, program.bytes, core, args)
}

/// Like [`spawn`], with `objects` in the process's handle table from the
/// start (in order: the first is `Handle::new(0, 1)`, and so on).
pub fn spawn_with_handles(
    name: &str,
    core: CoreId,
    args: &str,
    objects: Vec<KernelObject>,
) -> Result<(u32, JoinHandle<Exit>), SpawnError> {
    let program = image::find(name).ok_or(SpawnError::NotFound)?;
    let mut process = Process::new(name, program.bytes, core, args)?;
    for object in objects {
        process
            .handles
            .insert(object)
            .map_err(|_| SpawnError::NoMemory)?;
    }
    let handles = process.handles.len();
    process.shared.handles.store(handles, Ordering::Relaxed);
    let pid = process.shared.pid;
    let options = SpawnOptions::new(reactor::priority(USER_PRIORITY)).pinned();
    Ok((pid, reactor::spawn_with(core, options, run(process))))
}

/// Starts the ELF image `bytes` as a process called `name` on core `core`.
pub fn spawn_image(
    name: &str,
    bytes: &[u8],
    core: CoreId,
    args: &str,
) -> Result<(u32, JoinHandle<Exit>), SpawnError> {
    let process = Process::new(name, bytes, core, args)?;
    let pid = process.shared.pid;
    let options = SpawnOptions::new(reactor::priority(USER_PRIORITY)).pinned();
    Ok((pid, reactor::spawn_with(core, options, run(process))))
}

/// The thread's life: enter, handle what brought it back, repeat.
async fn run(mut process: Process) -> Exit {
    // `ring_enter` just looked at the ring: no second look before ring 3.
    let mut entered = false;
    // When the running slice ends: it is not extended by syscalls that
    // return at once, so a thread that makes nothing but such calls still
    // lets its core's reactor turn every slice. `None`: the thread has
    // just been given the core (a new slice starts at its next entry).
    let mut slice_end: Option<u64> = None;
    let exit = loop {
        // CPU time: the thread's task's runtime, which the executor
        // charges after each poll (ring 3 and the kernel's work for it,
        // never the time it waits); `ps` sees it one poll late.
        let cpu_ns = reactor::current_runtime_ns();
        process.shared.cpu_ns.store(cpu_ns, Ordering::Relaxed);
        if process.shared.killed() {
            break Exit::Killed;
        }
        let mut slice = SLICE_NS;
        if process.ring.is_some() && !core::mem::take(&mut entered) {
            let look = ring::Look::Poll;
            let all = u32::MAX;
            match poll_fn(|cx| Poll::Ready(ring::service(&mut process, look, all, cx))).await {
                Err(corrupt) => break Exit::BadRing(corrupt),
                Ok(Turn {
                    exit: Some(code), ..
                }) => break Exit::Code(code),
                Ok(turn) => {
                    if turn.awake {
                        slice = ring::RING_POLL_NS;
                    }
                    if turn.yielded {
                        reactor::yield_now().await;
                    }
                }
            }
        }
        let now = Clock::now().0;
        let end = *slice_end.get_or_insert(now.saturating_add(slice));
        let end = end.min(now.saturating_add(slice));
        if now >= end {
            // The slice is spent (in syscalls that returned at once): the
            // rest of the turn runs before this thread goes on.
            slice_end = None;
            reactor::end_batch();
            reactor::yield_now().await;
            continue;
        }
        // Masked from arming the timer until ring 3: a deadline that is
        // already due must interrupt the thread, not the kernel before it.
        cpu::disable_interrupts();
        arm_slice(end);
        process.space.activate();
        let mut trap = user::enter(&mut process.context);
        // Quick syscalls go straight back to ring 3, interrupts still off:
        // the timer stays armed for this slice's end, the thread's FPU
        // state stays in the registers. An interrupt that came meanwhile
        // is taken in ring 3 and ends the loop.
        while trap == Trap::Syscall {
            count_syscall(&process);
            if process.shared.killed() {
                break;
            }
            let Some(result) = super::quick(&mut process) else {
                break;
            };
            process.context.set_result(result);
            trap = user::enter(&mut process.context);
        }
        user::save_fpu(&mut process.context);
        cpu::enable_interrupts();
        let outcome = match trap {
            Trap::Syscall => {
                entered = process.context.syscall().0 == Sys::RingEnter as u64;
                Some(dispatch(&mut process).await)
            }
            Trap::Interrupt => None,
            Trap::Fault(fault) => break Exit::Fault(fault),
        };
        match outcome {
            Some(Outcome::Return(value)) => process.context.set_result(value),
            Some(Outcome::Exit(code)) => break Exit::Code(code),
            Some(Outcome::Killed) => break Exit::Killed,
            Some(Outcome::BadRing(corrupt)) => break Exit::BadRing(corrupt),
            None => {
                // Preempted (slice over, a timer due, a doorbell): let the
                // rest of the turn run before this thread goes on.
                slice_end = None;
                reactor::end_batch();
                reactor::yield_now().await;
            }
        }
    };
    let report = process.report(&exit);
    match exit {
        Exit::Code(_) => log::info!("{report}"),
        Exit::Killed | Exit::Fault(_) | Exit::BadRing(_) => log::warn!("{report}"),
    }
    exit
}

/// Counts a syscall as it is made (before it is answered: an `info` call
/// counts itself and every call before it, even those answered at once
/// since the thread last left ring 3). Only this task writes the counter.
fn count_syscall(process: &Process) {
    let syscalls = &process.shared.syscalls;
    syscalls.store(syscalls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Arms this core's timer for `end` (ns, the end of the slice), or the
/// timer wheel's next deadline if that is sooner.
fn arm_slice(end: u64) {
    let now = Clock::now().0;
    let mut deadline = end;
    if let Some(next) = reactor::next_deadline() {
        deadline = deadline.min(next.0.max(now));
    }
    timer::arm(Clock::cycles_at(time::Instant(deadline)));
}
