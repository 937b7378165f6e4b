//! The submission/completion rings: the second way into the kernel
//! (FlexSC and io_uring's SQPOLL are the models), the same operations as
//! the syscalls through the same functions ([`super::start`],
//! [`super::poll_blocked`]).
//!
//! A process maps its ring pair with `ring_setup` (at
//! `percore_abi::ring::RING_BASE`, user-writable). The kernel reaches that
//! memory only through `umem`'s checked copies, never a Rust reference.
//! [`service`] runs on every turn its core's reactor gives the process
//! (each time its thread task is polled: after a preemption, a syscall,
//! or a wake-up of an operation in flight):
//!
//! 1. operations in flight are polled; those done get their completion;
//! 2. the program's indices are read (one copy) and checked by
//!    `percore_abi::ring::plan`, which says how many submissions may be
//!    taken: never more than completion slots are free for them, so a full
//!    completion ring is backpressure and nothing is lost. Indices no
//!    well-behaved program writes end the process with a one-line report;
//! 3. the entries are copied into kernel memory, then checked (flags,
//!    number) and started; one that has to wait stays in flight;
//! 4. completions, the kernel's submission head and completion tail go
//!    back to the shared memory, with the `ASLEEP` flag.
//!
//! While the program keeps submitting without a trap, its thread runs in
//! short slices ([`RING_POLL_NS`]) so the kernel looks again soon; once
//! its own looks have found nothing for [`RING_IDLE_NS`] it sets `ASLEEP`
//! and goes back to full slices (it still looks at every turn, but a turn
//! may now be a slice away), and the program then makes one `ring_enter`
//! call, which also waits for completions. Submissions that `ring_enter`
//! takes do not wake the ring: a program that enters for every batch
//! (submit and wait) would otherwise be interrupted every
//! [`RING_POLL_NS`] for looks that never find anything.

use alloc::vec;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::task::{Context, Poll};

use percore_abi::ring::{self, Completion, Corrupt, Layout, RING_BASE, RingHeader, Submission};
use percore_abi::{Error, Handle, HandleKind, Sys, encode};

use super::{Outcome, Started, insert, poll_blocked, start};
use crate::arch::user::Access;
use crate::process::object::KernelObject;
use crate::process::ring::{InFlight, Ring};
use crate::process::vm::VmError;
use crate::process::{Process, blocking, umem};
use crate::time;

/// How long the thread runs between two looks at a ring that had
/// submissions at the last look, in ns.
pub const RING_POLL_NS: u64 = 50_000;

/// How long the kernel keeps looking at short intervals after the last
/// look that took a submission, in ns; then it marks itself asleep.
pub const RING_IDLE_NS: u64 = 1_000_000;

/// What one service of the ring found.
#[derive(Clone, Copy, Debug, Default)]
pub struct Turn {
    /// Submissions taken.
    pub taken: u32,
    /// The ring is awake: look again after [`RING_POLL_NS`].
    pub awake: bool,
    /// Completions there for the program to read.
    pub unread: u32,
    /// Operations still in flight.
    pub in_flight: usize,
    /// A `yield` was among them.
    pub yielded: bool,
    /// An `exit(code)` was among them.
    pub exit: Option<i64>,
}

/// `ring_setup(entries) -> handle`.
pub fn setup(process: &mut Process, entries: u64) -> Result<u64, Error> {
    if process.ring.is_some() {
        return Err(Error::InvalidArgument);
    }
    let layout = Layout::new(entries).ok_or(Error::InvalidArgument)?;
    process
        .space
        .map_zeroed(RING_BASE, layout.size, Access::ReadWrite)
        .map_err(|error| match error {
            VmError::NoMemory => Error::NoMemory,
            _ => Error::InvalidArgument,
        })?;
    let mut header = [0u8; 16];
    header[8..12].copy_from_slice(&RingHeader::ASLEEP.to_le_bytes());
    header[12..16].copy_from_slice(&layout.order.to_le_bytes());
    let written = umem::write(&mut process.space, RING_BASE, &header, 64).and_then(|()| {
        let at = RING_BASE + layout.completion_header + 12;
        umem::write(&mut process.space, at, &header[12..], 4)
    });
    let handle = written.and_then(|()| insert(process, KernelObject::Ring));
    match handle {
        Ok(handle) => {
            process.ring = Some(Ring::new(Handle::from_raw(handle), layout));
            Ok(handle)
        }
        Err(error) => {
            let _ = process.space.unmap(RING_BASE, layout.size);
            Err(error)
        }
    }
}

/// Unmaps the rings (their handle was closed); operations in flight are
/// dropped with them.
pub fn teardown(process: &mut Process) {
    if let Some(ring) = process.ring.take() {
        let _ = process.space.unmap(RING_BASE, ring.layout.size);
    }
}

/// How the kernel came to look at the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// On its own, at a turn of the thread's task: submissions found this
    /// way keep the ring awake.
    Poll,
    /// In `ring_enter`: the program trapped anyway, so what it submitted
    /// says nothing about whether looking on our own would pay.
    Enter,
}

/// Looks at the process's ring (if it has one): see the module docs.
/// `cx` is woken when an operation in flight can go on.
pub fn service(process: &mut Process, look: Look, cx: &mut Context<'_>) -> Result<Turn, Corrupt> {
    let Some(mut ring) = process.ring.take() else {
        return Ok(Turn::default());
    };
    let turn = service_ring(process, &mut ring, look, cx);
    if process.handles.get(ring.handle, HandleKind::Ring).is_ok() {
        process.ring = Some(ring);
    } else {
        // Closed through the ring itself.
        let _ = process.space.unmap(RING_BASE, ring.layout.size);
    }
    turn
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn service_ring(
    process: &mut Process,
    ring: &mut Ring,
    look: Look,
    cx: &mut Context<'_>,
) -> Result<Turn, Corrupt> {
    let mut turn = Turn::default();
    let mut posted: Vec<Completion> = Vec::with_capacity(ring.layout.entries() as usize);
    let mut i = 0;
    while i < ring.in_flight.len() {
        match poll_blocked(process, &mut ring.in_flight[i].op, cx) {
            Poll::Ready(result) => {
                let done = ring.in_flight.remove(i);
                posted.push(Completion {
                    user_data: done.user_data,
                    result: encode(result),
                });
            }
            Poll::Pending => i += 1,
        }
    }
    let layout = ring.layout;
    let mut header = [0u8; 128];
    umem::read(&mut process.space, RING_BASE, &mut header, 64).map_err(|_| Corrupt::Unreachable)?;
    let sq_tail = read_u32(&header, RingHeader::TAIL as usize);
    let cq_head = read_u32(
        &header,
        (layout.completion_header + RingHeader::HEAD) as usize,
    );
    let cq_tail = ring.cq_tail.wrapping_add(posted.len() as u32);
    let take = ring::plan(
        ring.sq_head,
        sq_tail,
        cq_tail,
        cq_head,
        ring.in_flight.len() as u32,
        layout.order,
    )?;
    let entries = copy_in(process, ring, take)?;
    ring.sq_head = ring.sq_head.wrapping_add(take);
    turn.taken = take;
    process
        .shared
        .ring_ops
        .fetch_add(u64::from(take), core::sync::atomic::Ordering::Relaxed);
    for entry in entries {
        let started = match Sys::from_number(u64::from(entry.op)) {
            _ if entry.flags != 0 => Started::Done(Err(Error::InvalidArgument)),
            None => Started::Done(Err(Error::NoSys)),
            // Not through the ring: setup is there already, enter would wait on itself.
            Some(Sys::RingSetup | Sys::RingEnter) => Started::Done(Err(Error::InvalidArgument)),
            Some(sys) => start(process, sys, entry.args),
        };
        let result = match started {
            Started::Done(result) => result,
            Started::Exit(code) => {
                turn.exit = Some(code);
                break;
            }
            Started::Yield => {
                turn.yielded = true;
                Ok(0)
            }
            Started::Blocked(mut op) => match poll_blocked(process, &mut op, cx) {
                Poll::Ready(result) => result,
                Poll::Pending => {
                    ring.in_flight.push(InFlight {
                        user_data: entry.user_data,
                        op,
                    });
                    continue;
                }
            },
        };
        posted.push(Completion {
            user_data: entry.user_data,
            result: encode(result),
        });
    }
    copy_out(process, ring, &posted)?;
    let now = time::uptime_ns();
    if take > 0 && look == Look::Poll {
        ring.last_taken = now;
    }
    ring.asleep = now.saturating_sub(ring.last_taken) > RING_IDLE_NS;
    let flags = if ring.asleep { RingHeader::ASLEEP } else { 0 };
    // The submission head and the flags; the program owns the tail.
    let sq = RING_BASE + layout.submission_header;
    umem::write(&mut process.space, sq, &ring.sq_head.to_le_bytes(), 4)
        .and_then(|()| {
            umem::write(
                &mut process.space,
                sq + RingHeader::FLAGS,
                &flags.to_le_bytes(),
                4,
            )
        })
        .and_then(|()| {
            let at = RING_BASE + layout.completion_header + RingHeader::TAIL;
            umem::write(&mut process.space, at, &ring.cq_tail.to_le_bytes(), 4)
        })
        .map_err(|_| Corrupt::Unreachable)?;
    turn.awake = !ring.asleep;
    turn.unread = ring.cq_tail.wrapping_sub(cq_head);
    turn.in_flight = ring.in_flight.len();
    Ok(turn)
}

/// The index ranges `[first, first + count)` of a ring of `2^order`
/// entries as at most two runs of slots (it may wrap).
fn runs(first: u32, count: u32, order: u32) -> [(u32, u32); 2] {
    let start = ring::slot(first, order);
    let before_end = (1u32 << order) - start;
    let one = count.min(before_end);
    [(start, one), (0, count - one)]
}

/// Copies `take` submissions from the ring into kernel memory.
fn copy_in(process: &mut Process, ring: &Ring, take: u32) -> Result<Vec<Submission>, Corrupt> {
    let mut bytes = vec![0u8; take as usize * 64];
    let mut done = 0usize;
    for (slot, count) in runs(ring.sq_head, take, ring.layout.order) {
        if count == 0 {
            continue;
        }
        let at = RING_BASE + ring.layout.submissions + u64::from(slot) * 64;
        let len = count as usize * 64;
        umem::read(&mut process.space, at, &mut bytes[done..done + len], 64)
            .map_err(|_| Corrupt::Unreachable)?;
        done += len;
    }
    Ok(bytes
        .as_chunks::<64>()
        .0
        .iter()
        .map(Submission::from_bytes)
        .collect())
}

/// Writes `posted` completions at the kernel's completion tail and moves it.
fn copy_out(process: &mut Process, ring: &mut Ring, posted: &[Completion]) -> Result<(), Corrupt> {
    let mut done = 0usize;
    for (slot, count) in runs(ring.cq_tail, posted.len() as u32, ring.layout.order) {
        if count == 0 {
            continue;
        }
        let bytes: Vec<u8> = posted[done..done + count as usize]
            .iter()
            .flat_map(|c| c.to_bytes())
            .collect();
        let at = RING_BASE + ring.layout.completions + u64::from(slot) * 16;
        umem::write(&mut process.space, at, &bytes, 16).map_err(|_| Corrupt::Unreachable)?;
        done += count as usize;
    }
    ring.cq_tail = ring.cq_tail.wrapping_add(posted.len() as u32);
    Ok(())
}

/// `ring_enter(handle, min_complete) -> available`: takes the ring's
/// submissions now, then waits until `min_complete` completions are there
/// to read or nothing is in flight. `Err` carries how the process ends
/// instead (killed, exit through the ring, a corrupt ring).
pub async fn enter(process: &mut Process, args: [u64; 6]) -> Result<Result<u64, Error>, Outcome> {
    let handle = Handle::from_raw(args[0]);
    if let Err(error) = process.handles.get(handle, HandleKind::Ring) {
        return Ok(Err(error));
    }
    let entries = process.ring.as_ref().map_or(0, |r| r.layout.entries());
    if args[1] > u64::from(entries) {
        return Ok(Err(Error::InvalidArgument));
    }
    let min = args[1] as u32;
    let shared = process.shared.clone();
    let waited = blocking(
        &shared,
        poll_fn(|cx| {
            let turn = match service(process, Look::Enter, cx) {
                Err(corrupt) => return Poll::Ready(Err(Outcome::BadRing(corrupt))),
                Ok(Turn {
                    exit: Some(code), ..
                }) => return Poll::Ready(Err(Outcome::Exit(code))),
                Ok(turn) => turn,
            };
            if process.ring.is_none() {
                // Closed through the ring.
                return Poll::Ready(Ok(Err(Error::BadHandle)));
            }
            if turn.unread >= min || turn.in_flight == 0 {
                return Poll::Ready(Ok(Ok(u64::from(turn.unread))));
            }
            Poll::Pending
        }),
    )
    .await;
    waited.unwrap_or(Err(Outcome::Killed))
}
