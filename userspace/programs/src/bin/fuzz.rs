//! Random syscalls and random ring entries, biased to the bad values:
//! null, non-canonical and kernel-half pointers, ranges across the user
//! top, read-only memory for writes, misaligned pointers, lengths 0 and
//! `u64::MAX`, overflowing `count * size`, closed, stale and wrong-type
//! handles, unknown numbers and flags (the disk-log calls too, with
//! `dlog_open` given unknown flags only). Arguments: `SEED CALLS [corrupt]`
//! (defaults 1 and 100000); the seed is printed first, for replay.
//!
//! Every ring entry's completion must come back exactly once: at the end
//! the program closes its handles (which ends the operations still in
//! flight) and waits for the rest. With `corrupt` it then corrupts one of
//! its ring's indices and enters, and must be ended by the kernel.
//! Exit codes: 0 done, 3 completions lost or duplicated, 4 not ended after
//! the corruption.
#![no_std]
#![no_main]

use percore_runtime::abi::ring::{RING_BASE, Submission};
use percore_runtime::abi::{Handle, Sys, USER_TOP};
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

/// Memory the kernel may write into (recv, info, args land here).
static mut SCRATCH: [u64; 512] = [0; 512];
/// Ring entry tags in use at once, at most (the ring and the operations
/// in flight hold far fewer).
const TAGS: u64 = 1024;
/// The arguments and number of each outstanding tag's entry.
static mut PENDING_ARGS: [[u64; 6]; TAGS as usize] = [[0; 6]; TAGS as usize];
static mut PENDING_NUMBER: [u64; TAGS as usize] = [0; TAGS as usize];
/// Read-only data.
static READ_ONLY: [u64; 8] = [0x5A; 8];
/// The stack's guard page (`process::STACK_TOP` - `STACK_SIZE` - a page).
const STACK_GUARD: u64 = 0x0000_7FFF_FFFF_0000 - 64 * 1024 - 4096;

struct Rng(u64);

impl Rng {
    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Handles the program made (channels, timers), and ones it closed.
struct Handles {
    live: [u64; 32],
    live_len: usize,
    closed: [u64; 8],
    closed_next: usize,
    ring: u64,
    /// A channel only this program's syscall receives use (a receive taken
    /// from the ring could otherwise take the message first, and a syscall
    /// receive would then wait for good).
    private: u64,
}

impl Handles {
    fn add(&mut self, handle: u64) {
        if self.live_len < self.live.len() {
            self.live[self.live_len] = handle;
            self.live_len += 1;
        } else {
            let _ = sys::close(Handle::from_raw(handle));
        }
    }

    fn forget(&mut self, handle: u64) {
        if let Some(i) = self.live[..self.live_len].iter().position(|h| *h == handle) {
            self.live_len -= 1;
            self.live[i] = self.live[self.live_len];
            self.closed[self.closed_next % 8] = handle;
            self.closed_next += 1;
        }
    }

    /// A handle, biased to bad ones; never the ring's for `close`.
    fn pick(&self, rng: &mut Rng, for_close: bool) -> u64 {
        let live = (self.live_len > 0).then(|| self.live[rng.below(self.live_len as u64) as usize]);
        let handle = match rng.below(8) {
            0 | 1 => live.unwrap_or(0),
            2 => self.closed[rng.below(8) as usize],
            // Stale: a live slot at another generation.
            3 => live.map_or(0, |h| h.wrapping_add(1 << 32)),
            4 => self.ring,
            5 => Handle::new(rng.below(300) as u32, rng.below(3) as u32).raw(),
            6 => rng.next(),
            _ => 0,
        };
        if for_close && handle == self.ring {
            0
        } else {
            handle
        }
    }
}

const UNKNOWN: [u64; 6] = [15, 31, 34, 1000, u32::MAX as u64, u64::MAX];

/// A syscall number: any of the ABI's but `exit` (and `ring_enter`, made
/// only with a `min_complete` of 0), or an unknown one.
fn number(rng: &mut Rng) -> u64 {
    if rng.below(10) == 0 {
        return rng.pick(&UNKNOWN);
    }
    loop {
        let sys = rng.pick(&Sys::ALL);
        if sys != Sys::Exit {
            return sys as u64;
        }
    }
}

fn pointer(rng: &mut Rng) -> u64 {
    let scratch = &raw mut SCRATCH as u64;
    let pool = [
        0,
        0x10,
        0x8000_0000_0000_0000,
        0xFFFF_8000_0000_0000,
        0xFFFF_FFFF_8000_0000,
        USER_TOP - 8,
        USER_TOP - 1,
        READ_ONLY.as_ptr() as u64,
        main as *const () as u64,
        scratch,
        scratch + 1,
        scratch + 3,
        0x1000_0000,
        STACK_GUARD,
        rng.next(),
    ];
    rng.pick(&pool)
}

/// Whether `ptr` is in memory the program can read (its scratch buffer,
/// data, text, stack).
fn readable(ptr: u64) -> bool {
    (0x40_0000..0x1000_0000).contains(&ptr) || (STACK_GUARD..USER_TOP).contains(&ptr)
}

fn length(rng: &mut Rng) -> u64 {
    let pool = [
        0,
        1,
        7,
        8,
        16,
        48,
        256,
        257,
        4096,
        4097,
        u64::MAX,
        u64::MAX / 16 + 1,
        rng.below(1 << 20),
    ];
    rng.pick(&pool)
}

fn nanos(rng: &mut Rng) -> u64 {
    let pool = [0, 1, 9_999, 10_000, 50_000, 86_400_000_000_001, u64::MAX];
    rng.pick(&pool)
}

/// Arguments for `number`, biased to bad ones.
fn arguments(rng: &mut Rng, number: u64, handles: &Handles) -> [u64; 6] {
    let mut args = [0u64; 6];
    match Sys::from_number(number) {
        Some(Sys::Write) => {
            // A readable buffer would print: only length 0 then.
            let ptr = pointer(rng);
            let len = if readable(ptr) { 0 } else { length(rng) };
            args[..2].copy_from_slice(&[ptr, len]);
        }
        Some(Sys::Sleep | Sys::Timer) => args[0] = nanos(rng),
        Some(Sys::Close) => args[0] = handles.pick(rng, true),
        Some(Sys::Send | Sys::Recv) => {
            args[..3].copy_from_slice(&[handles.pick(rng, false), pointer(rng), length(rng)])
        }
        Some(Sys::Wait) => args[0] = handles.pick(rng, false),
        Some(Sys::WriteVectored) => {
            // Readable iovecs could name readable buffers and print:
            // then only counts that are refused (or 0).
            let ptr = pointer(rng);
            let count = match readable(ptr) {
                true => rng.pick(&[0, 65, u64::MAX / 16 + 1, u64::MAX]),
                false => rng.pick(&[0, 1, 2, 64, 65, u64::MAX / 16 + 1, u64::MAX]),
            };
            args[..2].copy_from_slice(&[ptr, count]);
        }
        Some(Sys::ProcessInfo) => args[0] = pointer(rng),
        Some(Sys::Args) => args[..2].copy_from_slice(&[pointer(rng), length(rng)]),
        Some(Sys::RingSetup) => args[0] = rng.pick(&[0, 1, 3, 8, 256, 512, u64::MAX]),
        Some(Sys::RingEnter) => args[..3].copy_from_slice(&[
            handles.pick(rng, false),
            0,
            rng.pick(&[0, 1, 64, u64::MAX]),
        ]),
        // Waits at most 1 ms (a long wait would stall the run).
        Some(Sys::PollWait) => args[..3].copy_from_slice(&[
            pointer(rng),
            rng.pick(&[0, 1, 4, 256, 257, u64::MAX / 16 + 1, u64::MAX]),
            rng.pick(&[0, 1_000_000, u64::MAX - 1]),
        ]),
        Some(
            Sys::TcpAccept
            | Sys::SockRead
            | Sys::SockWrite
            | Sys::TcpShutdown
            | Sys::UdpSendTo
            | Sys::UdpRecvFrom
            | Sys::TcpSetNodelay
            | Sys::SockLocalAddr
            | Sys::SockPeerAddr
            | Sys::PollRegister
            | Sys::PollDeregister,
        ) => args[..3].copy_from_slice(&[handles.pick(rng, false), pointer(rng), length(rng)]),
        // Unknown flags only: a fuzz run must not open (and so format)
        // the disk of the machine it runs on.
        Some(Sys::DlogOpen) => args[0] = rng.pick(&[1, 2, 1 << 40, u64::MAX]),
        Some(Sys::DlogAppend | Sys::DlogFlush | Sys::DlogInfo) => {
            args[..3].copy_from_slice(&[handles.pick(rng, false), pointer(rng), length(rng)])
        }
        Some(Sys::DlogRead) => args[..4].copy_from_slice(&[
            handles.pick(rng, false),
            rng.pick(&[0, 1, u64::MAX]),
            pointer(rng),
            length(rng),
        ]),
        _ => {
            for arg in &mut args {
                *arg = rng.next();
            }
        }
    }
    args
}

/// What a call's result means for the handles the program keeps.
fn account(
    handles: &mut Handles,
    number: u64,
    args: &[u64; 6],
    result: Result<u64, percore_runtime::abi::Error>,
) {
    match (Sys::from_number(number), result) {
        (Some(Sys::Channel | Sys::Timer), Ok(handle)) => handles.add(handle),
        (Some(Sys::Close), Ok(_)) => handles.forget(args[0]),
        _ => {}
    }
}

fn main() -> i64 {
    let mut text = [0u8; 64];
    let len = sys::args(&mut text).unwrap_or(0).min(text.len());
    let mut words = core::str::from_utf8(&text[..len])
        .unwrap_or("")
        .split_whitespace();
    let seed = words.next().and_then(|w| w.parse().ok()).unwrap_or(1u64);
    let calls = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(100_000u64);
    let corrupt = words.next() == Some("corrupt");
    println!("fuzz: seed {seed}, {calls} calls");
    let mut rng = Rng(seed);
    let Ok(mut ring) = Ring::setup(64) else {
        println!("fuzz: no ring");
        return 2;
    };
    let mut handles = Handles {
        live: [0; 32],
        live_len: 0,
        closed: [0; 8],
        closed_next: 0,
        ring: ring.handle().raw(),
        private: sys::channel().map_or(0, Handle::raw),
    };
    let (mut done, mut syscalls, mut submitted, mut completed) = (0u64, 0u64, 0u64, 0u64);
    // Tags of ring entries whose completion has not come: a bit each.
    let mut outstanding = [0u64; TAGS as usize / 64];
    let mut next_tag = 0u64;
    let mut progress = 0;
    // SAFETY: one thread; these are used only here.
    let (pending_args, pending_number) = unsafe {
        (
            (&raw mut PENDING_ARGS).as_mut().expect("a static"),
            (&raw mut PENDING_NUMBER).as_mut().expect("a static"),
        )
    };
    while done < calls {
        if rng.below(2) == 0 {
            let number = number(&mut rng);
            let args = arguments(&mut rng, number, &handles);
            let mut args = args;
            // A receive on a live channel could wait for good: it goes to
            // the private channel, with a message there first.
            if number == Sys::Recv as u64 && handles.live[..handles.live_len].contains(&args[0]) {
                args[0] = handles.private;
                let _ = sys::send(Handle::from_raw(args[0]), b"x");
            }
            let result = sys::raw(number, args[0], args[1], args[2]);
            account(&mut handles, number, &args, result);
            syscalls += 1;
            done += 1;
        } else {
            for _ in 0..=rng.below(16) {
                let number = number(&mut rng);
                let args = arguments(&mut rng, number, &handles);
                let tag = next_tag % TAGS;
                let mut entry = Submission::new(Sys::GetPid, tag, args);
                entry.op = number as u32;
                if rng.below(16) == 0 {
                    entry.flags = rng.next() as u32 | 1;
                }
                if outstanding_bit(&outstanding, tag) || ring.submit(entry).is_err() {
                    break;
                }
                set_bit(&mut outstanding, tag, true);
                pending_args[tag as usize] = args;
                pending_number[tag as usize] = if entry.flags == 0 { number } else { u64::MAX };
                next_tag += 1;
                submitted += 1;
                done += 1;
            }
            if rng.below(4) == 0 || ring.asleep() {
                // Sometimes fewer than are pending (the rest wait for a
                // later enter or the kernel's own look).
                let to_submit = rng.pick(&[0u32, 1, 3, ring.pending(), u32::MAX]);
                let _ = ring.enter(to_submit, 0);
            }
        }
        if done / 50_000 != progress {
            progress = done / 50_000;
            println!("fuzz: {done} calls, {} in flight", submitted - completed);
        }
        for c in ring.completions() {
            let tag = c.user_data;
            if tag >= TAGS || !outstanding_bit(&outstanding, tag) {
                println!("fuzz: completion for tag {tag} that is not outstanding");
                return 3;
            }
            set_bit(&mut outstanding, tag, false);
            let number = pending_number[tag as usize];
            account(
                &mut handles,
                number,
                &pending_args[tag as usize],
                percore_runtime::abi::decode(c.result),
            );
            completed += 1;
        }
    }
    // Close everything: operations in flight on those handles end.
    while handles.live_len > 0 {
        let handle = handles.live[0];
        let _ = sys::close(Handle::from_raw(handle));
        handles.forget(handle);
    }
    for _ in 0..1000 {
        if completed == submitted {
            break;
        }
        let _ = ring.submit_and_wait(1);
        for c in ring.completions() {
            if c.user_data < TAGS && outstanding_bit(&outstanding, c.user_data) {
                set_bit(&mut outstanding, c.user_data, false);
                completed += 1;
            } else {
                println!("fuzz: stray completion {}", c.user_data);
                return 3;
            }
        }
    }
    println!(
        "fuzz: seed {seed}: {done} calls ({syscalls} syscalls, {submitted} ring entries, {completed} completions)"
    );
    if completed != submitted {
        println!("fuzz: {} completions missing", submitted - completed);
        return 3;
    }
    if corrupt {
        let field = rng.pick(&[4u64, 64]);
        let value = rng.pick(&[1000u32, u32::MAX, 0x8000_0000]);
        println!("fuzz: corrupting the ring (offset {field} = {value})");
        // SAFETY: the ring's own header, deliberately wrong.
        unsafe { core::ptr::write_volatile((RING_BASE + field) as *mut u32, value) };
        let _ = ring.enter(u32::MAX, 0);
        return 4;
    }
    0
}

fn outstanding_bit(bits: &[u64], tag: u64) -> bool {
    bits[(tag / 64) as usize] & (1 << (tag % 64)) != 0
}

fn set_bit(bits: &mut [u64], tag: u64, on: bool) {
    let word = &mut bits[(tag / 64) as usize];
    if on {
        *word |= 1 << (tag % 64);
    } else {
        *word &= !(1 << (tag % 64));
    }
}
