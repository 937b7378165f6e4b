//! The client side: reading one response as it streams in, without
//! keeping the body.
//!
//! The kernel's `get` sample and the ring-3 `client` program both read
//! their download through [`ResponseReader`], so they agree on when a
//! response is over: at `Content-Length` bytes of body when the head has
//! one, else when the server closes. A client must not wait for the close
//! when the length is known: a server may keep the connection open (and
//! QEMU's `guestfwd`, which the tests' download server sits behind, never
//! passes the host's close on to the guest).
//!
//! ```
//! use percore_http::client::{fnv1a64, ResponseReader, FNV_START};
//!
//! let mut head = [0u8; 256];
//! let mut reader = ResponseReader::new(&mut head);
//! // The head may arrive in pieces; body bytes come back as they pass.
//! assert_eq!(reader.feed(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), b"");
//! let body = reader.feed(b"ngth: 5\r\nX-Fnv1a64: a430d84680aabd0b\r\n\r\nhel").unwrap();
//! assert_eq!(body, b"hel");
//! assert!(!reader.is_complete());
//! assert_eq!(reader.feed(b"lo, and more").unwrap(), b"lo");
//! assert!(reader.is_complete());
//! let head = reader.head().unwrap();
//! assert_eq!((head.status, head.content_length), (200, Some(5)));
//! assert_eq!(head.fnv1a64, Some(fnv1a64(FNV_START, b"hello")));
//! assert_eq!(reader.finish(), Ok(5));
//! ```

use core::fmt;

/// FNV-1a 64's starting value.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64 over `bytes`, continuing from `hash` (start from
/// [`FNV_START`]): the checksum of the tests' `X-Fnv1a64` header.
pub fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The fields of a response head a client acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// `Content-Length`, if sent: the body ends after that many bytes.
    pub content_length: Option<u64>,
    /// `X-Fnv1a64` (16 hex digits), if sent: the FNV-1a 64 of the body.
    pub fnv1a64: Option<u64>,
}

/// Why a response cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Not HTTP/1.x syntax (httparse's reason).
    Syntax(httparse::Error),
    /// The head does not fit the reader's buffer.
    HeadTooLong,
    /// `Content-Length` is not a number or appears twice with different
    /// values, or `X-Fnv1a64` is not 16 hex digits.
    BadField,
    /// `Transfer-Encoding` is present (chunked bodies are not read).
    TransferEncoding,
    /// The connection ended inside the head.
    NoHead,
    /// The connection ended before `Content-Length` bytes of body.
    Truncated {
        /// `Content-Length`.
        expected: u64,
        /// Body bytes that came.
        got: u64,
    },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Syntax(e) => write!(f, "malformed response: {e}"),
            ResponseError::HeadTooLong => f.write_str("response head too long"),
            ResponseError::BadField => f.write_str("bad Content-Length or X-Fnv1a64"),
            ResponseError::TransferEncoding => f.write_str("Transfer-Encoding is not supported"),
            ResponseError::NoHead => f.write_str("the connection ended in the response head"),
            ResponseError::Truncated { expected, got } => {
                write!(f, "body cut short: {got} of {expected} bytes")
            }
        }
    }
}

/// Reads one response from the bytes of a connection, fed as they come:
/// keeps the head (in the buffer it is given), hands the body back piece
/// by piece, and says when the body is complete.
pub struct ResponseReader<'b> {
    buf: &'b mut [u8],
    /// Head bytes kept so far (until the head is parsed).
    kept: usize,
    head: Option<ResponseHead>,
    body: u64,
}

impl<'b> ResponseReader<'b> {
    /// A reader that keeps the head in `buf` (a head longer than `buf` is
    /// [`ResponseError::HeadTooLong`]).
    pub fn new(buf: &'b mut [u8]) -> Self {
        ResponseReader {
            buf,
            kept: 0,
            head: None,
            body: 0,
        }
    }

    /// Takes the next bytes read from the connection; returns the part of
    /// them that is body (empty while the head is still coming; never
    /// past `Content-Length`: anything after it is not this response's).
    pub fn feed<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], ResponseError> {
        let mut data = data;
        if self.head.is_none() {
            let room = self.buf.len() - self.kept;
            let take = data.len().min(room);
            self.buf[self.kept..self.kept + take].copy_from_slice(&data[..take]);
            let before = self.kept;
            self.kept += take;
            let Some((head, len)) = parse_head(&self.buf[..self.kept])? else {
                if self.kept == self.buf.len() {
                    return Err(ResponseError::HeadTooLong);
                }
                return Ok(&[]);
            };
            self.head = Some(head);
            // What came after the head in `data` is body.
            data = &data[len - before..];
        }
        let body = match self.remaining() {
            Some(left) => &data[..data.len().min(usize::try_from(left).unwrap_or(usize::MAX))],
            None => data,
        };
        self.body += body.len() as u64;
        Ok(body)
    }

    /// The head, once it came whole.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// Body bytes handed back so far.
    pub fn body_len(&self) -> u64 {
        self.body
    }

    /// Body bytes still to come, when the head said how many.
    fn remaining(&self) -> Option<u64> {
        let length = self.head?.content_length?;
        Some(length - self.body)
    }

    /// Whether the whole body came (`Content-Length` reached); a response
    /// without one is complete only when the connection ends.
    pub fn is_complete(&self) -> bool {
        self.remaining() == Some(0)
    }

    /// The connection ended: the body's length if the response is whole.
    pub fn finish(&self) -> Result<u64, ResponseError> {
        let head = self.head.ok_or(ResponseError::NoHead)?;
        match head.content_length {
            Some(expected) if self.body < expected => Err(ResponseError::Truncated {
                expected,
                got: self.body,
            }),
            _ => Ok(self.body),
        }
    }
}

/// Parses a whole response head at the front of `buf`: the fields and the
/// head's length, or `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    let mut fields = [httparse::EMPTY_HEADER; crate::MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        // More fields than the array holds: the head is too long for us.
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLong),
        Err(e) => return Err(ResponseError::Syntax(e)),
    };
    let mut head = ResponseHead {
        // httparse fills it once the head is complete.
        status: response.code.unwrap_or(0),
        content_length: None,
        fnv1a64: None,
    };
    for field in response.headers.iter() {
        let value =
            core::str::from_utf8(field.value.trim_ascii()).map_err(|_| ResponseError::BadField);
        if field.name.eq_ignore_ascii_case("content-length") {
            let length = value?
                .parse::<u64>()
                .ok()
                .filter(|_| !field.value.trim_ascii().starts_with(b"+"))
                .ok_or(ResponseError::BadField)?;
            if head.content_length.is_some_and(|l| l != length) {
                return Err(ResponseError::BadField);
            }
            head.content_length = Some(length);
        } else if field.name.eq_ignore_ascii_case("x-fnv1a64") {
            let value = value?;
            if value.len() != 16 {
                return Err(ResponseError::BadField);
            }
            head.fnv1a64 =
                Some(u64::from_str_radix(value, 16).map_err(|_| ResponseError::BadField)?);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ResponseError::TransferEncoding);
        }
    }
    Ok(Some((head, len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Fnv1a64: 779a65e7023cd2e7\r\nConnection: close\r\n\r\nhello world";

    /// Feeds `bytes` in pieces of `step`; the body and the reader's verdict.
    fn read_in_steps(bytes: &[u8], step: usize) -> (Vec<u8>, Result<u64, ResponseError>) {
        let mut buf = [0u8; 128];
        let mut reader = ResponseReader::new(&mut buf);
        let mut body = Vec::new();
        for piece in bytes.chunks(step) {
            match reader.feed(piece) {
                Ok(b) => body.extend_from_slice(b),
                Err(e) => return (body, Err(e)),
            }
        }
        (body, reader.finish())
    }

    #[test]
    fn any_split_of_the_bytes_reads_the_same() {
        for step in 1..=RESPONSE.len() {
            let (body, verdict) = read_in_steps(RESPONSE, step);
            assert_eq!(body, b"hello world", "step {step}");
            assert_eq!(verdict, Ok(11), "step {step}");
        }
        assert_eq!(fnv1a64(FNV_START, b"hello world"), 0x779a_65e7_023c_d2e7);
    }

    #[test]
    fn complete_at_content_length_and_nothing_past_it() {
        let mut buf = [0u8; 128];
        let mut reader = ResponseReader::new(&mut buf);
        let mut with_more = RESPONSE.to_vec();
        with_more.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(reader.feed(&with_more).unwrap(), b"hello world");
        assert!(reader.is_complete());
        assert_eq!(reader.feed(b"more").unwrap(), b"");
        assert_eq!(reader.body_len(), 11);
    }

    #[test]
    fn without_a_length_the_close_ends_the_body() {
        let (body, verdict) = read_in_steps(b"HTTP/1.0 200 OK\r\n\r\nabc", 2);
        assert_eq!((body.as_slice(), verdict), (&b"abc"[..], Ok(3)));
    }

    #[test]
    fn cut_short_and_headless_responses_are_errors() {
        let (_, verdict) = read_in_steps(&RESPONSE[..RESPONSE.len() - 3], 7);
        assert_eq!(
            verdict,
            Err(ResponseError::Truncated {
                expected: 11,
                got: 8
            })
        );
        let (_, verdict) = read_in_steps(b"HTTP/1.1 200 OK\r\nContent-Le", 4);
        assert_eq!(verdict, Err(ResponseError::NoHead));
    }

    #[test]
    fn bad_heads_are_refused() {
        let bad: [(&[u8], ResponseError); 6] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                ResponseError::BadField,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                ResponseError::BadField,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseError::BadField,
            ),
            (
                b"HTTP/1.1 200 OK\r\nX-Fnv1a64: 12\r\n\r\n",
                ResponseError::BadField,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                ResponseError::TransferEncoding,
            ),
            (
                b"SMTP ready\r\n\r\n",
                ResponseError::Syntax(httparse::Error::Version),
            ),
        ];
        for (bytes, want) in bad {
            let (_, verdict) = read_in_steps(bytes, bytes.len());
            assert_eq!(verdict, Err(want), "{:?}", core::str::from_utf8(bytes));
        }
    }

    #[test]
    fn a_head_longer_than_the_buffer_is_refused() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while head.len() < 200 {
            head.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaa\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let (_, verdict) = read_in_steps(&head, 10);
        assert_eq!(verdict, Err(ResponseError::HeadTooLong));
    }
}
