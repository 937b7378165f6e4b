//! An HTTP GET client (`get URL` in the shell): connects out from this
//! core (a local port whose replies hash back here), sends one request
//! with `Connection: close`, reads the response to its end (its
//! `Content-Length`, else the server's close: `percore_http::client`) and
//! hashes the body as it streams by (nothing but the head is kept, so the payload
//! may be larger than memory). If the server sent an `X-Fnv1a64` header
//! (the FNV-1a 64 hash of the body, 16 hex digits), the body is checked
//! against it: this is the download client the host's tests serve.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use embedded_io_async::{Read, Write};

use percore_http::client::{FNV_START, ResponseError, ResponseReader, fnv1a64};

use crate::net::config::ipv4;
use crate::net::{Error, TcpStream};

/// The longest response head read.
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
    /// Not an HTTP/1.x response we read, or cut short (see
    /// [`ResponseError`]).
    Response(ResponseError),
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::BadUrl => f.write_str("bad URL (http://A.B.C.D[:PORT]/PATH)"),
            GetError::Socket(e) => write!(f, "{e}"),
            GetError::Response(e) => write!(f, "{e}"),
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
    let mut head = alloc::vec![0u8; MAX_HEAD];
    let mut reader = ResponseReader::new(&mut head);
    let mut chunk = alloc::vec![0u8; 8192];
    let (mut fnv, mut preview) = (FNV_START, Vec::new());
    while !reader.is_complete() {
        let n = match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            // A server that closes without a length may reset.
            Err(Error::ConnectionReset)
                if reader.head().is_some_and(|h| h.content_length.is_none()) =>
            {
                break;
            }
            Err(e) => return Err(GetError::Socket(e)),
        };
        let body = reader.feed(&chunk[..n]).map_err(GetError::Response)?;
        fnv = fnv1a64(fnv, body);
        let room = 256usize.saturating_sub(preview.len());
        preview.extend_from_slice(&body[..body.len().min(room)]);
    }
    let body_len = reader.finish().map_err(GetError::Response)?;
    let head = reader
        .head()
        .copied()
        .ok_or(GetError::Response(ResponseError::NoHead))?;
    Ok(Fetched {
        status: head.status,
        body_len,
        fnv,
        expected: head.fnv1a64,
        preview,
    })
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
}
