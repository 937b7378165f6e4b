//! The submission/completion rings: the second way into the kernel
//! (FlexSC and io_uring's SQPOLL are the models), the same operations as
//! the syscalls through the same functions ([`super::quick_op`],
//! [`super::start`], [`super::poll_blocked`]).
//!
//! A process maps its ring pair with `ring_setup` (at
//! `percore_abi::ring::RING_BASE`, user-writable). The kernel pins the
//! pair's frames then and reaches the memory through them
//! (`process::ring::RingMemory`): volatile copies of words, never a Rust
//! reference, no page walk per access (the pages cannot be unmapped while
//! the ring is open). [`service`] runs on every turn its core's reactor
//! gives the process (each time its thread task is polled: after a
//! preemption, a syscall, or a wake-up of an operation in flight):
//!
//! 1. operations in flight are polled; those done get their completion,
//!    written straight into the next completion slot;
//! 2. the program's indices are read (two words) and checked by
//!    `percore_abi::ring::plan`, which says how many submissions may be
//!    taken: never more than completion slots are free for them, so a full
//!    completion ring is backpressure and nothing is lost. Indices no
//!    well-behaved program writes end the process with a one-line report;
//! 3. each entry is copied into kernel memory word by word (each word read
//!    once, the arguments only for an operation that reads them), then
//!    checked (flags, number) and run: a quick operation (the ones a
//!    syscall answers at once, `super::quick_op`) inline, with no
//!    allocation, its completion written at once; any other is started,
//!    and one that has to wait stays in flight;
//! 4. the kernel's submission head and completion tail go back to the
//!    shared memory, with the `ASLEEP` flag.
//!
//! `ring_enter(handle, min_complete, to_submit)` takes at most
//! `to_submit` submissions and waits for `min_complete` completions. When
//! nothing is in flight it is first tried as a quick syscall
//! ([`enter_quick`]): the service runs in quick mode, which stops at the
//! first entry that is not a quick operation (or after
//! [`QUICK_BUDGET_NS`]: interrupts are off meanwhile); if it did not stop, every
//! completion is there and the thread goes straight back to ring 3, with
//! no reactor round trip. Otherwise the call goes on as an ordinary one
//! ([`enter`]) from where the quick part stopped.
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

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::Ordering::Relaxed;
use core::task::{Context, Poll};

use percore_abi::ring::{self, Completion, Corrupt, Layout, RING_BASE, RingHeader, Submission};
use percore_abi::{Error, Handle, HandleKind, Sys, encode};

use super::{Outcome, Started, insert, poll_blocked, quick_op, start};
use crate::arch::user::Access;
use crate::process::Process;
use crate::process::blocking;
use crate::process::object::KernelObject;
use crate::process::ring::{InFlight, Ring, RingMemory, Run, SubmissionSlot};
use crate::process::vm::VmError;
use crate::time;

/// How long the thread runs between two looks at a ring that had
/// submissions at the last look, in ns.
pub const RING_POLL_NS: u64 = 50_000;

/// How long the kernel keeps looking at short intervals after the last
/// look that took a submission, in ns; then it marks itself asleep.
pub const RING_IDLE_NS: u64 = 1_000_000;

/// Where a header keeps the ring's order (log2 of its entries).
const ORDER: u64 = 12;

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
    /// A quick service stopped before a submission that is not quick.
    pub stopped: bool,
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
    let memory = match process.space.pin(RING_BASE, layout.size) {
        Ok(frames) => RingMemory::new(frames, layout),
        Err(_) => {
            let _ = process.space.unmap(RING_BASE, layout.size);
            return Err(Error::NoMemory);
        }
    };
    let sq = layout.submission_header;
    let cq = layout.completion_header;
    let _ = memory.store_u32(sq + RingHeader::FLAGS, RingHeader::ASLEEP);
    let _ = memory.store_u32(sq + ORDER, layout.order);
    let _ = memory.store_u32(cq + ORDER, layout.order);
    let mut ring = Box::new(Ring::new(Handle::from_raw(0), layout, memory));
    match insert(process, KernelObject::Ring) {
        Ok(handle) => {
            ring.handle = Handle::from_raw(handle);
            process.ring = Some(ring);
            Ok(handle)
        }
        Err(error) => {
            release(process, ring);
            Err(error)
        }
    }
}

/// Unmaps the rings (their handle was closed); operations in flight are
/// dropped with them.
pub fn teardown(process: &mut Process) {
    if let Some(ring) = process.ring.take() {
        release(process, ring);
    }
}

/// Lets go of `ring`'s frames, then unpins and unmaps its memory.
fn release(process: &mut Process, ring: Box<Ring>) {
    let size = ring.layout.size;
    drop(ring);
    process.space.unpin(RING_BASE, size);
    let _ = process.space.unmap(RING_BASE, size);
}

/// Gives `ring` back to `process`, unless its handle was closed through
/// the ring itself meanwhile: then it is released.
fn put_back(process: &mut Process, ring: Box<Ring>) {
    if process.handles.get(ring.handle, HandleKind::Ring).is_ok() {
        process.ring = Some(ring);
    } else {
        release(process, ring);
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

/// How far a service goes.
enum Mode<'a, 'b> {
    /// Everything: operations in flight are polled (woken through this
    /// context), any operation is started.
    Full(&'a mut Context<'b>),
    /// Only what never waits: nothing in flight is polled, and the
    /// service stops before the first submission that is not quick, or
    /// once the clock passes `until` (ns; looked at every
    /// [`QUICK_CHECK`] entries): interrupts are off meanwhile.
    Quick { until: u64 },
}

/// How long a quick `ring_enter` may run with interrupts off before the
/// rest of its submissions go the ordinary way, in ns.
const QUICK_BUDGET_NS: u64 = 20_000;

/// Every how many entries a quick service looks at the clock.
const QUICK_CHECK: u32 = 16;

/// Looks at the process's ring (if it has one): see the module docs.
/// `cx` is woken when an operation in flight can go on. At most `limit`
/// submissions are taken.
pub fn service(
    process: &mut Process,
    look: Look,
    limit: u32,
    cx: &mut Context<'_>,
) -> Result<Turn, Corrupt> {
    let Some(mut ring) = process.ring.take() else {
        return Ok(Turn::default());
    };
    let now = time::uptime_ns();
    let turn = service_ring(process, &mut ring, look, Mode::Full(cx), limit, now);
    put_back(process, ring);
    turn
}

/// Services `ring` (taken out of `process` meanwhile) as `mode` says,
/// taking at most `limit` submissions; `now` (ns since boot) is when the
/// look started.
fn service_ring(
    process: &mut Process,
    ring: &mut Ring,
    look: Look,
    mut mode: Mode<'_, '_>,
    limit: u32,
    now: u64,
) -> Result<Turn, Corrupt> {
    let mut turn = Turn::default();
    if let Mode::Full(cx) = &mut mode {
        let mut i = 0;
        while i < ring.in_flight.len() {
            match poll_blocked(process, &mut ring.in_flight[i].op, cx) {
                Poll::Ready(result) => {
                    let done = ring.in_flight.remove(i);
                    let slot = ring.memory.completions(ring.cq_tail);
                    slot.and_then(|run| run.write(0, completion(done.user_data, result)))
                        .ok_or(Corrupt::Unreachable)?;
                    ring.cq_tail = ring.cq_tail.wrapping_add(1);
                }
                Poll::Pending => i += 1,
            }
        }
    }
    let layout = ring.layout;
    let memory = &ring.memory;
    let sq_tail = memory.load_u32(layout.submission_header + RingHeader::TAIL);
    let cq_head = memory.load_u32(layout.completion_header + RingHeader::HEAD);
    let (Some(sq_tail), Some(cq_head)) = (sq_tail, cq_head) else {
        return Err(Corrupt::Unreachable);
    };
    let take = ring::plan(
        ring.sq_head,
        sq_tail,
        ring.cq_tail,
        cq_head,
        ring.in_flight.len() as u32,
        layout.order,
    )?
    .min(limit);
    // The kernel's indices in locals while entries are taken, and the
    // slots reached a run at a time (consecutive slots in one frame).
    let mut taker = Cursor::new(&ring.memory, ring.sq_head, RingMemory::submissions);
    let mut poster = Cursor::new(&ring.memory, ring.cq_tail, RingMemory::completions);
    let result = (|| {
        for i in 0..take {
            if let Mode::Quick { until } = mode
                && i > 0
                && i % QUICK_CHECK == 0
                && time::uptime_ns() >= until
            {
                turn.stopped = true;
                break;
            }
            let slot = taker.next().ok_or(Corrupt::Unreachable)?;
            // Copied into kernel memory first, then checked.
            let (op, flags, user_data) = slot.head();
            let quick = quick_entry(process, op, flags, |_| slot.args());
            let result = match (quick, &mut mode) {
                (Some(result), _) => result,
                (None, Mode::Quick { .. }) => {
                    turn.stopped = true;
                    break;
                }
                (None, Mode::Full(cx)) => {
                    let entry = Submission {
                        op,
                        flags,
                        user_data,
                        args: slot.args(),
                    };
                    taker.advance();
                    turn.taken += 1;
                    let in_flight = &mut ring.in_flight;
                    match start_entry(process, in_flight, &entry, &mut turn, cx) {
                        Some(result) => poster.post(user_data, result)?,
                        None if turn.exit.is_some() => break,
                        None => {}
                    }
                    continue;
                }
            };
            taker.advance();
            turn.taken += 1;
            poster.post(user_data, result)?;
        }
        Ok(())
    })();
    (ring.sq_head, ring.cq_tail) = (taker.index, poster.index);
    result?;
    // Only this process's task writes the counter.
    let ops = &process.shared.ring_ops;
    ops.store(ops.load(Relaxed) + u64::from(turn.taken), Relaxed);
    if turn.taken > 0 && look == Look::Poll {
        ring.last_taken = now;
    }
    ring.asleep = now.saturating_sub(ring.last_taken) > RING_IDLE_NS;
    let flags = if ring.asleep { RingHeader::ASLEEP } else { 0 };
    // The submission head and the flags; the program owns the tail.
    let memory = &ring.memory;
    memory
        .store_u32(layout.submission_header + RingHeader::HEAD, ring.sq_head)
        .and_then(|()| memory.store_u32(layout.submission_header + RingHeader::FLAGS, flags))
        .and_then(|()| memory.store_u32(layout.completion_header + RingHeader::TAIL, ring.cq_tail))
        .ok_or(Corrupt::Unreachable)?;
    turn.awake = !ring.asleep;
    turn.unread = ring.cq_tail.wrapping_sub(cq_head);
    turn.in_flight = ring.in_flight.len();
    Ok(turn)
}

/// The result of the entry `op`, `flags` (its arguments from `args`) if
/// it is answered at once: a bad entry (flags
/// set, an unknown number, a call that cannot go through the ring) or a
/// quick operation (the same [`quick_op`] the syscalls use). `None`: it
/// has to be started.
fn quick_entry(
    process: &mut Process,
    op: u32,
    flags: u32,
    args: impl FnOnce(&Process) -> [u64; 6],
) -> Option<Result<u64, Error>> {
    if flags != 0 {
        return Some(Err(Error::InvalidArgument));
    }
    let number = u64::from(op);
    if let Some(result) = quick_op(process, number, args) {
        return Some(result);
    }
    match Sys::from_number(number) {
        None => Some(Err(Error::NoSys)),
        // Not through the ring: setup is there already, enter would wait on itself.
        Some(Sys::RingSetup | Sys::RingEnter) => Some(Err(Error::InvalidArgument)),
        Some(_) => None,
    }
}

/// Starts `entry` (not a quick one): its result if it is done at once;
/// `None` if it waits (it is then in flight) or ends the process
/// (`turn.exit`).
fn start_entry(
    process: &mut Process,
    in_flight: &mut Vec<InFlight>,
    entry: &Submission,
    turn: &mut Turn,
    cx: &mut Context<'_>,
) -> Option<Result<u64, Error>> {
    let Some(sys) = Sys::from_number(u64::from(entry.op)) else {
        return Some(Err(Error::NoSys));
    };
    match start(process, sys, entry.args) {
        Started::Done(result) => Some(result),
        Started::Exit(code) => {
            turn.exit = Some(code);
            None
        }
        Started::Yield => {
            turn.yielded = true;
            Some(Ok(0))
        }
        Started::Blocked(mut op) => match poll_blocked(process, &mut op, cx) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => {
                in_flight.push(InFlight {
                    user_data: entry.user_data,
                    op,
                });
                None
            }
        },
    }
}

/// The completion of an operation tagged `user_data`.
fn completion(user_data: u64, result: Result<u64, Error>) -> Completion {
    Completion {
        user_data,
        result: encode(result),
    }
}

/// A free-running index of one ring and the run of slots it is in: the
/// slots are reached a run at a time (consecutive, in one frame).
struct Cursor<'a, const WORDS: usize> {
    memory: &'a RingMemory,
    runs: fn(&'a RingMemory, u32) -> Option<Run<'a, WORDS>>,
    /// The free-running index of the next slot.
    index: u32,
    /// The run it is in (`None` until the first use), and its place there.
    run: Option<Run<'a, WORDS>>,
    at: u32,
}

impl<'a, const WORDS: usize> Cursor<'a, WORDS> {
    fn new(
        memory: &'a RingMemory,
        index: u32,
        runs: fn(&'a RingMemory, u32) -> Option<Run<'a, WORDS>>,
    ) -> Self {
        Cursor {
            memory,
            runs,
            index,
            run: None,
            at: 0,
        }
    }

    /// The run holding the slot of `index`, and the slot's place in it.
    fn current(&mut self) -> Option<(&Run<'a, WORDS>, u32)> {
        if self.run.as_ref().is_none_or(|run| self.at >= run.len()) {
            self.run = Some((self.runs)(self.memory, self.index)?);
            self.at = 0;
        }
        Some((self.run.as_ref()?, self.at))
    }

    /// Moves on to the next slot.
    fn advance(&mut self) {
        self.index = self.index.wrapping_add(1);
        self.at += 1;
    }
}

impl<'a> Cursor<'a, 8> {
    /// The submission slot at the index (the index stays: [`advance`]
    /// takes it).
    ///
    /// [`advance`]: Cursor::advance
    fn next(&mut self) -> Option<SubmissionSlot<'a>> {
        let (run, at) = self.current()?;
        run.submission(at)
    }
}

impl Cursor<'_, 2> {
    /// Writes a completion at the kernel's completion tail and moves it
    /// (the slot is free: [`ring::plan`] promised it when the entry was
    /// taken).
    fn post(&mut self, user_data: u64, result: Result<u64, Error>) -> Result<(), Corrupt> {
        let (run, at) = self.current().ok_or(Corrupt::Unreachable)?;
        run.write(at, completion(user_data, result))
            .ok_or(Corrupt::Unreachable)?;
        self.advance();
        Ok(())
    }
}

/// The checked arguments of `ring_enter(handle, min_complete, to_submit)`:
/// `min_complete` and `to_submit` (clamped to the ring's size).
fn enter_args(process: &mut Process, args: [u64; 6]) -> Result<(u32, u32), Error> {
    process
        .handles
        .get(Handle::from_raw(args[0]), HandleKind::Ring)?;
    let entries = process.ring.as_ref().map_or(0, |r| r.layout.entries());
    if args[1] > u64::from(entries) {
        return Err(Error::InvalidArgument);
    }
    Ok((args[1] as u32, args[2].min(u64::from(entries)) as u32))
}

/// `ring_enter` as a quick syscall (see the module docs): its result if
/// nothing was in flight and every submission it took was quick (all
/// completions are then there); `None` to go on as an ordinary call,
/// after what this part took (counted in `Ring::quick_taken`).
pub fn enter_quick(process: &mut Process, args: [u64; 6]) -> Option<Result<u64, Error>> {
    let (_, to_submit) = match enter_args(process, args) {
        Ok(checked) => checked,
        Err(error) => return Some(Err(error)),
    };
    let ring = process.ring.as_mut()?;
    ring.quick_taken = 0;
    if !ring.in_flight.is_empty() {
        return None;
    }
    let mut ring = process.ring.take()?;
    let now = time::uptime_ns();
    let mode = Mode::Quick {
        until: now.saturating_add(QUICK_BUDGET_NS),
    };
    let turn = service_ring(process, &mut ring, Look::Enter, mode, to_submit, now);
    let done = matches!(turn, Ok(Turn { stopped: false, .. }));
    if let (Ok(turn), false) = (&turn, done) {
        ring.quick_taken = turn.taken;
    }
    put_back(process, ring);
    match turn {
        Ok(turn) if done && process.ring.is_some() => Some(Ok(u64::from(turn.unread))),
        // Stopped, closed through the ring or corrupt: the ordinary call
        // goes on from here (and reports it).
        _ => None,
    }
}

/// `ring_enter(handle, min_complete, to_submit) -> available`: takes at
/// most `to_submit` of the ring's submissions now, then waits until
/// `min_complete` completions are there to read or nothing is in flight.
/// `Err` carries how the process ends instead (killed, exit through the
/// ring, a corrupt ring).
pub async fn enter(process: &mut Process, args: [u64; 6]) -> Result<Result<u64, Error>, Outcome> {
    let (min, to_submit) = match enter_args(process, args) {
        Ok(checked) => checked,
        Err(error) => return Ok(Err(error)),
    };
    // What the quick part of this call took counts against `to_submit`.
    let quick = process
        .ring
        .as_mut()
        .map_or(0, |r| core::mem::take(&mut r.quick_taken));
    let mut left = to_submit.saturating_sub(quick);
    let shared = process.shared.clone();
    let waited = blocking(
        &shared,
        poll_fn(|cx| {
            let turn = match service(process, Look::Enter, left, cx) {
                Err(corrupt) => return Poll::Ready(Err(Outcome::BadRing(corrupt))),
                Ok(Turn {
                    exit: Some(code), ..
                }) => return Poll::Ready(Err(Outcome::Exit(code))),
                Ok(turn) => turn,
            };
            left -= turn.taken;
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
