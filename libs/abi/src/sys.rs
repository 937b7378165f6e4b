//! Syscall numbers and the register convention.

/// A syscall number. Arguments travel in `rdi, rsi, rdx, r10, r8, r9`, the
/// number in `rax`, and the result comes back in `rax`, encoded by
/// [`encode`](crate::encode). `rcx` and `r11` are clobbered (`SYSCALL`
/// keeps the return address and flags there); every other register is
/// preserved. Numbers are stable: a number is never reused for another
/// operation; an unknown one returns [`Error::NoSys`](crate::Error::NoSys).
///
/// ```
/// use percore_abi::Sys;
/// assert_eq!(Sys::from_number(Sys::Write as u64), Some(Sys::Write));
/// assert_eq!(Sys::from_number(0xdead), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Sys {
    /// `exit(code)`: ends the process; never returns.
    Exit = 0,
    /// `write(ptr, len) -> len`: writes bytes to the console. `len = 0`
    /// writes nothing and touches no memory.
    Write = 1,
    /// `yield()`: lets the core's other tasks run.
    Yield = 2,
    /// `getpid() -> pid`.
    GetPid = 3,
    /// `clock() -> ns`: nanoseconds since boot.
    Clock = 4,
    /// `sleep(ns)`: blocks (the core runs other tasks meanwhile).
    Sleep = 5,
    /// `close(handle)`.
    Close = 6,
    /// `channel() -> handle`: a message queue; what is sent on the handle
    /// is received on it (to be passed to other processes later).
    Channel = 7,
    /// `send(handle, ptr, len)`: queues one message (at most
    /// [`MAX_MESSAGE`](Sys::MAX_MESSAGE) bytes); [`Full`](crate::Error::Full)
    /// when the queue is full.
    Send = 8,
    /// `recv(handle, ptr, len) -> len`: takes the oldest message, blocking
    /// until there is one; [`TooSmall`](crate::Error::TooSmall) leaves it queued.
    Recv = 9,
    /// `timer(period_ns) -> handle`: a periodic timer.
    Timer = 10,
    /// `wait(handle) -> expirations`: blocks until the timer expires.
    Wait = 11,
    /// `writev(iov, count) -> len`: gathers `count` [`IoVec`](crate::IoVec)s.
    WriteVectored = 12,
    /// `info(ptr)`: writes a [`ProcessInfo`](crate::ProcessInfo) there.
    ProcessInfo = 13,
    /// `args(ptr, len) -> len`: copies the start arguments (a UTF-8 string).
    Args = 14,
    /// `ring_setup(entries) -> handle`: maps the process's submission and
    /// completion rings (`entries` each, a power of two up to
    /// [`ring::MAX_ENTRIES`](crate::ring::MAX_ENTRIES)) at
    /// [`ring::RING_BASE`](crate::ring::RING_BASE), laid out as
    /// [`ring::Layout`](crate::ring::Layout) says; one pair per process
    /// ([`InvalidArgument`](crate::Error::InvalidArgument) for a second).
    /// `close` unmaps them.
    RingSetup = 32,
    /// `ring_enter(handle, min_complete, to_submit) -> available`: has the
    /// kernel take up to `to_submit` of the ring's submissions now (the
    /// call to make when the reactor marked itself
    /// [`ASLEEP`](crate::ring::RingHeader::ASLEEP); 0 takes none, more than
    /// the ring holds takes all), then waits until at least `min_complete`
    /// completions are there to read (or no operation is in flight any
    /// more); returns how many are.
    RingEnter = 33,
    /// `tcp_listen(port, flags) -> handle`: a TCP listener on `port` on the
    /// caller's core (a server listens on every core: one process per
    /// core). `flags` must be 0.
    TcpListen = 40,
    /// `tcp_accept(listener) -> handle`: a connection that arrived, or
    /// [`WouldBlock`](crate::Error::WouldBlock).
    TcpAccept = 41,
    /// `tcp_connect(addr) -> handle`: starts connecting to `addr` (a
    /// [`SockAddr`](crate::SockAddr) as one word); the stream becomes
    /// writable once connected (mio's non-blocking connect).
    TcpConnect = 42,
    /// `sock_read(stream, ptr, len) -> len`: what arrived (0 at the end of
    /// the stream), or [`WouldBlock`](crate::Error::WouldBlock).
    SockRead = 43,
    /// `sock_write(stream, ptr, len) -> len`: queues what fits (at most
    /// [`MAX_IO`](Sys::MAX_IO)), or [`WouldBlock`](crate::Error::WouldBlock).
    SockWrite = 44,
    /// `tcp_shutdown(stream, how)`: `how` 1 read, 2 write, 3 both.
    TcpShutdown = 45,
    /// `udp_bind(port, flags) -> handle`; `flags` must be 0.
    UdpBind = 46,
    /// `udp_send_to(socket, ptr, len, addr) -> len`: one datagram.
    UdpSendTo = 47,
    /// `udp_recv_from(socket, ptr, len, addr_ptr) -> len`: one datagram
    /// (cut to `len`); its sender as a [`SockAddr`](crate::SockAddr) word at
    /// `addr_ptr` (8 bytes, aligned).
    UdpRecvFrom = 48,
    /// `tcp_set_nodelay(stream, on)`: `on` 0 or 1.
    TcpSetNodelay = 49,
    /// `sock_local_addr(handle) -> addr` (a [`SockAddr`](crate::SockAddr) word).
    SockLocalAddr = 50,
    /// `sock_peer_addr(stream) -> addr`.
    SockPeerAddr = 51,
    /// `poll_register(handle, token, interest)`: reports readiness of the
    /// socket `handle` as `token` in [`PollWait`](Sys::PollWait)'s events
    /// (edge-triggered, like mio); registering again changes token and
    /// interest. `interest` is [`INTEREST_READABLE`](crate::INTEREST_READABLE)
    /// and/or [`INTEREST_WRITABLE`](crate::INTEREST_WRITABLE).
    PollRegister = 52,
    /// `poll_deregister(handle)`.
    PollDeregister = 53,
    /// `poll_wait(events_ptr, capacity, timeout_ns) -> count`: waits until a
    /// registered socket has an event or `timeout_ns` passed (0: do not
    /// wait; `u64::MAX`: no timeout) and writes up to `capacity`
    /// [`PollEvent`](crate::PollEvent)s (at most [`MAX_EVENTS`](Sys::MAX_EVENTS)).
    PollWait = 54,
    /// `dlog_open(flags) -> handle`: the machine's disk log (the one log
    /// on the whole virtio-blk disk, the shell's `log`; every process that
    /// opens it appends to and reads the same records). `flags` must be 0;
    /// [`NoDevice`](crate::Error::NoDevice) without a disk. The handle
    /// comes back at once; while the log is being opened (recovered, or
    /// formatted when the disk is blank) the calls on it return
    /// [`WouldBlock`](crate::Error::WouldBlock), and the handle reports an
    /// event once it is open (register it with
    /// [`PollRegister`](Sys::PollRegister), as a socket).
    /// A log that does not open is [`Corrupt`](crate::Error::Corrupt) or
    /// [`Io`](crate::Error::Io) from then on (to the calls on the handles
    /// waiting for it, and to every later `dlog_open`).
    DlogOpen = 60,
    /// `dlog_append(log, ptr, len) -> seq`: appends one record of `len`
    /// bytes (at most [`MAX_RECORD`](Sys::MAX_RECORD), 0 allowed) and
    /// returns its sequence number; durable after a [`DlogFlush`](Sys::DlogFlush).
    /// [`WouldBlock`](crate::Error::WouldBlock) when the log's window of
    /// unwritten records is full: a write making room has started, the
    /// handle has an event when it ends (the record was not taken); if
    /// that write failed, [`Io`](crate::Error::Io) once.
    /// [`NoSpace`](crate::Error::NoSpace) when the log is full.
    DlogAppend = 61,
    /// `dlog_flush(log) -> durable`: once every record appended through
    /// this handle is on the disk (written and the device flushed),
    /// returns the sequence number below which every record is durable.
    /// Until then [`WouldBlock`](crate::Error::WouldBlock): the write is
    /// under way, the handle has an event when it ends. A failed write is
    /// [`Io`](crate::Error::Io) once (nothing acknowledged; the next flush
    /// writes again).
    DlogFlush = 62,
    /// `dlog_read(log, from, ptr, len) -> payload_len`: the first durable
    /// record with a sequence number at or after `from`, as a
    /// [`DlogRecord`](crate::DlogRecord) header (16 bytes at `ptr`, 8-byte
    /// aligned) followed by its payload (`len` counts both; at least 16).
    /// [`WouldBlock`](crate::Error::WouldBlock) while it is read from the
    /// disk (the handle has an event when it is there);
    /// [`NotFound`](crate::Error::NotFound) when `from` is at or past the
    /// durable end; [`TooSmall`](crate::Error::TooSmall) with the header
    /// written (its `len` is the payload's length) when the payload does
    /// not fit — the record is kept for the next read;
    /// [`Corrupt`](crate::Error::Corrupt) with the header's `seq` the last
    /// record lost (go on from `seq + 1`).
    DlogRead = 63,
    /// `dlog_info(log, ptr)`: writes a [`DlogInfo`](crate::DlogInfo) there
    /// (8-byte aligned); [`WouldBlock`](crate::Error::WouldBlock) while the
    /// log is being opened.
    DlogInfo = 64,
}

impl Sys {
    /// The largest message [`Sys::Send`] takes.
    pub const MAX_MESSAGE: usize = 256;
    /// The most [`IoVec`](crate::IoVec)s one [`Sys::WriteVectored`] takes.
    pub const MAX_IOVECS: u64 = 64;
    /// The largest single [`Sys::Write`].
    pub const MAX_WRITE: u64 = 4096;
    /// The largest single socket read or write (longer ones are cut).
    pub const MAX_IO: u64 = 64 * 1024;
    /// The most events one [`Sys::PollWait`] returns.
    pub const MAX_EVENTS: u64 = 256;
    /// The largest record [`Sys::DlogAppend`] takes (the disk log's
    /// default `max_payload`).
    pub const MAX_RECORD: u64 = 64 * 1024;

    /// Every syscall, in number order.
    pub const ALL: [Sys; 37] = [
        Sys::Exit,
        Sys::Write,
        Sys::Yield,
        Sys::GetPid,
        Sys::Clock,
        Sys::Sleep,
        Sys::Close,
        Sys::Channel,
        Sys::Send,
        Sys::Recv,
        Sys::Timer,
        Sys::Wait,
        Sys::WriteVectored,
        Sys::ProcessInfo,
        Sys::Args,
        Sys::RingSetup,
        Sys::RingEnter,
        Sys::TcpListen,
        Sys::TcpAccept,
        Sys::TcpConnect,
        Sys::SockRead,
        Sys::SockWrite,
        Sys::TcpShutdown,
        Sys::UdpBind,
        Sys::UdpSendTo,
        Sys::UdpRecvFrom,
        Sys::TcpSetNodelay,
        Sys::SockLocalAddr,
        Sys::SockPeerAddr,
        Sys::PollRegister,
        Sys::PollDeregister,
        Sys::PollWait,
        Sys::DlogOpen,
        Sys::DlogAppend,
        Sys::DlogFlush,
        Sys::DlogRead,
        Sys::DlogInfo,
    ];

    /// The syscall numbered `number`, if there is one.
    pub fn from_number(number: u64) -> Option<Sys> {
        Sys::ALL.into_iter().find(|sys| *sys as u64 == number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips_and_is_distinct() {
        for (i, sys) in Sys::ALL.iter().enumerate() {
            assert_eq!(Sys::from_number(*sys as u64), Some(*sys));
            for other in &Sys::ALL[i + 1..] {
                assert_ne!(*sys as u64, *other as u64);
            }
        }
        assert!(Sys::ALL.windows(2).all(|w| (w[0] as u64) < (w[1] as u64)));
    }

    #[test]
    fn unknown_numbers_are_none() {
        for number in [15, 31, 34, 39, 55, 59, 65, 1000, u64::MAX, 1 << 63] {
            assert_eq!(Sys::from_number(number), None);
        }
    }
}
