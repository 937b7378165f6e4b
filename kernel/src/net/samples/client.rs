//! An HTTP GET client (`get URL` in the shell): connects out from this
//! core (a local port whose replies hash back here), sends one request
//! with `Connection: close`, reads the response to its end and hashes the
//! body as it streams by (nothing but the head is kept, so the payload
//! may be larger than memory). If the server sent an `X-Fnv1a64` header
//! (the FNV-1a 64 hash of the body, 16 hex digits), the body is checked
//! against it: this is the download client the host's tests serve.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use embedded_io_async::{Read, Write};

use crate::net::config::ipv4;
use crate::net::{Error, TcpStream};

/// The longest response head kept.
const MAX_HEAD: usize = 8 * 1024;

/// A parsed `http://A.B.C.D[:PORT]/PATH` (no names: there is no DNS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub addr: SocketAddr,
    pub path: String,
}

/// Why a GET failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetError {
    /// Not `http://A.B.C.D[:PORT]/PATH`.
    BadUrl,
    Socket(Error),
    /// The response is not HTTP/1.x, or its head is too long.
    BadResponse,
    /// The body is shorter than its `Content-Length`.
    Truncated {
        expected: u64,
        got: u64,
    },
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::BadUrl => f.write_str("bad URL (http://A.B.C.D[:PORT]/PATH)"),
            GetError::Socket(e) => write!(f, "{e}"),
            GetError::BadResponse => f.write_str("not an HTTP/1.x response"),
            GetError::Truncated { expected, got } => {
                write!(f, "body cut short: {got} of {expected} bytes")
            }
        }
    }
}

/// What a GET brought back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub body_len: u64,
    /// FNV-1a 64 of the body.
    pub fnv: u64,
    /// The `X-Fnv1a64` header, if the server sent one.
    pub expected: Option<u64>,
    /// The first bytes of the body (up to 256).
    pub preview: Vec<u8>,
}

impl Fetched {
    /// Whether the body matches the server's checksum (`None`: none sent).
    pub fn checksum_ok(&self) -> Option<bool> {
        self.expected.map(|e| e == self.fnv)
    }
}

/// Parses `http://A.B.C.D[:PORT]/PATH` (port 80 by default, path `/`).
pub fn parse_url(url: &str) -> Option<Url> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (ip, port) = match host.split_once(':') {
        Some((ip, port)) => (ip, port.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => (host, 80),
    };
    let [a, b, c, d] = ipv4(ip)?;
    Some(Url {
        addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)),
        path: String::from(path),
    })
}

/// FNV-1a 64 over `bytes`, continuing from `hash`.
pub fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a 64's starting value.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// GETs `url` from this core.
pub async fn get(url: &str) -> Result<Fetched, GetError> {
    let url = parse_url(url).ok_or(GetError::BadUrl)?;
    let mut stream = TcpStream::connect_async(url.addr)
        .await
        .map_err(GetError::Socket)?;
    let SocketAddr::V4(v4) = url.addr else {
        return Err(GetError::BadUrl);
    };
    let request = alloc::format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        url.path,
        v4.ip()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(GetError::Socket)?;
    let mut head: Vec<u8> = Vec::new();
    let mut chunk = alloc::vec![0u8; 8192];
    let mut fetched = Fetched {
        status: 0,
        body_len: 0,
        fnv: FNV_START,
        expected: None,
        preview: Vec::new(),
    };
    let mut length = None;
    let mut in_body = false;
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(Error::ConnectionReset) if in_body && length.is_none() => break,
            Err(e) => return Err(GetError::Socket(e)),
        };
        let mut data = &chunk[..n];
        if !in_body {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                if head.len() > MAX_HEAD {
                    return Err(GetError::BadResponse);
                }
                continue;
            };
            let (status, len, expected) = parse_head(&head[..end]).ok_or(GetError::BadResponse)?;
            fetched.status = status;
            fetched.expected = expected;
            length = len;
            in_body = true;
            let body_start = end + 4;
            let already = head.len() - body_start;
            data = &chunk[n - already..n];
        }
        fetched.fnv = fnv1a64(fetched.fnv, data);
        fetched.body_len += data.len() as u64;
        let room = 256usize.saturating_sub(fetched.preview.len());
        fetched
            .preview
            .extend_from_slice(&data[..data.len().min(room)]);
        if length.is_some_and(|l| fetched.body_len >= l) {
            break;
        }
    }
    if !in_body {
        return Err(GetError::BadResponse);
    }
    if let Some(expected) = length
        && fetched.body_len < expected
    {
        return Err(GetError::Truncated {
            expected,
            got: fetched.body_len,
        });
    }
    Ok(fetched)
}

/// Status, `Content-Length` and `X-Fnv1a64` of a response head.
fn parse_head(head: &[u8]) -> Option<(u16, Option<u64>, Option<u64>)> {
    let text = core::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut words = status_line.split(' ');
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = words.next()?.parse().ok()?;
    let (mut length, mut fnv) = (None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().ok()?);
        } else if name.eq_ignore_ascii_case("x-fnv1a64") {
            fnv = Some(u64::from_str_radix(value, 16).ok()?);
        }
    }
    Some((status, length, fnv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = parse_url("http://10.0.2.100:8000/payload").unwrap();
        assert_eq!(url.addr, "10.0.2.100:8000".parse().unwrap());
        assert_eq!(url.path, "/payload");
        assert_eq!(parse_url("http://10.0.2.2").unwrap().path, "/");
        assert_eq!(parse_url("http://10.0.2.2").unwrap().addr.port(), 80);
        assert_eq!(parse_url("https://10.0.2.2/"), None);
        assert_eq!(parse_url("http://example.com/"), None);
        assert_eq!(parse_url("http://10.0.2.2:0/"), None);
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a64(FNV_START, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_START, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fnv1a64(fnv1a64(FNV_START, b"foo"), b"bar"),
            fnv1a64(FNV_START, b"foobar")
        );
    }

    #[test]
    fn heads() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Fnv1a64: 00000000000000ff";
        assert_eq!(parse_head(head), Some((200, Some(12), Some(255))));
        assert_eq!(parse_head(b"SSH-2.0 hello"), None);
        assert_eq!(
            parse_head(b"HTTP/1.1 404 Not Found"),
            Some((404, None, None))
        );
    }
}
