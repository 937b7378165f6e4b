//! Why a log does not open or take a record.

use core::fmt;
use core::ops::Range;

use percore_disklog::FormatError;

use crate::storage::IoError;

/// Why a log could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The region is not on the device, or smaller than two blocks.
    Region {
        /// The region asked for.
        blocks: Range<u64>,
        /// Blocks on the device.
        device: u64,
    },
    /// The device's block size, or the options, make no log.
    Format(FormatError),
    /// The region holds no log that opens (its first block is not blank
    /// and not a superblock; another block size; a device error while
    /// recovering).
    Recover(percore_disklog::OpenError<IoError>),
    /// Writing the new superblock, or the truncation of a torn tail, failed.
    Io(IoError),
}

/// Why a record was not appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The record is over the log's `max_payload`.
    TooLarge {
        /// Its bytes.
        len: usize,
        /// The log's limit.
        max: u32,
    },
    /// The region has no room left for it.
    LogFull,
    /// The window was full and the write that would have made room
    /// failed (or the device is read-only).
    Io(IoError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Region { blocks, device } => write!(
                f,
                "region {}..{} does not fit a device of {device} blocks",
                blocks.start, blocks.end
            ),
            OpenError::Format(e) => write!(f, "cannot make a log: {e}"),
            OpenError::Recover(e) => write!(f, "cannot open the log: {e}"),
            OpenError::Io(e) => write!(f, "writing the log: {e}"),
        }
    }
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::TooLarge { len, max } => write!(f, "record of {len} bytes, limit {max}"),
            AppendError::LogFull => f.write_str("the log is full"),
            AppendError::Io(e) => write!(f, "making room failed: {e}"),
        }
    }
}
