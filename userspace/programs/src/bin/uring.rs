//! Checks the submission/completion rings from the program's side, one
//! case per argument:
//!
//! - `ops` (default): every operation through the ring gives what the
//!   syscall gives (getpid, clock, write, channel/send/recv, timer/wait,
//!   sleep, yield, close); an operation that waits stays in flight while
//!   others complete; bad entries get their error (flags, unknown number,
//!   setup through the ring, null pointer, stale handle); a full completion
//!   ring stops the kernel taking submissions and nothing is lost; while
//!   the kernel is awake it takes submissions with no trap. Exits with the
//!   number of failed checks.
//! - `poll`: the executor and readiness layer (`percore_runtime::poll`,
//!   `executor`): three ticks of a 1 ms timer, then a message sent to a
//!   channel makes it readable; exits with the number of failed checks.
//! - `exit`: exits with code 7 through the ring.
//! - `corrupt-sq`, `corrupt-cq`: corrupts an index and enters; the kernel
//!   must end the process (exit code 0 means it did not).
//!   `corrupt-after` does the same to the submission tail after batches
//!   the kernel answered on its quick path.
//! - `remap`: closes the ring (through a syscall, then through the ring
//!   itself) and sets up a new one each time, which works as the first
//!   did; exits with the number of failed checks.
//! - `unmapped`: closes the ring and reads where it was: the kernel must
//!   end the process with a page fault (exit code 0 means it did not).
#![no_std]
#![no_main]

use percore_runtime::abi::ring::{Completion, RING_BASE, Submission};
use percore_runtime::abi::{Error, Handle, Sys, decode};
use percore_runtime::executor::{block_on, readable};
use percore_runtime::poll::{Events, Interest, Poll, Token};
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

struct Checks {
    failed: u32,
}

impl Checks {
    fn expect<T: PartialEq + core::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.failed += 1;
            println!("uring: FAIL {what}: got {got:?}, want {want:?}");
        }
    }
}

fn entry(op: Sys, tag: u64, args: [u64; 6]) -> Submission {
    Submission::new(op, tag, args)
}

/// Submits `entries`, waits for all their completions, and returns them
/// in tag order (tags are 0..n).
fn run_all(ring: &mut Ring, entries: &[Submission]) -> [Option<Result<u64, Error>>; 64] {
    let mut results = [None; 64];
    for e in entries {
        ring.submit(*e).expect("room in the ring");
    }
    let mut got = 0;
    while got < entries.len() {
        let _ = ring.submit_and_wait(1);
        for c in ring.completions() {
            results[c.user_data as usize] = Some(decode(c.result));
            got += 1;
        }
    }
    results
}

fn main() -> i64 {
    let mut args = [0u8; 32];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let case = core::str::from_utf8(&args[..len]).unwrap_or("").trim();
    let mut ring = match Ring::setup(8) {
        Ok(ring) => ring,
        Err(error) => {
            println!("uring: setup: {error}");
            return 100;
        }
    };
    match case {
        "" | "ops" => ops(&mut ring),
        "poll" => poll(ring),
        "exit" => {
            ring.submit(entry(Sys::Exit, 0, [7, 0, 0, 0, 0, 0])).ok();
            let _ = ring.submit_and_wait(1);
            println!("uring: still running after exit through the ring");
            1
        }
        "corrupt-sq" | "corrupt-cq" => {
            let field = if case == "corrupt-sq" { 4 } else { 64 };
            // SAFETY: the ring's own header, deliberately wrong.
            unsafe { core::ptr::write_volatile((RING_BASE + field) as *mut u32, 1000) };
            let _ = ring.enter(u32::MAX, 0);
            println!("uring: {case} not stopped");
            0
        }
        "corrupt-after" => {
            for _ in 0..3 {
                let _ = run_all(&mut ring, &[entry(Sys::GetPid, 0, [0; 6]); 8]);
            }
            // SAFETY: the ring's own header, deliberately wrong.
            unsafe { core::ptr::write_volatile((RING_BASE + 4) as *mut u32, 1000) };
            let _ = ring.enter(u32::MAX, 0);
            println!("uring: {case} not stopped");
            0
        }
        "remap" => remap(ring),
        "unmapped" => {
            let _ = run_all(&mut ring, &[entry(Sys::GetPid, 0, [0; 6])]);
            drop(ring);
            // SAFETY: deliberately reads where the closed ring was mapped.
            let word = unsafe { core::ptr::read_volatile(RING_BASE as *const u32) };
            println!("uring: read {word} from a closed ring");
            0
        }
        other => {
            println!("uring: unknown case `{other}`");
            2
        }
    }
}

fn ops(ring: &mut Ring) -> i64 {
    let mut c = Checks { failed: 0 };
    c.expect("fresh ring asleep", ring.asleep(), true);
    c.expect(
        "a second setup",
        sys::call(Sys::RingSetup, 8, 0, 0),
        Err(Error::InvalidArgument),
    );

    // Plain operations, one batch.
    let pid = sys::getpid();
    let before = sys::clock();
    let text = b"uring: write through the ring\n";
    let r = run_all(
        ring,
        &[
            entry(Sys::GetPid, 0, [0; 6]),
            entry(Sys::Clock, 1, [0; 6]),
            entry(
                Sys::Write,
                2,
                [text.as_ptr() as u64, text.len() as u64, 0, 0, 0, 0],
            ),
            entry(Sys::Yield, 3, [0; 6]),
            entry(Sys::Channel, 4, [0; 6]),
        ],
    );
    c.expect("getpid", r[0], Some(Ok(pid)));
    c.expect(
        "clock moves on",
        r[1].map(|t| t.map(|t| t >= before)),
        Some(Ok(true)),
    );
    c.expect("write", r[2], Some(Ok(text.len() as u64)));
    c.expect("yield", r[3], Some(Ok(0)));
    let channel = Handle::from_raw(r[4].and_then(Result::ok).unwrap_or(0));

    // A receive that waits stays in flight while others complete; a send
    // through the ring then completes it.
    let mut buffer = [0u8; 32];
    let message = b"through the ring";
    let recv = entry(
        Sys::Recv,
        10,
        [
            channel.raw(),
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
            0,
            0,
            0,
        ],
    );
    ring.submit(recv).ok();
    ring.submit(entry(Sys::GetPid, 11, [0; 6])).ok();
    let _ = ring.submit_and_wait(1);
    let first: Option<Completion> = ring.completions().next();
    c.expect(
        "nop overtakes the waiting recv",
        first.map(|c| c.user_data),
        Some(11),
    );
    ring.submit(entry(
        Sys::Send,
        12,
        [
            channel.raw(),
            message.as_ptr() as u64,
            message.len() as u64,
            0,
            0,
            0,
        ],
    ))
    .ok();
    let mut seen = [None; 2];
    while seen.iter().any(Option::is_none) {
        let _ = ring.submit_and_wait(1);
        for done in ring.completions() {
            if let 10 | 12 = done.user_data {
                seen[(done.user_data - 10) as usize / 2] = Some(decode(done.result));
            }
        }
    }
    c.expect("recv completes", seen[0], Some(Ok(message.len() as u64)));
    c.expect("send", seen[1], Some(Ok(0)));
    c.expect("received bytes", &buffer[..message.len()], &message[..]);

    // Timer and sleep through the ring.
    let r = run_all(ring, &[entry(Sys::Timer, 0, [1_000_000, 0, 0, 0, 0, 0])]);
    let timer = r[0].and_then(Result::ok).unwrap_or(0);
    let start = sys::clock();
    let r = run_all(
        ring,
        &[
            entry(Sys::Wait, 0, [timer, 0, 0, 0, 0, 0]),
            entry(Sys::Sleep, 1, [2_000_000, 0, 0, 0, 0, 0]),
        ],
    );
    c.expect("wait", r[0], Some(Ok(1)));
    c.expect("sleep", r[1], Some(Ok(0)));
    c.expect("slept 2 ms", sys::clock() - start >= 2_000_000, true);
    let r = run_all(
        ring,
        &[
            entry(Sys::Close, 0, [timer, 0, 0, 0, 0, 0]),
            entry(Sys::Wait, 1, [timer, 0, 0, 0, 0, 0]),
        ],
    );
    c.expect("close", r[0], Some(Ok(0)));
    c.expect(
        "wait on the closed timer",
        r[1],
        Some(Err(Error::BadHandle)),
    );

    // Bad entries get their error.
    let mut flagged = entry(Sys::GetPid, 0, [0; 6]);
    flagged.flags = 1;
    let mut unknown = entry(Sys::GetPid, 1, [0; 6]);
    unknown.op = 0xdead;
    let r = run_all(
        ring,
        &[
            flagged,
            unknown,
            entry(Sys::RingSetup, 2, [8, 0, 0, 0, 0, 0]),
            entry(Sys::RingEnter, 3, [ring.handle().raw(), 0, 0, 0, 0, 0]),
            entry(Sys::Write, 4, [0, 8, 0, 0, 0, 0]),
            entry(Sys::Send, 5, [timer, 0, 0, 0, 0, 0]),
            entry(Sys::Recv, 6, [ring.handle().raw(), 0, 0, 0, 0, 0]),
        ],
    );
    c.expect("flags", r[0], Some(Err(Error::InvalidArgument)));
    c.expect("unknown number", r[1], Some(Err(Error::NoSys)));
    c.expect(
        "setup through the ring",
        r[2],
        Some(Err(Error::InvalidArgument)),
    );
    c.expect(
        "enter through the ring",
        r[3],
        Some(Err(Error::InvalidArgument)),
    );
    c.expect("null pointer", r[4], Some(Err(Error::Null)));
    c.expect("closed handle", r[5], Some(Err(Error::BadHandle)));
    c.expect("wrong-type handle", r[6], Some(Err(Error::WrongType)));
    c.expect(
        "enter asks too much",
        ring.enter(0, 9),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "enter on a channel",
        sys::call(Sys::RingEnter, channel.raw(), 0, 0),
        Err(Error::WrongType),
    );

    // Backpressure: with 8 completions unread the kernel takes nothing.
    for tag in 0..8 {
        ring.submit(entry(Sys::GetPid, tag, [0; 6])).ok();
    }
    c.expect("8 complete", ring.submit_and_wait(8), Ok(8));
    for tag in 8..16 {
        ring.submit(entry(Sys::GetPid, tag, [0; 6])).ok();
    }
    c.expect(
        "submission ring full",
        ring.submit(entry(Sys::GetPid, 99, [0; 6])).is_err(),
        true,
    );
    c.expect("nothing taken while full", ring.enter(8, 0), Ok(8));
    c.expect("still pending", ring.pending(), 8);
    let mut tags = [0u64; 16];
    let mut n = 0;
    for done in ring.completions().take(4) {
        tags[n] = done.user_data;
        n += 1;
    }
    c.expect("four taken after four read", ring.enter(8, 0), Ok(8));
    c.expect("four pending", ring.pending(), 4);
    while n < 16 {
        let _ = ring.submit_and_wait(1);
        for done in ring.completions() {
            if n < 16 {
                tags[n] = done.user_data;
            }
            n += 1;
        }
    }
    c.expect(
        "every completion once, in order",
        tags,
        core::array::from_fn(|i| i as u64),
    );

    to_submit(&mut c, ring);

    // The kernel takes a submission with no trap (at its next look: soon
    // while awake, at the end of the slice once asleep).
    ring.submit(entry(Sys::GetPid, 0, [0; 6])).ok();
    let _ = ring.submit_and_wait(1);
    let _ = ring.completions().count();
    let traps = sys::info().map(|i| i.syscalls).unwrap_or(0);
    ring.submit(entry(Sys::GetPid, 1, [0; 6])).ok();
    let mut spins = 0u64;
    while ring.ready() == 0 && spins < 2_000_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    let after = sys::info().map(|i| i.syscalls).unwrap_or(0);
    c.expect(
        "completion without a trap",
        ring.completions().next().map(|c| c.user_data),
        Some(1),
    );
    c.expect("traps meanwhile (the info call)", after - traps, 1);

    let _ = sys::close(channel);
    if c.failed == 0 {
        println!("uring: every check passed");
    }
    i64::from(c.failed)
}

/// `ring_enter`'s `to_submit`: the call takes at most that many (0: none),
/// the rest stay pending; also with an operation that is not quick among
/// them (a timer with a bad period: the quick part stops there, the rest
/// of the call goes on). The kernel's own looks take everything, so each
/// try waits until the kernel marked itself asleep (it then looks only at
/// full slices); a turn of the core between the submissions and the
/// checks (a preemption) may still take them all, so each case is tried
/// until one try shows what it should (a kernel that took too many never
/// does).
fn to_submit(c: &mut Checks, ring: &mut Ring) {
    let pid = entry(Sys::GetPid, 0, [0; 6]);
    let slow = entry(Sys::Timer, 1, [0; 6]);
    let cases: [(&str, &[Submission], u32, u32); 4] = [
        ("to_submit 1 of 4", &[pid; 4], 1, 1),
        ("to_submit 0 of 3", &[pid; 3], 0, 0),
        (
            "to_submit 2, a slow one second",
            &[pid, slow, pid, pid],
            2,
            2,
        ),
        (
            "to_submit 3, a slow one first",
            &[slow, pid, pid, pid],
            3,
            3,
        ),
    ];
    for (what, entries, to_submit, taken) in cases {
        let n = entries.len() as u32;
        let want = (Ok(taken), n - taken);
        let mut got = None;
        for _ in 0..20 {
            // An awake kernel looks on its own at every 50 us slice end
            // (and a look takes everything): wait until it sleeps.
            for _ in 0..20 {
                if ring.asleep() {
                    break;
                }
                let _ = sys::sleep_ns(500_000);
            }
            let _ = ring.completions().count();
            for e in entries {
                ring.submit(*e).expect("room in the ring");
            }
            let unread = ring.enter(to_submit, 0);
            let pending = ring.pending();
            // Take the rest before the next try.
            let _ = ring.submit_and_wait(0);
            got = Some((unread, pending));
            if got == Some(want) {
                break;
            }
        }
        c.expect(what, got, Some(want));
    }
    let _ = ring.completions().count();
}

/// Closing the ring and setting up a new one: the new pair works as the
/// first did, whether the old one was closed by a syscall or through the
/// ring itself.
fn remap(ring: Ring) -> i64 {
    let mut c = Checks { failed: 0 };
    let pid = sys::getpid();
    let mut ring = ring;
    let batch: [Submission; 8] = core::array::from_fn(|tag| entry(Sys::GetPid, tag as u64, [0; 6]));
    for round in 0..3 {
        let r = run_all(&mut ring, &batch);
        c.expect("getpid", r[..8].iter().all(|r| *r == Some(Ok(pid))), true);
        if round == 1 {
            // Closed through the ring: the call that carried it ends with
            // a stale handle (the ring is gone under it).
            let handle = ring.handle().raw();
            ring.submit(entry(Sys::Close, 0, [handle, 0, 0, 0, 0, 0]))
                .ok();
            c.expect(
                "closed through the ring",
                ring.submit_and_wait(1),
                Err(Error::BadHandle),
            );
            core::mem::forget(ring);
        } else {
            drop(ring);
        }
        ring = match Ring::setup(8) {
            Ok(ring) => ring,
            Err(error) => {
                println!("uring: setup again: {error}");
                return 100;
            }
        };
        c.expect("the new ring starts asleep", ring.asleep(), true);
        c.expect("and empty", (ring.pending(), ring.ready()), (0, 0));
    }
    if c.failed == 0 {
        println!("uring: remap: every check passed");
    }
    i64::from(c.failed)
}

fn poll(ring: Ring) -> i64 {
    let mut c = Checks { failed: 0 };
    let mut poll = Poll::new(ring);
    let start = sys::clock();
    let (Ok(timer), Ok(channel)) = (sys::timer(1_000_000), sys::channel()) else {
        println!("uring: no timer or channel");
        return 1;
    };
    const TICK: Token = Token(1);
    const MESSAGE: Token = Token(2);
    c.expect(
        "register timer",
        poll.registry().register(timer, TICK, Interest::READABLE),
        Ok(()),
    );
    c.expect(
        "register channel",
        poll.registry()
            .register(channel, MESSAGE, Interest::READABLE),
        Ok(()),
    );
    c.expect(
        "register twice",
        poll.registry().register(timer, TICK, Interest::READABLE),
        Err(Error::InvalidArgument),
    );
    let mut events = Events::with_capacity(8);
    c.expect(
        "poll without waiting",
        poll.poll(&mut events, Some(core::time::Duration::ZERO)),
        Ok(()),
    );
    c.expect(
        "no message yet",
        events.iter().any(|e| e.token() == MESSAGE),
        false,
    );
    let received = block_on(&mut poll, async {
        for _ in 0..3 {
            readable(TICK).await;
        }
        let _ = sys::send(channel, b"ready");
        readable(MESSAGE).await;
        let mut buffer = [0u8; 8];
        sys::recv(channel, &mut buffer).map(|n| (n, buffer))
    });
    c.expect(
        "three ticks of a 1 ms timer take 3 ms",
        sys::clock() - start >= 3_000_000,
        true,
    );
    c.expect(
        "message",
        received.map(|(n, b)| (n, b[..5] == *b"ready")),
        Ok((5, true)),
    );
    c.expect("deregister", poll.registry().deregister(TICK), Ok(()));
    c.expect(
        "timeout",
        poll.poll(&mut events, Some(core::time::Duration::from_millis(2))),
        Ok(()),
    );
    c.expect(
        "no event after deregister",
        events.iter().any(|e| e.token() == TICK),
        false,
    );
    if c.failed == 0 {
        println!("uring: poll: every check passed");
    }
    i64::from(c.failed)
}
