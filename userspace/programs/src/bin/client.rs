//! An HTTP client on the socket calls: `client A.B.C.D:PORT` (default
//! `10.0.2.100:8000`, the test harness's `guestfwd` server) connects,
//! sends `GET /payload`, streams the response, hashes the body with
//! FNV-1a 64 and compares it with the `X-Fnv1a64` header the server sent.
//! Prints `client: STATUS N bytes fnv1a64=H checksum ok|MISMATCH|none`;
//! exits 0 only if the checksum matched. Waits through the runtime's
//! `Poll` (the stream registered for readable and writable).
#![no_std]
#![no_main]

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

fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    hash
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

/// Head fields the client needs.
struct Head {
    status: u16,
    fnv: Option<u64>,
}

fn parse_head(head: &[u8]) -> Head {
    let text = core::str::from_utf8(head).unwrap_or("");
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let fnv = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("x-fnv1a64"))
        .and_then(|(_, value)| u64::from_str_radix(value.trim(), 16).ok());
    Head { status, fnv }
}

fn fetch(target: SockAddr) -> Result<bool, Error> {
    let mut poll = Poll::new(Ring::setup(8)?);
    let mut stream = TcpStream::connect(target)?;
    poll.registry()
        .register(&mut stream, STREAM, Interest::READABLE | Interest::WRITABLE)?;
    let request = b"GET /payload HTTP/1.1\r\nHost: percore\r\nConnection: close\r\n\r\n";
    let mut sent = 0;
    let mut head = [0u8; HEAD];
    let (mut head_len, mut parsed) = (0, None::<Head>);
    let (mut body, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325u64);
    let mut chunk = [0u8; 16384];
    let mut events = Events::with_capacity(4);
    loop {
        poll.poll(&mut events, None)?;
        while sent < request.len() {
            match stream.write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) => break,
                Err(error) => return Err(error),
            }
        }
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) => {
                    let Some(head) = parsed else {
                        println!("client: the stream ended in the head");
                        return Ok(false);
                    };
                    let verdict = match head.fnv {
                        Some(fnv) if fnv == hash => "ok",
                        Some(_) => "MISMATCH",
                        None => "none",
                    };
                    println!(
                        "client: {} {body} bytes fnv1a64={hash:016x} checksum {verdict}",
                        head.status
                    );
                    return Ok(verdict == "ok" && head.status == 200);
                }
                Ok(n) => n,
                Err(Error::WouldBlock) => break,
                Err(error) => return Err(error),
            };
            let mut data = &chunk[..n];
            if parsed.is_none() {
                let take = data.len().min(HEAD - head_len);
                head[head_len..head_len + take].copy_from_slice(&data[..take]);
                head_len += take;
                let Some(end) = head[..head_len].windows(4).position(|w| w == b"\r\n\r\n") else {
                    if head_len == HEAD {
                        println!("client: a head longer than {HEAD} bytes");
                        return Ok(false);
                    }
                    continue;
                };
                parsed = Some(parse_head(&head[..end]));
                // What came after the head in this chunk is body.
                let before = head_len - take;
                data = &data[(end + 4 - before).min(data.len())..];
            }
            body += data.len() as u64;
            hash = fnv1a64(hash, data);
        }
    }
}
