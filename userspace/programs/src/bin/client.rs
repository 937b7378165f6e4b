//! An HTTP client on the socket calls: `client A.B.C.D:PORT` (default
//! `10.0.2.100:8000`, the test harness's `guestfwd` server) connects,
//! sends `GET /payload`, streams the response through
//! `percore_http::client::ResponseReader` (the kernel's `get` reads the
//! same way: the body ends at its `Content-Length`, else at the server's
//! close), hashes the body with FNV-1a 64 and compares it with the
//! `X-Fnv1a64` header the server sent.
//! Prints `client: STATUS N bytes fnv1a64=H checksum ok|MISMATCH|none`;
//! exits 0 only if the checksum matched. Waits through the runtime's
//! `Poll` (the stream registered for readable and writable).
#![no_std]
#![no_main]

use percore_http::client::{FNV_START, ResponseReader, fnv1a64};
use percore_runtime::abi::{Error, SockAddr};
use percore_runtime::net::TcpStream;
use percore_runtime::poll::{Events, Interest, Poll, Token};
use percore_runtime::ring::Ring;
use percore_runtime::{println, sys};

percore_runtime::entry!(main);

const STREAM: Token = Token(1);
/// Bytes of the response head kept.
const HEAD: usize = 2048;

fn address(text: &str) -> Option<SockAddr> {
    let (ip, port) = text.split_once(':')?;
    let mut octets = [0u8; 4];
    let mut parts = ip.split('.');
    for octet in &mut octets {
        *octet = parts.next()?.parse().ok()?;
    }
    Some(SockAddr::new(octets, port.parse().ok()?))
}

fn main() -> i64 {
    let mut args = [0u8; 64];
    let len = sys::args(&mut args).unwrap_or(0).min(args.len());
    let text = core::str::from_utf8(&args[..len]).unwrap_or("").trim();
    let text = if text.is_empty() {
        "10.0.2.100:8000"
    } else {
        text
    };
    let Some(target) = address(text) else {
        println!("client: `{text}` is not A.B.C.D:PORT");
        return 2;
    };
    match fetch(target) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(error) => {
            println!("client: {error}");
            3
        }
    }
}

fn fetch(target: SockAddr) -> Result<bool, Error> {
    let mut poll = Poll::new(Ring::setup(8)?);
    let mut stream = TcpStream::connect(target)?;
    poll.registry()
        .register(&mut stream, STREAM, Interest::READABLE | Interest::WRITABLE)?;
    let request = b"GET /payload HTTP/1.1\r\nHost: percore\r\nConnection: close\r\n\r\n";
    let mut sent = 0;
    let mut head = [0u8; HEAD];
    let mut reader = ResponseReader::new(&mut head);
    let mut hash = FNV_START;
    let mut chunk = [0u8; 16384];
    let mut events = Events::with_capacity(4);
    // Until the body is whole (its Content-Length) or the server closes.
    'read: while !reader.is_complete() {
        poll.poll(&mut events, None)?;
        while sent < request.len() {
            match stream.write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) => break,
                Err(error) => return Err(error),
            }
        }
        while !reader.is_complete() {
            let n = match stream.read(&mut chunk) {
                Ok(0) => break 'read,
                Ok(n) => n,
                Err(Error::WouldBlock) => break,
                Err(error) => return Err(error),
            };
            match reader.feed(&chunk[..n]) {
                Ok(body) => hash = fnv1a64(hash, body),
                Err(error) => {
                    println!("client: {error}");
                    return Ok(false);
                }
            }
        }
    }
    let (Some(head), Ok(body)) = (reader.head().copied(), reader.finish()) else {
        if let Err(error) = reader.finish() {
            println!("client: {error}");
        }
        return Ok(false);
    };
    let verdict = match head.fnv1a64 {
        Some(fnv) if fnv == hash => "ok",
        Some(_) => "MISMATCH",
        None => "none",
    };
    println!(
        "client: {} {body} bytes fnv1a64={hash:016x} checksum {verdict}",
        head.status
    );
    Ok(verdict == "ok" && head.status == 200)
}
