//! # percore-http: the HTTP/1.1 of the sample server
//!
//! The kernel's `serve http` sample and the Linux reference guest's epoll
//! server both answer through this crate, so a benchmark compares the two
//! on the same bytes: the same parser ([`httparse`]), the same keep-alive
//! rules, the same routes and the same response bytes.
//!
//! - [`parse`] reads one request from the front of a buffer: `Ok(None)`
//!   while the head (and a `Content-Length` body) is still incomplete, the
//!   request and the number of bytes it used once it is whole, or an
//!   [`Error`] for a request the server answers with `400` and closes.
//! - [`route`] maps method and path to a [`Route`]; [`respond`] writes a
//!   whole response (status line, `Content-Type`, `Content-Length`,
//!   `Connection: close` when the connection ends, body).
//!
//! - [`client`] reads a response as it streams in (the kernel's `get`
//!   sample and the ring-3 `client` program).
//!
//! Keep-alive: HTTP/1.1 keeps the connection unless the request says
//! `Connection: close`; HTTP/1.0 closes unless it says
//! `Connection: keep-alive`. Bodies are read by `Content-Length` only:
//! `Transfer-Encoding` (chunked uploads) is refused with `400`, as is a
//! head longer than [`MAX_HEAD`] or with more than [`MAX_HEADERS`] fields.
//!
//! ```
//! use percore_http::{parse, respond, route, Route, Status};
//!
//! let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n";
//! let first = parse(request).unwrap().unwrap();
//! assert_eq!(first.path, "/");
//! assert!(first.keep_alive);
//! assert_eq!(route(first.method, first.path), Route::Index);
//! // The second request is not complete yet.
//! assert!(parse(&request[first.len..]).unwrap().is_none());
//!
//! let mut out = Vec::new();
//! respond(Status::Ok, "text/plain", b"hi", true, &mut out);
//! assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
//! ```
#![no_std]
#![warn(missing_docs)]

#[cfg(test)]
extern crate alloc;

pub mod client;

/// The page `GET /` returns, byte for byte the same from every server.
pub const INDEX_BODY: &[u8] = b"<!doctype html>\n<html><head><title>percore</title></head>\n<body><h1>percore</h1>\n<p>Served by a per-core reactor kernel.</p></body></html>\n";

/// `Content-Type` of [`INDEX_BODY`].
pub const INDEX_TYPE: &str = "text/html";

/// The longest request head accepted (request line and fields).
pub const MAX_HEAD: usize = 8 * 1024;

/// The most header fields accepted in one request.
pub const MAX_HEADERS: usize = 32;

/// The largest `Content-Length` body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Why a request is refused (the server answers `400` and closes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not HTTP/1.x syntax (httparse's reason).
    Syntax(httparse::Error),
    /// The head is longer than [`MAX_HEAD`] and not finished.
    HeadTooLong,
    /// `Content-Length` is not a number, appears twice with different
    /// values, or exceeds [`MAX_BODY`].
    BadLength,
    /// `Transfer-Encoding` is present (chunked bodies are not read).
    TransferEncoding,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Syntax(e) => write!(f, "malformed request: {e}"),
            Error::HeadTooLong => write!(f, "request head longer than {MAX_HEAD} bytes"),
            Error::BadLength => write!(f, "bad Content-Length"),
            Error::TransferEncoding => write!(f, "Transfer-Encoding is not supported"),
        }
    }
}

/// One whole request at the front of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method as sent (`GET`, `HEAD`, ...).
    pub method: &'a str,
    /// The request target as sent.
    pub path: &'a str,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Bytes of the buffer this request used: head and body.
    pub len: usize,
}

/// Reads one request from the front of `buf`: `Ok(None)` if it is not
/// complete yet (read more and call again with the longer buffer).
pub fn parse(buf: &[u8]) -> Result<Option<Request<'_>>, Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(Error::HeadTooLong),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Error::Syntax(e)),
    };
    if head > MAX_HEAD {
        return Err(Error::HeadTooLong);
    }
    let version = request.version.unwrap_or(1);
    let mut keep_alive = version >= 1;
    let mut body: Option<usize> = None;
    for field in request.headers.iter() {
        if field.name.eq_ignore_ascii_case("connection") {
            for token in field.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if field.name.eq_ignore_ascii_case("content-length") {
            let length = core::str::from_utf8(field.value.trim_ascii())
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|&n| n <= MAX_BODY)
                .ok_or(Error::BadLength)?;
            if body.is_some_and(|b| b != length) {
                return Err(Error::BadLength);
            }
            body = Some(length);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Error::TransferEncoding);
        }
    }
    let len = head + body.unwrap_or(0);
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(Request {
        // httparse fills both once the head is complete.
        method: request.method.unwrap_or(""),
        path: request.path.unwrap_or(""),
        keep_alive,
        len,
    }))
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: [`INDEX_BODY`].
    Index,
    /// `GET /stats`: the server's counters as JSON (each server its own).
    Stats,
    /// Any other path: `404`.
    NotFound,
    /// A method other than `GET` on a known path: `405`.
    MethodNotAllowed,
}

/// The route of `method` and `path` (the query string is ignored).
pub fn route(method: &str, path: &str) -> Route {
    let path = path.split('?').next().unwrap_or(path);
    let known = match path {
        "/" => Route::Index,
        "/stats" => Route::Stats,
        _ => return Route::NotFound,
    };
    if method == "GET" {
        known
    } else {
        Route::MethodNotAllowed
    }
}

/// A response status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200 OK
    Ok,
    /// 400 Bad Request
    BadRequest,
    /// 404 Not Found
    NotFound,
    /// 405 Method Not Allowed
    MethodNotAllowed,
    /// 503 Service Unavailable
    Unavailable,
}

impl Status {
    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::Unavailable => 503,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::Unavailable => "Service Unavailable",
        }
    }
}

/// Where [`respond`] writes: anything that takes bytes at its end (a
/// `Vec<u8>`, a fixed buffer with a cursor).
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl<T: Extend<u8>> Sink for T {
    fn put(&mut self, bytes: &[u8]) {
        self.extend(bytes.iter().copied());
    }
}

/// Writes a whole response: status line, `Content-Type`,
/// `Content-Length`, `Connection: close` if `keep_alive` is false, the
/// blank line and `body`.
pub fn respond(
    status: Status,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
    out: &mut impl Sink,
) {
    let mut number = [0u8; 20];
    out.put(b"HTTP/1.1 ");
    out.put(decimal(u64::from(status.code()), &mut number));
    out.put(b" ");
    out.put(status.reason().as_bytes());
    out.put(b"\r\nContent-Type: ");
    out.put(content_type.as_bytes());
    out.put(b"\r\nContent-Length: ");
    out.put(decimal(body.len() as u64, &mut number));
    if !keep_alive {
        out.put(b"\r\nConnection: close");
    }
    out.put(b"\r\n\r\n");
    out.put(body);
}

/// The answer to a request on a route other than [`Route::Stats`] (whose
/// body each server makes itself): status, content type and body.
pub fn fixed(route: Route) -> (Status, &'static str, &'static [u8]) {
    match route {
        Route::Index => (Status::Ok, INDEX_TYPE, INDEX_BODY),
        Route::Stats => (Status::Ok, "application/json", b"{}\n"),
        Route::NotFound => (Status::NotFound, "text/plain", b"not found\n"),
        Route::MethodNotAllowed => (
            Status::MethodNotAllowed,
            "text/plain",
            b"method not allowed\n",
        ),
    }
}

/// The body sent with `400`.
pub const BAD_REQUEST_BODY: &[u8] = b"bad request\n";

fn decimal(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let cases: [(&[u8], bool); 5] = [
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n",
                false,
            ),
        ];
        for (request, keep) in cases {
            let parsed = parse(request).unwrap().unwrap();
            assert_eq!(
                parsed.keep_alive,
                keep,
                "{:?}",
                core::str::from_utf8(request)
            );
            assert_eq!(parsed.len, request.len());
        }
    }

    #[test]
    fn body_is_part_of_the_request() {
        let request = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET";
        assert_eq!(parse(&request[..40]).unwrap(), None);
        let parsed = parse(request).unwrap().unwrap();
        assert_eq!(parsed.len, request.len() - 3);
        assert_eq!(route(parsed.method, parsed.path), Route::NotFound);
    }

    #[test]
    fn bad_requests_are_errors() {
        assert!(matches!(
            parse(b"\x00\x01garbage\r\n\r\n"),
            Err(Error::Syntax(_))
        ));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(Error::BadLength)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(Error::BadLength)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(Error::BadLength)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            Err(Error::BadLength)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Error::TransferEncoding)
        );
        let mut long = Vec::from(&b"GET / HTTP/1.1\r\nX: "[..]);
        long.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse(&long), Err(Error::HeadTooLong));
        let mut many = Vec::from(&b"GET / HTTP/1.1\r\n"[..]);
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse(&many),
            Err(Error::Syntax(httparse::Error::TooManyHeaders))
        ));
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete() {
        let request = b"GET /stats?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc";
        for end in 0..request.len() {
            assert_eq!(parse(&request[..end]), Ok(None), "prefix of {end} bytes");
        }
        let parsed = parse(request).unwrap().unwrap();
        assert_eq!(route(parsed.method, parsed.path), Route::Stats);
    }

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/"), Route::Index);
        assert_eq!(route("GET", "/stats"), Route::Stats);
        assert_eq!(route("POST", "/"), Route::MethodNotAllowed);
        assert_eq!(route("GET", "/index.html"), Route::NotFound);
    }

    #[test]
    fn responses() {
        let mut out = Vec::new();
        let (status, kind, body) = fixed(Route::NotFound);
        respond(status, kind, body, false, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n"
        );
        let mut out = Vec::new();
        respond(Status::Ok, INDEX_TYPE, INDEX_BODY, true, &mut out);
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ";
        assert!(out.starts_with(head));
        assert!(out.ends_with(INDEX_BODY));
        let mut n = [0; 20];
        assert_eq!(decimal(0, &mut n), b"0");
        assert_eq!(decimal(u64::MAX, &mut n), b"18446744073709551615");
    }
}
