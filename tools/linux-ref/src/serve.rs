//! `serve`: the Linux guest's side of the network benchmark, the same
//! services percore's `serve echo` and `serve http` offer (see the network
//! contract in issue 14): echo on TCP and UDP port 7, HTTP/1.1 on TCP port
//! 80 answering through `percore-http` (the same parser, keep-alive rules
//! and response bytes as percore's server).
//!
//! Shard per CPU, as percore does it: one thread pinned on each vCPU, each
//! with its own epoll instance and its own listening sockets bound with
//! `SO_REUSEPORT`, so the kernel spreads connections over the threads and
//! no two threads share a socket. Level-triggered epoll, non-blocking
//! sockets, `TCP_NODELAY` on every accepted connection. Echo keeps what
//! it could not send yet and stops reading that connection until it is
//! sent (backpressure: at most one read's bytes held); on the peer's FIN it sends
//! back what is left and then closes (a half-closed client reads every
//! byte back). HTTP answers each whole request, closes after a response
//! without keep-alive, and answers a malformed request with `400` and
//! closes.
//!
//! Once every thread has its listeners it prints the contract's ready
//! lines, `serve: echo ready on tcp/7 udp/7 cores=N` and `serve: http
//! ready on tcp/80 cores=N`, and serves until the machine is switched off.
//! `GET /stats` is this server's own JSON: per CPU the connections
//! accepted and open, requests, echoed bytes, UDP datagrams and resets,
//! and `heap_used_bytes`, the kernel's slab memory (`Slab` of
//! `/proc/meminfo`, where Linux keeps its socket and TCP state; the
//! benchmark's idle-connection figure is its growth).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use crate::sys;

const ECHO_PORT: u16 = 7;
const HTTP_PORT: u16 = 80;
/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 64 * 1024;
const EVENTS: usize = 256;

/// One CPU's counters, shown by `/stats`.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    closed: AtomicU64,
    requests: AtomicU64,
    echo_bytes: AtomicU64,
    udp_datagrams: AtomicU64,
    resets: AtomicU64,
}

/// What a connection serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    Http,
}

struct Conn {
    kind: Kind,
    /// Bytes read and not yet answered (HTTP requests in part).
    input: Vec<u8>,
    /// Bytes to send, from `sent` on.
    output: Vec<u8>,
    sent: usize,
    /// The peer sent FIN (echo) or the response ends the connection (HTTP):
    /// close once `output` is sent.
    closing: bool,
    /// Whether epoll watches for writability (output is pending).
    want_write: bool,
}

/// The listening sockets of one thread.
struct Listeners {
    echo_tcp: RawFd,
    echo_udp: RawFd,
    http: RawFd,
}

/// `linux-ref serve`: runs until the machine stops.
pub fn serve() -> Result<(), String> {
    let cpus = sys::cpus();
    let all: Arc<Vec<Counters>> = Arc::new((0..cpus).map(|_| Counters::default()).collect());
    let ready = Arc::new(Barrier::new(cpus + 1));
    let mut threads = Vec::new();
    for cpu in 0..cpus {
        let (all, ready) = (all.clone(), ready.clone());
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            sys::pin(cpu)?;
            let listeners = open_listeners();
            ready.wait();
            Shard::new(cpu, all, listeners?)?.run()
        }));
    }
    ready.wait();
    println!("serve: echo ready on tcp/{ECHO_PORT} udp/{ECHO_PORT} cores={cpus}");
    println!("serve: http ready on tcp/{HTTP_PORT} cores={cpus}");
    for thread in threads {
        thread
            .join()
            .map_err(|_| String::from("a server thread panicked"))??;
    }
    Ok(())
}

fn errno(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// A non-blocking socket of `kind` bound to 0.0.0.0:`port` with
/// `SO_REUSEPORT` (listening, for TCP).
fn bound(kind: libc::c_int, port: u16) -> Result<RawFd, String> {
    // SAFETY: plain system call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, kind | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(errno("socket"));
    }
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    // SAFETY: an all-zero sockaddr_in is valid; the fields are set below.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = port.to_be();
    addr.sin_addr.s_addr = libc::INADDR_ANY;
    // SAFETY: `addr` is a valid sockaddr_in of the size passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of_val(&addr) as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(errno(&format!("bind port {port}")));
    }
    // SAFETY: plain system call on our socket.
    if kind == libc::SOCK_STREAM && unsafe { libc::listen(fd, 4096) } != 0 {
        return Err(errno("listen"));
    }
    Ok(fd)
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: i32) -> Result<(), String> {
    // SAFETY: `value` is a valid c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno("setsockopt"))
    }
}

fn open_listeners() -> Result<Listeners, String> {
    Ok(Listeners {
        echo_tcp: bound(libc::SOCK_STREAM, ECHO_PORT)?,
        echo_udp: bound(libc::SOCK_DGRAM, ECHO_PORT)?,
        http: bound(libc::SOCK_STREAM, HTTP_PORT)?,
    })
}

/// `read` into `buf`: bytes read, 0 at end of stream.
fn read(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `send` without SIGPIPE: bytes sent.
fn send(fd: RawFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn close(fd: RawFd) {
    // SAFETY: `fd` is ours and not used after this.
    unsafe { libc::close(fd) };
}

/// One CPU's server: its epoll, listeners and connections.
struct Shard {
    cpu: usize,
    all: Arc<Vec<Counters>>,
    epoll: RawFd,
    listeners: Listeners,
    conns: HashMap<RawFd, Conn>,
    buf: Vec<u8>,
}

impl Shard {
    fn new(cpu: usize, all: Arc<Vec<Counters>>, listeners: Listeners) -> Result<Shard, String> {
        // SAFETY: plain system call; the result is checked.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(errno("epoll_create1"));
        }
        let shard = Shard {
            cpu,
            all,
            epoll,
            listeners,
            conns: HashMap::new(),
            buf: vec![0; READ_CHUNK],
        };
        for fd in [
            shard.listeners.echo_tcp,
            shard.listeners.echo_udp,
            shard.listeners.http,
        ] {
            shard.watch(libc::EPOLL_CTL_ADD, fd, false)?;
        }
        Ok(shard)
    }

    fn counters(&self) -> &Counters {
        &self.all[self.cpu]
    }

    /// Watches `fd` for reading, or for writing only (`write`).
    fn watch(&self, op: libc::c_int, fd: RawFd, write: bool) -> Result<(), String> {
        let events = if write { libc::EPOLLOUT } else { libc::EPOLLIN };
        let mut event = libc::epoll_event {
            events: events as u32,
            u64: fd as u64,
        };
        // SAFETY: `event` is a valid epoll_event; `fd` is an open socket.
        if unsafe { libc::epoll_ctl(self.epoll, op, fd, &mut event) } != 0 {
            return Err(errno("epoll_ctl"));
        }
        Ok(())
    }

    fn run(mut self) -> Result<(), String> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            // SAFETY: `events` has room for EVENTS entries.
            let n = unsafe {
                libc::epoll_wait(self.epoll, events.as_mut_ptr(), EVENTS as libc::c_int, -1)
            };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(errno("epoll_wait"));
            }
            for event in &events[..n as usize] {
                let fd = event.u64 as RawFd;
                if fd == self.listeners.echo_tcp {
                    self.accept(fd, Kind::Echo)?;
                } else if fd == self.listeners.http {
                    self.accept(fd, Kind::Http)?;
                } else if fd == self.listeners.echo_udp {
                    self.udp_echo();
                } else {
                    self.serve_conn(fd)?;
                }
            }
        }
    }

    fn accept(&mut self, listener: RawFd, kind: Kind) -> Result<(), String> {
        loop {
            // SAFETY: null address pointers are allowed; the result is checked.
            let fd = unsafe {
                libc::accept4(
                    listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                // EAGAIN: no more waiting; anything else (a connection reset
                // before it was accepted, no file descriptors) leaves the
                // listener to the next event.
                return Ok(());
            }
            set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
            self.watch(libc::EPOLL_CTL_ADD, fd, false)?;
            self.counters().accepted.fetch_add(1, Ordering::Relaxed);
            self.conns.insert(
                fd,
                Conn {
                    kind,
                    input: Vec::new(),
                    output: Vec::new(),
                    sent: 0,
                    closing: false,
                    want_write: false,
                },
            );
        }
    }

    /// Echoes every waiting datagram to its sender.
    fn udp_echo(&mut self) {
        let fd = self.listeners.echo_udp;
        loop {
            // SAFETY: all-zero sockaddr_in is valid; recvfrom fills it.
            let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of_val(&from) as libc::socklen_t;
            // SAFETY: `buf` and `from` are valid for writes of the sizes passed.
            let n = unsafe {
                libc::recvfrom(
                    fd,
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                    (&raw mut from).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                return;
            }
            // SAFETY: the first `n` bytes of `buf` were written; `from` holds
            // the sender's address of length `len`. A datagram the socket
            // cannot send now is dropped, as UDP allows.
            unsafe {
                libc::sendto(
                    fd,
                    self.buf.as_ptr().cast(),
                    n as usize,
                    libc::MSG_NOSIGNAL,
                    (&raw const from).cast(),
                    len,
                )
            };
            self.counters()
                .udp_datagrams
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn serve_conn(&mut self, fd: RawFd) -> Result<(), String> {
        let Some(mut conn) = self.conns.remove(&fd) else {
            return Ok(());
        };
        let open = match self.step(fd, &mut conn) {
            Ok(open) => open,
            Err(_) => {
                self.counters().resets.fetch_add(1, Ordering::Relaxed);
                false
            }
        };
        if !open {
            self.counters().closed.fetch_add(1, Ordering::Relaxed);
            close(fd);
            return Ok(());
        }
        // Watch for writability only while output is pending: a reader
        // that does not read stops this connection's reading.
        let pending = conn.sent < conn.output.len();
        if pending != conn.want_write {
            conn.want_write = pending;
            self.watch(libc::EPOLL_CTL_MOD, fd, pending)?;
        }
        self.conns.insert(fd, conn);
        Ok(())
    }

    /// Sends what is pending, then reads and answers what is there: false
    /// when the connection is to be closed.
    fn step(&mut self, fd: RawFd, conn: &mut Conn) -> std::io::Result<bool> {
        if !flush(fd, conn)? {
            return Ok(true);
        }
        if conn.closing {
            return Ok(false);
        }
        let n = match read(fd, &mut self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        };
        if n == 0 {
            // The peer's FIN: what is pending is already sent (flush above).
            return Ok(false);
        }
        match conn.kind {
            Kind::Echo => {
                self.counters()
                    .echo_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                conn.output.extend_from_slice(&self.buf[..n]);
            }
            Kind::Http => {
                conn.input.extend_from_slice(&self.buf[..n]);
                self.answer(conn);
            }
        }
        flush(fd, conn)?;
        Ok(!(conn.closing && conn.sent == conn.output.len()))
    }

    /// Answers every whole request in `conn.input`.
    fn answer(&self, conn: &mut Conn) {
        let mut used = 0;
        while !conn.closing {
            let keep_alive = match percore_http::parse(&conn.input[used..]) {
                Ok(None) => break,
                Ok(Some(request)) => {
                    let route = percore_http::route(request.method, request.path);
                    let (status, kind, body) = percore_http::fixed(route);
                    let stats;
                    let body = if route == percore_http::Route::Stats {
                        stats = self.stats();
                        &stats[..]
                    } else {
                        body
                    };
                    let out = &mut conn.output;
                    percore_http::respond(status, kind, body, request.keep_alive, out);
                    used += request.len;
                    request.keep_alive
                }
                Err(_) => {
                    percore_http::respond(
                        percore_http::Status::BadRequest,
                        "text/plain",
                        percore_http::BAD_REQUEST_BODY,
                        false,
                        &mut conn.output,
                    );
                    used = conn.input.len();
                    false
                }
            };
            self.counters().requests.fetch_add(1, Ordering::Relaxed);
            conn.closing = !keep_alive;
        }
        conn.input.drain(..used);
    }

    fn stats(&self) -> Vec<u8> {
        let cores: Vec<String> = self
            .all
            .iter()
            .enumerate()
            .map(|(cpu, c)| {
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let (accepted, closed) = (get(&c.accepted), get(&c.closed));
                format!(
                    "{{\"core\":{cpu},\"accepted\":{accepted},\"open\":{},\"requests\":{},\"echo_bytes\":{},\"udp_datagrams\":{},\"resets\":{}}}",
                    accepted.saturating_sub(closed),
                    get(&c.requests),
                    get(&c.echo_bytes),
                    get(&c.udp_datagrams),
                    get(&c.resets)
                )
            })
            .collect();
        format!(
            "{{\"server\":\"linux-ref\",\"heap_used_bytes\":{},\"cores\":[{}]}}\n",
            slab_bytes(),
            cores.join(",")
        )
        .into_bytes()
    }
}

/// Sends what `conn` has pending: true once all of it is sent.
fn flush(fd: RawFd, conn: &mut Conn) -> std::io::Result<bool> {
    while conn.sent < conn.output.len() {
        match send(fd, &conn.output[conn.sent..]) {
            Ok(n) => conn.sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if conn.sent == conn.output.len() {
        conn.output.clear();
        conn.sent = 0;
        return Ok(true);
    }
    Ok(false)
}

/// The kernel's slab memory in bytes (`Slab:` of `/proc/meminfo`).
fn slab_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}
