//! HTTP/1.1 on the socket calls, through `percore-http` — the crate the
//! kernel's `serve http` sample answers with, so the bytes are the same:
//! keep-alive, `GET /` (`percore_http::INDEX_BODY`), `/stats` (`{}`: a
//! user program has no kernel counters), 404, 405, and `400` then close
//! for a malformed request. Port from the argument (default 80), on the
//! core it runs on (one process per core to serve every core); a
//! mio-style event loop over the runtime's `Poll`. A request (head and
//! body) longer than [`INPUT`] bytes closes its connection. Runs until
//! killed; prints one line once listening.
#![no_std]
#![no_main]

use percore_http::{BAD_REQUEST_BODY, Sink, Status, fixed, parse, respond, route};
use percore_runtime::abi::Error;
use percore_runtime::net::{Shutdown, TcpListener, TcpStream};
use percore_runtime::poll::{Events, Interest, Poll, Token};
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

const LISTENER: Token = Token(0);
/// Connections served at once.
const CONNECTIONS: usize = 16;
/// Bytes of requests buffered per connection.
const INPUT: usize = 8192;
/// Bytes of responses buffered per connection.
const OUTPUT: usize = 1024;

struct Connection {
    stream: TcpStream,
    input: [u8; INPUT],
    len: usize,
    output: Output,
    /// Close once the output is written (`Connection: close`, a `400`).
    closing: bool,
}

/// A response being written: `bytes[start..end]`.
struct Output {
    bytes: [u8; OUTPUT],
    start: usize,
    end: usize,
}

impl Sink for Output {
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(OUTPUT - self.end);
        self.bytes[self.end..self.end + n].copy_from_slice(&bytes[..n]);
        self.end += n;
    }
}

/// The connections live in `.bss` (the stack is 64 KiB).
static mut CONNECTION_SLOTS: [Option<Connection>; CONNECTIONS] = [const { None }; CONNECTIONS];

fn main() -> i64 {
    let mut args = [0u8; 32];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let port = core::str::from_utf8(&args[..len])
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
        .unwrap_or(80);
    // SAFETY: one thread, and this is the only reference ever made.
    let connections = unsafe { (&raw mut CONNECTION_SLOTS).as_mut() }.expect("a static");
    match serve(port, connections) {
        Ok(()) => 0,
        Err(error) => {
            println!("http: {error}");
            1
        }
    }
}

fn serve(port: u16, connections: &mut [Option<Connection>]) -> Result<(), Error> {
    let mut poll = Poll::new(Ring::setup(16)?);
    let mut listener = TcpListener::bind(port)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let core = sys::info().map_or(0, |i| i.core);
    println!("http: pid {} port {port} on core {core}", sys::getpid());
    let mut events = Events::with_capacity(32);
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            match event.token() {
                LISTENER => accept(&poll, &listener, connections),
                Token(t) => {
                    let slot = &mut connections[t - 1];
                    if let Some(c) = slot
                        && !serve_connection(c)
                    {
                        let _ = c.stream.shutdown(Shutdown::Write);
                        *slot = None;
                    }
                }
            }
        }
    }
}

fn accept(poll: &Poll, listener: &TcpListener, connections: &mut [Option<Connection>]) {
    loop {
        let (stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(Error::WouldBlock) => return,
            Err(error) => {
                println!("http: accept: {error}");
                return;
            }
        };
        let Some(index) = connections.iter().position(Option::is_none) else {
            continue;
        };
        let slot = &mut connections[index];
        *slot = Some(Connection {
            stream,
            input: [0; INPUT],
            len: 0,
            output: Output {
                bytes: [0; OUTPUT],
                start: 0,
                end: 0,
            },
            closing: false,
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registered = match slot {
            Some(c) => poll
                .registry()
                .register(&mut c.stream, Token(index + 1), interest)
                .is_ok(),
            None => false,
        };
        if !registered {
            *slot = None;
        }
    }
}

/// Answers what arrived until the socket would block; false once the
/// connection is over.
fn serve_connection(c: &mut Connection) -> bool {
    loop {
        let out = &mut c.output;
        while out.start < out.end {
            match c.stream.write(&out.bytes[out.start..out.end]) {
                Ok(n) => out.start += n,
                Err(Error::WouldBlock) => return true,
                Err(_) => return false,
            }
        }
        (out.start, out.end) = (0, 0);
        if c.closing {
            return false;
        }
        match parse(&c.input[..c.len]) {
            Ok(Some(request)) => {
                let keep_alive = request.keep_alive;
                let (status, kind, body) = fixed(route(request.method, request.path));
                respond(status, kind, body, keep_alive, out);
                let used = request.len;
                c.input.copy_within(used..c.len, 0);
                c.len -= used;
                c.closing = !keep_alive;
                continue;
            }
            Ok(None) => {}
            Err(_) => {
                respond(
                    Status::BadRequest,
                    "text/plain",
                    BAD_REQUEST_BODY,
                    false,
                    out,
                );
                c.closing = true;
                continue;
            }
        }
        if c.len == INPUT {
            return false;
        }
        match c.stream.read(&mut c.input[c.len..]) {
            Ok(0) => return false,
            Ok(n) => c.len += n,
            Err(Error::WouldBlock) => return true,
            Err(_) => return false,
        }
    }
}
