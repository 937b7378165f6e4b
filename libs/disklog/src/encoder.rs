//! Appending: records are packed one after another (8-byte aligned) into a
//! window of whole blocks; [`Encoder::pending`] hands out the blocks that
//! must be written for every appended record to be durable, and
//! [`Encoder::mark_written`] moves the window on once they are.
//!
//! How records pack into blocks: the log is one byte stream over blocks
//! 1.. of the region; a record may span blocks, and a flush writes from the
//! block holding the first non-durable byte to the block holding the last
//! record's end, zero-filled after it. The next flush rewrites that last
//! (partial) block with the same durable bytes plus the new records, so a
//! torn rewrite leaves the durable bytes as they were (sector writes are
//! atomic; even within a torn sector the old and new bytes agree there)
//! and only new records can fail their checksums.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{AppendError, FormatError};
use crate::record::{Header, span};
use crate::recovery::Recovery;
use crate::superblock::Superblock;

/// Appends records into block buffers and says which blocks to write.
///
/// Memory: one window of `window_blocks` blocks, allocated at creation;
/// appending never allocates.
///
/// ```
/// use percore_disklog::{Encoder, Superblock};
/// let sb = Superblock::new(512, 64, 1).unwrap().with_max_payload(1000).unwrap();
/// let mut enc = Encoder::new(sb, 4).unwrap();
/// assert_eq!(enc.append(b"first").unwrap(), 0);
/// assert_eq!(enc.append(b"second").unwrap(), 1);
/// let pending = enc.pending().unwrap();
/// assert_eq!((pending.lba, pending.data.len()), (1, 512)); // block 1, the first after the superblock
/// let written = pending.written;
/// // ... write pending.data at pending.lba, then FLUSH the device ...
/// enc.mark_written(written);
/// assert_eq!(enc.durable_seq(), 2);
/// assert!(enc.pending().is_none());
/// ```
pub struct Encoder {
    superblock: Superblock,
    /// The window: whole blocks, zero after `fill` (and after `scrub`).
    buf: Vec<u8>,
    /// Log offset of `buf[0]`, a multiple of the block size.
    start: u64,
    /// Bytes of records in `buf`.
    fill: usize,
    /// Bytes of `buf` known to be durable.
    durable: usize,
    /// Zeros to write up to here (a torn tail left by a crash), or 0.
    scrub: usize,
    next_seq: u64,
    durable_seq: u64,
}

/// Blocks to write: `data` at block `lba` of the region (absolute, block 0
/// is the superblock). Once written and flushed, pass `written` to
/// [`Encoder::mark_written`].
///
/// ```
/// # use percore_disklog::{Encoder, Superblock};
/// let mut enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
/// enc.append(&[1; 600]).unwrap();
/// let p = enc.pending().unwrap();
/// assert_eq!((p.lba, p.data.len()), (1, 1024)); // 32 + 600 bytes span two blocks
/// ```
#[derive(Debug)]
pub struct Pending<'a> {
    /// First block to write.
    pub lba: u64,
    /// Whole blocks.
    pub data: &'a [u8],
    /// The token that marks these blocks durable.
    pub written: Written,
}

/// What a [`Pending`] write covered: records up to a log offset, with
/// sequence numbers below `next_seq`.
///
/// ```
/// # use percore_disklog::{Encoder, Superblock};
/// let mut enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
/// enc.append(b"x").unwrap();
/// assert_eq!(enc.pending().unwrap().written.next_seq(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    end: u64,
    scrub_end: u64,
    next_seq: u64,
}

impl Written {
    /// Records with sequence numbers below this are in the write.
    ///
    /// ```
    /// # use percore_disklog::{Encoder, Superblock};
    /// let mut enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
    /// enc.append(b"x").unwrap();
    /// enc.append(b"y").unwrap();
    /// assert_eq!(enc.pending().unwrap().written.next_seq(), 2);
    /// ```
    pub const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Log offset where the write's last record ends (where the record
    /// `next_seq` goes).
    ///
    /// ```
    /// # use percore_disklog::{Encoder, Superblock};
    /// let mut enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
    /// enc.append(b"x").unwrap();
    /// assert_eq!(enc.pending().unwrap().written.end(), 40);
    /// ```
    pub const fn end(&self) -> u64 {
        self.end
    }
}

impl core::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encoder")
            .field("window_bytes", &self.buf.len())
            .field("end", &self.end())
            .field("durable_end", &(self.start + self.durable as u64))
            .field("next_seq", &self.next_seq)
            .field("durable_seq", &self.durable_seq)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder for a freshly created log (the superblock written, the
    /// rest of the region zero, or left from a log with another `log_id`),
    /// with a window of `window_blocks` blocks: at least
    /// [`min_window_blocks`](Superblock::min_window_blocks) (the largest
    /// record and the partial block it starts in), at most
    /// [`max_window_blocks`](Superblock::max_window_blocks) (so a torn
    /// write stays within recovery's reach).
    ///
    /// ```
    /// use percore_disklog::{Encoder, FormatError, Superblock};
    /// let sb = Superblock::new(512, 8, 1).unwrap(); // 64 KiB records: 130..=515 blocks
    /// assert_eq!(Encoder::new(sb, 4).err(), Some(FormatError::WindowTooSmall { blocks: 4, need: 130 }));
    /// assert_eq!(Encoder::new(sb, 600).err(), Some(FormatError::WindowTooLarge { blocks: 600, max: 515 }));
    /// ```
    pub fn new(superblock: Superblock, window_blocks: usize) -> Result<Self, FormatError> {
        // The fields are public: check them again before dividing by them.
        let superblock = superblock.validated()?;
        let bs = superblock.block_size as usize;
        let need = superblock.min_window_blocks();
        if window_blocks < need {
            return Err(FormatError::WindowTooSmall {
                blocks: window_blocks,
                need,
            });
        }
        let max = superblock.max_window_blocks();
        if window_blocks > max {
            return Err(FormatError::WindowTooLarge {
                blocks: window_blocks,
                max,
            });
        }
        Ok(Encoder {
            superblock,
            buf: vec![0; window_blocks * bs],
            start: 0,
            fill: 0,
            durable: 0,
            scrub: 0,
            next_seq: superblock.first_seq,
            durable_seq: superblock.first_seq,
        })
    }

    /// An encoder that goes on after [`recover`](crate::recover): the next
    /// record is written at the recovery's end, and the first write also
    /// zeroes the torn tail (so the next recovery does not report it again).
    ///
    /// ```
    /// use percore_disklog::{Encoder, SliceDisk, Superblock, recover};
    /// let sb = Superblock::new(512, 8, 1).unwrap().with_max_payload(100).unwrap();
    /// let mut image = vec![0u8; 8 * 512];
    /// sb.encode(&mut image);
    /// image[600] = 0xff; // a torn tail
    /// let r = recover(SliceDisk::new(&image, 512)).unwrap();
    /// let mut enc = Encoder::resume(&r, 2).unwrap();
    /// assert_eq!(enc.append(b"after").unwrap(), 0);
    /// let p = enc.pending().unwrap();
    /// assert_eq!((p.lba, p.data.len()), (1, 512));
    /// assert_eq!(p.data[600 - 512], 0); // the torn byte is zeroed
    /// ```
    pub fn resume(recovery: &Recovery, window_blocks: usize) -> Result<Self, FormatError> {
        let mut enc = Encoder::new(recovery.superblock, window_blocks)?;
        let bs = enc.superblock.block_size as u64;
        // `recover` sets `end` inside the region; saturate in case a caller
        // changed the public fields since.
        let end = recovery.end.min(enc.superblock.capacity());
        let keep = (end % bs) as usize;
        enc.start = end - keep as u64;
        let kept = keep.min(recovery.tail_block.len());
        enc.buf[..kept].copy_from_slice(&recovery.tail_block[..kept]);
        enc.fill = keep;
        enc.durable = keep;
        if let Some(tail) = recovery.tail {
            // The tail lies within `resync_reach` of `end`: a window of the
            // maximum size scrubs all of it; a smaller one what it holds
            // (the rest holds no valid record, or recovery would have found
            // it, and at worst is reported as a torn tail again later).
            let torn_end = tail
                .offset
                .saturating_add(tail.bytes)
                .saturating_sub(enc.start);
            enc.scrub = torn_end.min(enc.buf.len() as u64) as usize;
        }
        enc.next_seq = recovery.next_seq;
        enc.durable_seq = recovery.next_seq;
        Ok(enc)
    }

    /// Appends a record and returns its sequence number. It is durable once
    /// a [`pending`](Self::pending) write that covers it is written and
    /// flushed.
    ///
    /// ```
    /// use percore_disklog::{AppendError, Encoder, Superblock};
    /// let sb = Superblock::new(512, 2, 1).unwrap().with_max_payload(400).unwrap();
    /// let mut enc = Encoder::new(sb, 2).unwrap();
    /// enc.append(&[0; 400]).unwrap();
    /// assert_eq!(enc.append(&[0; 100]), Err(AppendError::LogFull));
    /// ```
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, AppendError> {
        let max = self.superblock.max_payload;
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len <= max)
            .ok_or(AppendError::TooLarge {
                len: payload.len(),
                max,
            })?;
        let span = span(len);
        if self.start + (self.fill + span) as u64 > self.superblock.capacity() {
            return Err(AppendError::LogFull);
        }
        if self.fill + span > self.buf.len() {
            return Err(AppendError::WindowFull);
        }
        let seq = self.next_seq;
        let log_id = self.superblock.log_id;
        Header::write_record(
            &mut self.buf[self.fill..self.fill + span],
            seq,
            log_id,
            payload,
        );
        self.fill += span;
        self.next_seq += 1;
        Ok(seq)
    }

    /// The blocks to write so that every record appended so far is
    /// durable, or `None` if they all are.
    ///
    /// ```
    /// # use percore_disklog::{Encoder, Superblock};
    /// let enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
    /// assert!(enc.pending().is_none());
    /// ```
    pub fn pending(&self) -> Option<Pending<'_>> {
        if self.fill == self.durable && self.scrub <= self.durable {
            return None;
        }
        let bs = self.superblock.block_size as usize;
        let from = self.durable / bs;
        let to = self.fill.max(self.scrub).div_ceil(bs);
        Some(Pending {
            lba: 1 + self.start / bs as u64 + from as u64,
            data: &self.buf[from * bs..to * bs],
            written: Written {
                end: self.start + self.fill as u64,
                scrub_end: self.start + self.scrub as u64,
                next_seq: self.next_seq,
            },
        })
    }

    /// Records that `written` (from [`pending`](Self::pending)) is on
    /// disk and flushed; the window drops the blocks before the last
    /// partial one. Records appended after that `pending` stay pending.
    /// A token older than one already marked changes nothing.
    ///
    /// ```
    /// # use percore_disklog::{Encoder, Superblock};
    /// let mut enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
    /// enc.append(b"a").unwrap();
    /// let w = enc.pending().unwrap().written;
    /// enc.append(b"b").unwrap();
    /// enc.mark_written(w);
    /// assert_eq!(enc.durable_seq(), 1);
    /// assert_eq!(enc.pending().unwrap().written.next_seq(), 2);
    /// ```
    pub fn mark_written(&mut self, written: Written) {
        let Some(end) = written.end.checked_sub(self.start) else {
            return;
        };
        let end = end as usize;
        if end < self.durable || end > self.fill || written.next_seq < self.durable_seq {
            return;
        }
        self.durable = end;
        self.durable_seq = written.next_seq;
        if written.scrub_end >= self.start + self.scrub as u64 {
            self.scrub = 0;
        }
        let bs = self.superblock.block_size as usize;
        let keep = self.durable / bs * bs;
        if keep > 0 {
            let used = self
                .fill
                .max(self.scrub)
                .next_multiple_of(bs)
                .min(self.buf.len());
            self.buf.copy_within(keep..used, 0);
            self.buf[used - keep..used].fill(0);
            self.start += keep as u64;
            self.fill -= keep;
            self.durable -= keep;
            self.scrub = self.scrub.saturating_sub(keep);
        }
    }

    /// Records with sequence numbers below this are durable.
    ///
    /// ```
    /// # use percore_disklog::{Encoder, Superblock};
    /// let enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
    /// assert_eq!(enc.durable_seq(), 0);
    /// ```
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The sequence number the next append gets.
    ///
    /// ```
    /// # use percore_disklog::{Encoder, Superblock};
    /// let mut enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
    /// enc.append(b"").unwrap();
    /// assert_eq!(enc.next_seq(), 1);
    /// ```
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Log offset where the next record goes.
    ///
    /// ```
    /// # use percore_disklog::{Encoder, Superblock};
    /// let mut enc = Encoder::new(Superblock::new(512, 8, 1).unwrap(), 130).unwrap();
    /// enc.append(b"").unwrap();
    /// assert_eq!(enc.end(), 32);
    /// ```
    pub fn end(&self) -> u64 {
        self.start + self.fill as u64
    }
}
