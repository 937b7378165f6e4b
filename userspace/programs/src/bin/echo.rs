//! An echo server on the socket calls: TCP and UDP on one port (argument
//! `PORT`, default 7) on the core it runs on, a mio-style event loop over
//! the runtime's `Poll` (sockets registered with its `Registry`). Run one
//! per core (`run echo 1 7`, …) to serve every core: each connection is
//! steered to the core its flow hashes to. Runs until killed; prints one
//! line once listening.
#![no_std]
#![no_main]

use percore_runtime::abi::Error;
use percore_runtime::net::{TcpListener, TcpStream, UdpSocket};
use percore_runtime::poll::{Events, Interest, Poll, Token};
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

const LISTENER: Token = Token(0);
const UDP: Token = Token(1);
/// Connections served at once (their buffers are on the 64 KiB stack).
const CONNECTIONS: usize = 8;
const BUFFER: usize = 2048;

struct Connection {
    stream: TcpStream,
    /// Read and not yet written back: `buffer[start..end]`.
    buffer: [u8; BUFFER],
    start: usize,
    end: usize,
}

fn main() -> i64 {
    let mut args = [0u8; 32];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let port = core::str::from_utf8(&args[..len])
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
        .unwrap_or(7);
    match serve(port) {
        Ok(()) => 0,
        Err(error) => {
            println!("echo: {error}");
            1
        }
    }
}

fn serve(port: u16) -> Result<(), Error> {
    let mut poll = Poll::new(Ring::setup(16)?);
    let mut listener = TcpListener::bind(port).inspect_err(|e| println!("echo: tcp: {e}"))?;
    let mut udp = UdpSocket::bind(port).inspect_err(|e| println!("echo: udp: {e}"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(&mut udp, UDP, Interest::READABLE)?;
    let core = sys::info().map_or(0, |i| i.core);
    println!(
        "echo: pid {} tcp and udp port {port} on core {core}",
        sys::getpid()
    );
    let mut connections: [Option<Connection>; CONNECTIONS] = [const { None }; CONNECTIONS];
    let mut events = Events::with_capacity(32);
    let mut datagram = [0u8; 1472];
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            match event.token() {
                LISTENER => accept(&poll, &listener, &mut connections),
                UDP => {
                    while let Ok((n, from)) = udp.recv_from(&mut datagram) {
                        let _ = udp.send_to(&datagram[..n], from);
                    }
                }
                Token(t) => {
                    let slot = &mut connections[t - 2];
                    if let Some(c) = slot
                        && !serve_connection(c)
                    {
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
                println!("echo: accept: {error}");
                return;
            }
        };
        // No free slot: dropping the stream closes it.
        let Some(index) = connections.iter().position(Option::is_none) else {
            continue;
        };
        let mut connection = Connection {
            stream,
            buffer: [0; BUFFER],
            start: 0,
            end: 0,
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if poll
            .registry()
            .register(&mut connection.stream, Token(index + 2), interest)
            .is_ok()
        {
            connections[index] = Some(connection);
        }
    }
}

/// Echoes what arrived until the socket would block; false once the
/// connection is over.
fn serve_connection(c: &mut Connection) -> bool {
    loop {
        while c.start < c.end {
            match c.stream.write(&c.buffer[c.start..c.end]) {
                Ok(n) => c.start += n,
                Err(Error::WouldBlock) => return true,
                Err(_) => return false,
            }
        }
        match c.stream.read(&mut c.buffer) {
            Ok(0) => return false,
            Ok(n) => (c.start, c.end) = (0, n),
            Err(Error::WouldBlock) => return true,
            Err(_) => return false,
        }
    }
}
