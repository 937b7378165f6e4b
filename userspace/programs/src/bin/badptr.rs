//! Tries every kind of bad syscall argument and checks that each gets its
//! error code (and that the good calls around them still work). Prints
//! each failure; exits with the number of failed cases (0: all passed).
#![no_std]
#![no_main]

use percore_runtime::abi::{Error, Handle, IoVec, Sys, USER_TOP};
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

/// Read-only data (lands in `.rodata`).
static READ_ONLY: [u64; 8] = [0x5A; 8];
/// Writable data.
static mut BUFFER: [u64; 1024] = [0; 1024];
/// 65 iovecs: one more than a call takes.
static mut IOVECS: [IoVec; 65] = [IoVec { base: 0, len: 0 }; 65];

/// The stack's guard page (see `process::STACK_TOP` and `STACK_SIZE`).
const STACK_GUARD: u64 = 0x0000_7FFF_FFFF_0000 - 64 * 1024 - 4096;

struct Cases {
    run: u32,
    failed: u32,
}

impl Cases {
    fn expect(&mut self, name: &str, got: Result<u64, Error>, want: Result<u64, Error>) {
        self.run += 1;
        if got != want {
            self.failed += 1;
            println!("badptr: FAIL {name}: got {got:?}, want {want:?}");
        }
    }
}

fn main() -> i64 {
    let mut c = Cases { run: 0, failed: 0 };
    let buffer = &raw mut BUFFER as u64;
    let read_only = READ_ONLY.as_ptr() as u64;
    let text = main as *const () as u64;
    let write = Sys::Write as u64;
    let info = Sys::ProcessInfo as u64;
    let writev = Sys::WriteVectored as u64;
    let raw = sys::raw;

    // Pointers.
    c.expect("write null", raw(write, 0, 8, 0), Err(Error::Null));
    c.expect("write null page", raw(write, 0x10, 8, 0), Err(Error::Null));
    c.expect(
        "write non-canonical",
        raw(write, 0x8000_0000_0000_0000, 8, 0),
        Err(Error::BadAddress),
    );
    c.expect(
        "write lower-half top",
        raw(write, USER_TOP, 8, 0),
        Err(Error::BadAddress),
    );
    c.expect(
        "write kernel half",
        raw(write, 0xFFFF_FFFF_8000_0000, 8, 0),
        Err(Error::BadAddress),
    );
    c.expect(
        "write across the user top",
        raw(write, USER_TOP - 4, 8, 0),
        Err(Error::BadAddress),
    );
    c.expect(
        "write unmapped",
        raw(write, 0x1000_0000, 8, 0),
        Err(Error::NotMapped),
    );
    c.expect(
        "write guard page",
        raw(write, STACK_GUARD, 8, 0),
        Err(Error::NotMapped),
    );
    c.expect(
        "write len usize::MAX",
        raw(write, buffer, u64::MAX, 0),
        Err(Error::Overflow),
    );
    c.expect("write len 0", raw(write, buffer, 0, 0), Ok(0));
    c.expect("write null len 0", raw(write, 0, 0, 0), Ok(0));
    c.expect(
        "write over the limit",
        raw(write, buffer, Sys::MAX_WRITE + 1, 0),
        Err(Error::InvalidArgument),
    );
    c.expect("write good", raw(write, read_only, 0, 0), Ok(0));
    c.expect(
        "info to read-only data",
        raw(info, read_only, 0, 0),
        Err(Error::ReadOnly),
    );
    c.expect("info to text", raw(info, text, 0, 0), Err(Error::ReadOnly));
    c.expect(
        "info misaligned",
        raw(info, buffer + 4, 0, 0),
        Err(Error::Misaligned),
    );
    c.expect(
        "info kernel half",
        raw(info, 0xFFFF_8000_0000_0000, 0, 0),
        Err(Error::BadAddress),
    );
    c.expect("info good", raw(info, buffer, 0, 0), Ok(0));
    c.expect(
        "args to null",
        raw(Sys::Args as u64, 0, 16, 0),
        Err(Error::Null),
    );

    // Arrays: count * size.
    c.expect(
        "writev count*size overflows",
        raw(writev, buffer, u64::MAX / 8, 0),
        Err(Error::Overflow),
    );
    c.expect(
        "writev misaligned",
        raw(writev, buffer + 4, 1, 0),
        Err(Error::Misaligned),
    );
    let iovecs = &raw mut IOVECS as u64;
    c.expect(
        "writev too many",
        raw(writev, iovecs, Sys::MAX_IOVECS + 1, 0),
        Err(Error::InvalidArgument),
    );
    // SAFETY: one thread; the kernel only reads IOVECS.
    unsafe {
        IOVECS[0] = IoVec {
            base: 0xFFFF_8000_0000_0000,
            len: 8,
        }
    };
    c.expect(
        "writev buffer in the kernel",
        raw(writev, iovecs, 1, 0),
        Err(Error::BadAddress),
    );
    // SAFETY: as above.
    unsafe {
        IOVECS[0] = IoVec {
            base: read_only,
            len: 0,
        }
    };
    c.expect("writev good", raw(writev, iovecs, 1, 0), Ok(0));

    // Handles.
    let channel = sys::channel().unwrap_or(Handle::NULL);
    c.expect("send good", sys::send(channel, b"ping"), Ok(0));
    let mut small = [0u8; 2];
    c.expect(
        "recv too small",
        sys::recv(channel, &mut small),
        Err(Error::TooSmall),
    );
    c.expect(
        "recv to read-only",
        raw(Sys::Recv as u64, channel.raw(), read_only, 8),
        Err(Error::ReadOnly),
    );
    let mut big = [0u8; 16];
    c.expect("recv good", sys::recv(channel, &mut big), Ok(4));
    c.expect(
        "send too long",
        raw(
            Sys::Send as u64,
            channel.raw(),
            buffer,
            Sys::MAX_MESSAGE as u64 + 1,
        ),
        Err(Error::InvalidArgument),
    );
    let mut sent = 0;
    while sys::send(channel, b"x").is_ok() && sent < 1000 {
        sent += 1;
    }
    c.expect(
        "a full channel says so",
        sys::send(channel, b"x"),
        Err(Error::Full),
    );
    c.expect(
        "wait on a channel",
        sys::wait(channel),
        Err(Error::WrongType),
    );
    c.expect("close", sys::close(channel), Ok(0));
    c.expect("close again", sys::close(channel), Err(Error::BadHandle));
    c.expect(
        "send on closed",
        sys::send(channel, b"x"),
        Err(Error::BadHandle),
    );
    let timer = sys::timer(1_000_000).unwrap_or(Handle::NULL);
    c.expect(
        "the slot is reused",
        Ok(u64::from(timer.index())),
        Ok(u64::from(channel.index())),
    );
    c.expect(
        "send on stale",
        sys::send(channel, b"x"),
        Err(Error::StaleHandle),
    );
    c.expect(
        "send on a timer",
        sys::send(timer, b"x"),
        Err(Error::WrongType),
    );
    c.expect("wait good", sys::wait(timer), Ok(1));
    c.expect(
        "close null",
        sys::close(Handle::NULL),
        Err(Error::BadHandle),
    );
    c.expect(
        "close garbage",
        sys::close(Handle::from_raw(0xdead_beef_0000_0042)),
        Err(Error::BadHandle),
    );
    c.expect(
        "timer period 0",
        raw(Sys::Timer as u64, 0, 0, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "sleep usize::MAX",
        raw(Sys::Sleep as u64, u64::MAX, 0, 0),
        Err(Error::InvalidArgument),
    );

    // Numbers.
    for number in [15, 31, 34, 1000, 1 << 32, u64::MAX] {
        c.expect("unknown syscall", raw(number, 0, 0, 0), Err(Error::NoSys));
    }
    for entries in [0, 3, 512, u64::MAX] {
        c.expect(
            "ring setup, bad size",
            raw(Sys::RingSetup as u64, entries, 0, 0),
            Err(Error::InvalidArgument),
        );
    }
    c.expect(
        "ring enter, no ring",
        raw(Sys::RingEnter as u64, Handle::new(200, 1).raw(), 0, 0),
        Err(Error::BadHandle),
    );

    println!("badptr: {} cases, {} failed", c.run, c.failed);
    i64::from(c.failed)
}
