//! Tries every kind of bad syscall argument and checks that each gets its
//! error code (and that the good calls around them still work). Prints
//! each failure; exits with the number of failed cases (0: all passed).
#![no_std]
#![no_main]

use percore_runtime::abi::{Error, Handle, IoVec, SockAddr, Sys, USER_TOP};
use percore_runtime::dlog::DiskLog;
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

    let mut args = [0u8; 16];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let need_net = &args[..len] == b"net";
    sockets(&mut c, timer, buffer, read_only, need_net);
    disk_log(&mut c, timer, buffer, read_only, &args[..len] == b"dlog");

    // Numbers.
    for number in [15, 31, 34, 39, 55, 1000, 1 << 32, u64::MAX] {
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

/// The socket calls: handles, flags and ranges need no network; the
/// pointer cases of `sock_read`/`sock_write` and of the UDP calls run when
/// the machine has a network (a stream being connected, a bound socket);
/// with argument `net` the network must be there.
fn sockets(c: &mut Cases, timer: Handle, buffer: u64, read_only: u64, need_net: bool) {
    let raw = sys::raw;
    let raw4 = sys::raw4;
    let n = |sys: Sys| sys as u64;
    for (what, port) in [
        ("port 0", 0),
        ("port above 65535", 70_000),
        ("port usize::MAX", u64::MAX),
    ] {
        c.expect(
            what,
            raw(n(Sys::TcpListen), port, 0, 0),
            Err(Error::InvalidArgument),
        );
        c.expect(
            what,
            raw(n(Sys::UdpBind), port, 0, 0),
            Err(Error::InvalidArgument),
        );
    }
    c.expect(
        "listen, unknown flags",
        raw(n(Sys::TcpListen), 7, 1, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "bind, unknown flags",
        raw(n(Sys::UdpBind), 7, 1 << 40, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "connect, bad address word",
        raw(n(Sys::TcpConnect), 1 << 48, 0, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "connect, port 0",
        raw(
            n(Sys::TcpConnect),
            SockAddr::new([10, 0, 2, 2], 0).raw(),
            0,
            0,
        ),
        Err(Error::InvalidArgument),
    );
    // Wrong type, closed and garbage handles, for every call that takes one.
    let with_handle = [
        Sys::TcpAccept,
        Sys::SockRead,
        Sys::SockWrite,
        Sys::TcpShutdown,
        Sys::UdpSendTo,
        Sys::UdpRecvFrom,
        Sys::TcpSetNodelay,
        Sys::SockLocalAddr,
        Sys::SockPeerAddr,
        Sys::PollRegister,
        Sys::PollDeregister,
    ];
    for sys in with_handle {
        c.expect(
            "socket call on a timer",
            raw4(n(sys), timer.raw(), buffer, 8, buffer),
            Err(Error::WrongType),
        );
        c.expect(
            "socket call on null",
            raw4(n(sys), 0, buffer, 8, buffer),
            Err(Error::BadHandle),
        );
        c.expect(
            "socket call on garbage",
            raw4(n(sys), 0xdead_beef_0000_0042, buffer, 8, buffer),
            Err(Error::BadHandle),
        );
    }
    // poll_wait: ranges of `capacity` 16-byte events.
    let wait = n(Sys::PollWait);
    c.expect("poll_wait good, no wait", raw(wait, buffer, 4, 0), Ok(0));
    c.expect("poll_wait null", raw(wait, 0, 4, 0), Err(Error::Null));
    c.expect(
        "poll_wait kernel half",
        raw(wait, 0xFFFF_8000_0000_0000, 4, 0),
        Err(Error::BadAddress),
    );
    c.expect(
        "poll_wait across the top",
        raw(wait, USER_TOP - 16, 4, 0),
        Err(Error::BadAddress),
    );
    c.expect(
        "poll_wait to read-only",
        raw(wait, read_only, 2, 0),
        Err(Error::ReadOnly),
    );
    c.expect(
        "poll_wait misaligned",
        raw(wait, buffer + 4, 2, 0),
        Err(Error::Misaligned),
    );
    c.expect(
        "poll_wait capacity 0",
        raw(wait, buffer, 0, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "poll_wait capacity usize::MAX",
        raw(wait, buffer, u64::MAX, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "poll_wait too many",
        raw(wait, buffer, Sys::MAX_EVENTS + 1, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "poll_wait timeout too long",
        raw(wait, buffer, 4, u64::MAX - 1),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "poll_wait 1 ms, nothing registered",
        raw(wait, buffer, 4, 1_000_000),
        Ok(0),
    );

    // A stream being connected (needs a network): pointer cases.
    let to = SockAddr::new([10, 0, 2, 2], 9).raw();
    let stream = match raw(n(Sys::TcpConnect), to, 0, 0) {
        Ok(stream) => stream,
        Err(error) => {
            if need_net {
                c.expect("connect with a network", Err(error), Ok(0));
            }
            return;
        }
    };
    let (read, write) = (n(Sys::SockRead), n(Sys::SockWrite));
    c.expect("read null", raw(read, stream, 0, 8), Err(Error::Null));
    c.expect(
        "read kernel half",
        raw(read, stream, 0xFFFF_8000_0000_0000, 8),
        Err(Error::BadAddress),
    );
    c.expect(
        "read across the top",
        raw(read, stream, USER_TOP - 4, 8),
        Err(Error::BadAddress),
    );
    c.expect(
        "read into read-only",
        raw(read, stream, read_only, 8),
        Err(Error::ReadOnly),
    );
    c.expect(
        "read len usize::MAX",
        raw(read, stream, buffer, u64::MAX),
        Err(Error::Overflow),
    );
    c.expect("read len 0", raw(read, stream, buffer, 0), Ok(0));
    c.expect("write null", raw(write, stream, 0, 8), Err(Error::Null));
    c.expect(
        "write kernel half",
        raw(write, stream, 0xFFFF_8000_0000_0000, 8),
        Err(Error::BadAddress),
    );
    c.expect(
        "write len usize::MAX",
        raw(write, stream, buffer, u64::MAX),
        Err(Error::Overflow),
    );
    c.expect(
        "write unmapped",
        raw(write, stream, 0x1000_0000, 8),
        Err(Error::NotMapped),
    );
    c.expect(
        "shutdown, bad how",
        raw(n(Sys::TcpShutdown), stream, 4, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "nodelay, bad value",
        raw(n(Sys::TcpSetNodelay), stream, 2, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "nodelay good",
        raw(n(Sys::TcpSetNodelay), stream, 1, 0),
        Ok(0),
    );
    c.expect(
        "register, interest 0",
        raw(n(Sys::PollRegister), stream, 1, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "register, unknown interest",
        raw(n(Sys::PollRegister), stream, 1, 4),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "register good",
        raw(n(Sys::PollRegister), stream, 1, 3),
        Ok(0),
    );
    c.expect(
        "register again",
        raw(n(Sys::PollRegister), stream, 2, 1),
        Ok(0),
    );
    c.expect(
        "deregister good",
        raw(n(Sys::PollDeregister), stream, 0, 0),
        Ok(0),
    );
    c.expect(
        "deregister again",
        raw(n(Sys::PollDeregister), stream, 0, 0),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "accept on a stream",
        raw(n(Sys::TcpAccept), stream, 0, 0),
        Err(Error::WrongType),
    );
    c.expect("close the stream", raw(n(Sys::Close), stream, 0, 0), Ok(0));
    c.expect(
        "read on closed",
        raw(read, stream, buffer, 8),
        Err(Error::BadHandle),
    );

    // A bound UDP socket (a port per process: several run at once).
    let port = 20_000 + sys::getpid() % 20_000;
    let Ok(udp) = raw(n(Sys::UdpBind), port, 0, 0) else {
        c.expect("udp bind with a network", Err(Error::Unknown), Ok(0));
        return;
    };
    let to = SockAddr::new([10, 0, 2, 2], 9).raw();
    let (send, recv) = (n(Sys::UdpSendTo), n(Sys::UdpRecvFrom));
    c.expect("send_to null", raw4(send, udp, 0, 8, to), Err(Error::Null));
    c.expect(
        "send_to kernel half",
        raw4(send, udp, 0xFFFF_8000_0000_0000, 8, to),
        Err(Error::BadAddress),
    );
    c.expect(
        "send_to too long",
        raw4(send, udp, buffer, 4096, to),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "send_to bad address",
        raw4(send, udp, buffer, 8, 1 << 60),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "recv_from into read-only",
        raw4(recv, udp, read_only, 8, buffer),
        Err(Error::ReadOnly),
    );
    c.expect(
        "recv_from address null",
        raw4(recv, udp, buffer, 8, 0),
        Err(Error::Null),
    );
    c.expect(
        "recv_from address misaligned",
        raw4(recv, udp, buffer, 8, buffer + 3),
        Err(Error::Misaligned),
    );
    c.expect(
        "recv_from address read-only",
        raw4(recv, udp, buffer, 8, read_only),
        Err(Error::ReadOnly),
    );
    c.expect(
        "recv_from nothing there",
        raw4(recv, udp, buffer, 8, buffer + 64),
        Err(Error::WouldBlock),
    );
    c.expect(
        "peer_addr of udp",
        raw(n(Sys::SockPeerAddr), udp, 0, 0),
        Err(Error::WrongType),
    );
    c.expect(
        "udp local port",
        raw(n(Sys::SockLocalAddr), udp, 0, 0).map(|a| a & 0xFFFF),
        Ok(port),
    );
    c.expect("close udp", raw(n(Sys::Close), udp, 0, 0), Ok(0));
}

/// The disk-log calls: flags and handles need no disk (and open nothing:
/// a machine's disk is not formatted by this program unless asked); with
/// argument `dlog` the machine's log is opened and the pointer, length
/// and stale-handle cases run on it.
fn disk_log(c: &mut Cases, timer: Handle, buffer: u64, read_only: u64, with_disk: bool) {
    let raw = sys::raw;
    let raw4 = sys::raw4;
    let n = |sys: Sys| sys as u64;
    for flags in [1, 1 << 40, u64::MAX] {
        c.expect(
            "dlog_open, unknown flags",
            raw(n(Sys::DlogOpen), flags, 0, 0),
            Err(Error::InvalidArgument),
        );
    }
    for sys in [
        Sys::DlogAppend,
        Sys::DlogFlush,
        Sys::DlogRead,
        Sys::DlogInfo,
    ] {
        c.expect(
            "dlog call on a timer",
            raw4(n(sys), timer.raw(), buffer, 8, buffer),
            Err(Error::WrongType),
        );
        c.expect(
            "dlog call on null",
            raw4(n(sys), 0, buffer, 8, buffer),
            Err(Error::BadHandle),
        );
        c.expect(
            "dlog call on garbage",
            raw4(n(sys), 0xdead_beef_0000_0042, buffer, 8, buffer),
            Err(Error::BadHandle),
        );
    }
    if !with_disk {
        return;
    }
    let (log, _) = match DiskLog::open() {
        Ok(open) => open,
        Err(error) => {
            c.expect("dlog_open with a disk", Err(error), Ok(0));
            return;
        }
    };
    let h = log.handle().raw();
    let (append, read) = (n(Sys::DlogAppend), n(Sys::DlogRead));
    // Append: the record is read from user memory.
    c.expect("append null", raw(append, h, 0, 8), Err(Error::Null));
    c.expect(
        "append kernel half",
        raw(append, h, 0xFFFF_8000_0000_0000, 8),
        Err(Error::BadAddress),
    );
    c.expect(
        "append across the top",
        raw(append, h, USER_TOP - 4, 8),
        Err(Error::BadAddress),
    );
    c.expect(
        "append unmapped",
        raw(append, h, 0x1000_0000, 8),
        Err(Error::NotMapped),
    );
    c.expect(
        "append len usize::MAX",
        raw(append, h, buffer, u64::MAX),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "append over the limit",
        raw(append, h, buffer, Sys::MAX_RECORD + 1),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "append len 0 (an empty record)",
        raw(append, h, 0, 0).map(|_| 0),
        Ok(0),
    );
    let seq = raw(append, h, read_only, 16).unwrap_or(u64::MAX);
    c.expect(
        "append from read-only data",
        Ok(u64::from(seq != u64::MAX)),
        Ok(1),
    );
    c.expect(
        "flush makes it durable",
        log.flush().map(|durable| u64::from(durable > seq)),
        Ok(1),
    );
    // Read: the header and payload are written to user memory.
    let at = |ptr: u64, len: u64| raw4(read, h, seq, ptr, len);
    c.expect("read null", at(0, 32), Err(Error::Null));
    c.expect(
        "read kernel half",
        at(0xFFFF_8000_0000_0000, 32),
        Err(Error::BadAddress),
    );
    c.expect(
        "read across the top",
        at(USER_TOP - 16, 32),
        Err(Error::BadAddress),
    );
    c.expect(
        "read into read-only",
        at(read_only, 32),
        Err(Error::ReadOnly),
    );
    c.expect(
        "read misaligned",
        at(buffer + 4, 32),
        Err(Error::Misaligned),
    );
    c.expect("read len 0", at(buffer, 0), Err(Error::InvalidArgument));
    c.expect(
        "read len below the header",
        at(buffer, 8),
        Err(Error::InvalidArgument),
    );
    c.expect(
        "read len usize::MAX",
        at(buffer, u64::MAX),
        Err(Error::Overflow),
    );
    c.expect(
        "read past the durable end",
        raw4(read, h, u64::MAX, buffer, 64),
        Err(Error::NotFound),
    );
    let mut words = [0u64; 8];
    c.expect(
        "read good",
        log.read(seq, &mut words)
            .map(|(header, payload)| u64::from(header.seq == seq && payload.len() == 16))
            .map_err(|f| f.error),
        Ok(1),
    );
    // Info.
    let info = n(Sys::DlogInfo);
    c.expect("info null", raw(info, h, 0, 0), Err(Error::Null));
    c.expect(
        "info to read-only",
        raw(info, h, read_only, 0),
        Err(Error::ReadOnly),
    );
    c.expect(
        "info misaligned",
        raw(info, h, buffer + 4, 0),
        Err(Error::Misaligned),
    );
    c.expect("info good", raw(info, h, buffer, 0), Ok(0));
    // Wrong type the other way: a log handle to other calls.
    for sys in [Sys::SockRead, Sys::Wait, Sys::Recv, Sys::TcpAccept] {
        c.expect(
            "other call on a log",
            raw(n(sys), h, buffer, 8),
            Err(Error::WrongType),
        );
    }
    // Closed, then stale once the slot is reused.
    let first = raw(n(Sys::DlogOpen), 0, 0, 0).unwrap_or(0);
    c.expect("close a log", raw(n(Sys::Close), first, 0, 0), Ok(0));
    c.expect(
        "flush on closed",
        raw(n(Sys::DlogFlush), first, 0, 0),
        Err(Error::BadHandle),
    );
    let second = raw(n(Sys::DlogOpen), 0, 0, 0).unwrap_or(0);
    c.expect(
        "the log's slot is reused",
        Ok(second & 0xFFFF_FFFF),
        Ok(first & 0xFFFF_FFFF),
    );
    c.expect(
        "append on stale",
        raw(append, first, buffer, 8),
        Err(Error::StaleHandle),
    );
    c.expect(
        "read on stale",
        raw4(read, first, 0, buffer, 64),
        Err(Error::StaleHandle),
    );
    c.expect("close the second", raw(n(Sys::Close), second, 0, 0), Ok(0));
}
