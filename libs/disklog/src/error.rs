//! Error types. A damaged disk is data, not a panic: corrupt records and
//! torn tails are reported in [`Recovery`](crate::Recovery) and by the
//! [`Reader`](crate::Reader); errors here are what stops a log from being
//! opened, created or appended to.

use core::fmt;

/// A log shape that cannot be created.
///
/// ```
/// use percore_disklog::{FormatError, Superblock};
/// assert_eq!(Superblock::new(768, 8, 1), Err(FormatError::BadBlockSize(768)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Not a power of two of at least 512.
    BadBlockSize(u32),
    /// A region needs block 0 and at least one block of records.
    TooFewBlocks(u64),
    /// A payload limit above 256 MiB.
    BadMaxPayload(u32),
    /// A first sequence number above 2^62.
    BadFirstSeq(u64),
    /// An encoder window that cannot hold the largest record and the
    /// partial block it starts in.
    WindowTooSmall {
        /// Blocks asked for.
        blocks: usize,
        /// Blocks needed.
        need: usize,
    },
    /// An encoder window longer than recovery's search reach: a torn write
    /// could leave valid records where recovery would not find them.
    WindowTooLarge {
        /// Blocks asked for.
        blocks: usize,
        /// The most allowed.
        max: usize,
    },
}

/// A log could not be opened.
///
/// ```
/// use percore_disklog::{OpenError, SliceDisk, recover};
/// let image = [0u8; 4096];
/// assert_eq!(recover(SliceDisk::new(&image, 512)).err(), Some(OpenError::NoSuperblock));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError<E> {
    /// The device failed.
    Io(E),
    /// Block 0 holds no valid superblock: not a log, or block 0 is damaged.
    NoSuperblock,
    /// The log was made with another block size than the device has.
    BlockSize {
        /// The superblock's block size.
        log: u32,
        /// The device's.
        device: u32,
    },
    /// The device is smaller than the log's region.
    RegionTooSmall {
        /// Blocks the superblock says the region has.
        log: u64,
        /// Blocks the device has.
        device: u64,
    },
    /// A [`Position`](crate::Position) that cannot be a record boundary
    /// (not 8-byte aligned, or beyond the region).
    BadPosition {
        /// The position's offset.
        offset: u64,
    },
}

/// What the [`Reader`](crate::Reader) yields instead of a record.
///
/// ```
/// use percore_disklog::{Corrupt, ReadError};
/// let e: ReadError<()> = ReadError::Corrupt(Corrupt { first_seq: 4, last_seq: 4, offset: 512, bytes: 72 });
/// assert_eq!(e.to_string(), "records 4..=4 corrupt: 72 bytes at offset 512");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError<E> {
    /// The device failed; the reader stops.
    Io(E),
    /// Records lost to corruption in the middle of the log; the reader
    /// goes on with the next valid record.
    Corrupt(Corrupt),
}

/// A record could not be appended; nothing was written.
///
/// ```
/// use percore_disklog::{AppendError, Encoder, Superblock};
/// let sb = Superblock::new(512, 4, 1).unwrap().with_max_payload(100).unwrap();
/// let mut enc = Encoder::new(sb, 2).unwrap();
/// assert_eq!(enc.append(&[0; 101]), Err(AppendError::TooLarge { len: 101, max: 100 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The payload is over the log's `max_payload`.
    TooLarge {
        /// Payload bytes.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// The encoder's window is full: write out
    /// [`Encoder::pending`](crate::Encoder::pending), mark it written, and
    /// retry.
    WindowFull,
    /// The region has no room for the record.
    LogFull,
}

/// Records lost to corruption in the middle of the log (valid records
/// follow), by sequence number: usually one record (its header intact,
/// its payload not); a range when headers were damaged too.
///
/// ```
/// use percore_disklog::Corrupt;
/// let c = Corrupt { first_seq: 9, last_seq: 9, offset: 4096, bytes: 40 };
/// assert_eq!(c.records(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt {
    /// First sequence number lost.
    pub first_seq: u64,
    /// Last sequence number lost.
    pub last_seq: u64,
    /// Log offset where the damage starts (the first lost record).
    pub offset: u64,
    /// Bytes from there to the next valid record.
    pub bytes: u64,
}

impl Corrupt {
    /// Records lost.
    ///
    /// ```
    /// let c = percore_disklog::Corrupt { first_seq: 3, last_seq: 5, offset: 0, bytes: 96 };
    /// assert_eq!(c.records(), 3);
    /// ```
    pub const fn records(&self) -> u64 {
        self.last_seq - self.first_seq + 1
    }
}

/// Damaged or partial bytes after the last valid record, typically an
/// append whose write was torn by a crash. Recovery truncates the log
/// there.
///
/// ```
/// let t = percore_disklog::TornTail { offset: 1000, bytes: 24 };
/// assert_eq!(t.offset + t.bytes, 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Log offset of the truncation point (the end of the last valid record).
    pub offset: u64,
    /// Bytes dropped: from `offset` to the last non-zero byte the scanner
    /// saw before giving up its search for another valid record.
    pub bytes: u64,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::BadBlockSize(b) => {
                write!(f, "block size {b} is not a power of two >= 512")
            }
            FormatError::TooFewBlocks(n) => write!(f, "a log region of {n} blocks is too small"),
            FormatError::BadMaxPayload(m) => write!(f, "max payload {m} is over 256 MiB"),
            FormatError::BadFirstSeq(s) => write!(f, "first sequence number {s} is over 2^62"),
            FormatError::WindowTooSmall { blocks, need } => {
                write!(f, "encoder window of {blocks} blocks, needs {need}")
            }
            FormatError::WindowTooLarge { blocks, max } => {
                write!(f, "encoder window of {blocks} blocks, at most {max}")
            }
        }
    }
}

impl<E: fmt::Debug> fmt::Display for OpenError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "device error: {e:?}"),
            OpenError::NoSuperblock => f.write_str("no log superblock in block 0"),
            OpenError::BlockSize { log, device } => {
                write!(f, "log block size {log}, device block size {device}")
            }
            OpenError::RegionTooSmall { log, device } => {
                write!(f, "log region of {log} blocks on a device of {device}")
            }
            OpenError::BadPosition { offset } => {
                write!(f, "offset {offset} cannot start a record")
            }
        }
    }
}

impl<E: fmt::Debug> fmt::Display for ReadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "device error: {e:?}"),
            ReadError::Corrupt(c) => write!(
                f,
                "records {}..={} corrupt: {} bytes at offset {}",
                c.first_seq, c.last_seq, c.bytes, c.offset
            ),
        }
    }
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::TooLarge { len, max } => write!(f, "record of {len} bytes, limit {max}"),
            AppendError::WindowFull => f.write_str("encoder window full: write it out first"),
            AppendError::LogFull => f.write_str("log region full"),
        }
    }
}
