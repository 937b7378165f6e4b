//! The scanner both recovery and the reader run: it walks records from
//! the start of the log, checking each completely, and says what it found
//! at each step: a valid record, a run of corrupt records (valid ones
//! follow), or the end of the log (with the torn tail, if any).
//!
//! A record at offset `p` is valid when its header decodes (magic, header
//! checksum), it carries this log's `log_id` and the expected sequence
//! number, its length is within `max_payload` and the region, and its
//! payload checksum holds.
//!
//! When the record at `p` is not valid, the scanner searches forward, at
//! every 8-byte boundary up to [`Superblock::resync_reach`] away (four
//! largest-record spans and two blocks), for the
//! first valid record `s` that could follow the lost ones: a higher
//! sequence number, with at least 32 and at most `max_span` bytes per
//! missing record between `p` and it. Found: the records in between are
//! reported corrupt (by sequence number) and the scan goes on from there.
//! Not found: the log ends at `p`, and the bytes from `p` to the last
//! non-zero byte of the searched window are the torn tail.
//!
//! Why that is sound: an append only ever writes at the end of the log
//! (rewriting the already-durable bytes of its first block unchanged), and
//! one write is at most an encoder window, which is never longer than the
//! search reach; so a crash damages only records after the last durable
//! one, and every byte it can leave lies within reach of the truncation
//! point: damage with valid records after it is in the middle, damage
//! without is the tail, and nothing valid is left beyond the tail (the
//! resumed encoder's first write zeroes the tail's bytes, so a later
//! recovery cannot mistake them, or stale records among them, for data).
//! Records that were never acknowledged may still land out of order (a
//! multi-block write whose later blocks landed and earlier ones did not):
//! that reads as a corrupt record followed by a valid one, and is reported
//! as such; acknowledged records are never affected.

use crate::block::{AsyncBlockRead, Cursor};
use crate::error::{Corrupt, OpenError, TornTail};
use crate::record::{HEADER_LEN, Header, RECORD_ALIGN, crc32c_digest, span};
use crate::superblock::Superblock;

/// One step of a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A valid record with a payload of `len` bytes at `offset`.
    Record { seq: u64, offset: u64, len: u32 },
    /// Lost records, valid ones after them.
    Corrupt(Corrupt),
    /// The end of the log; the scanner yields only `End` from now on.
    End(Option<TornTail>),
}

pub(crate) struct Scanner<R> {
    cursor: Cursor<R>,
    superblock: Superblock,
    /// Where the next record should start.
    offset: u64,
    /// Its sequence number.
    seq: u64,
    end: Option<Option<TornTail>>,
}

impl<R: AsyncBlockRead> Scanner<R> {
    /// Reads and checks the superblock; the scan starts at the first record.
    pub(crate) async fn open(mut dev: R) -> Result<Self, OpenError<R::Error>> {
        let device_bs = dev.block_size();
        let mut block = alloc::vec![0; device_bs as usize];
        dev.read_blocks(0, &mut block)
            .await
            .map_err(OpenError::Io)?;
        let superblock = Superblock::decode(&block).ok_or(OpenError::NoSuperblock)?;
        if superblock.block_size != device_bs {
            return Err(OpenError::BlockSize {
                log: superblock.block_size,
                device: device_bs,
            });
        }
        if superblock.blocks > dev.block_count() {
            return Err(OpenError::RegionTooSmall {
                log: superblock.blocks,
                device: dev.block_count(),
            });
        }
        Ok(Scanner {
            cursor: Cursor::new(dev, superblock.capacity()),
            superblock,
            offset: 0,
            seq: superblock.first_seq,
            end: None,
        })
    }

    /// Moves the scan to a record boundary: where a record with sequence
    /// number `seq` starts (or would start). Cached blocks are dropped, so
    /// what the device holds now is read (the way to follow a growing log).
    pub(crate) fn seek(&mut self, offset: u64, seq: u64) -> Result<(), OpenError<R::Error>> {
        if !offset.is_multiple_of(crate::record::RECORD_ALIGN as u64)
            || offset > self.cursor.capacity()
        {
            return Err(OpenError::BadPosition { offset });
        }
        self.offset = offset;
        self.seq = seq;
        self.end = None;
        self.cursor.forget();
        Ok(())
    }

    pub(crate) fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// Where the next record goes (after `End`: where the log ends), and
    /// its sequence number.
    pub(crate) fn position(&self) -> (u64, u64) {
        (self.offset, self.seq)
    }

    pub(crate) fn cursor(&mut self) -> &mut Cursor<R> {
        &mut self.cursor
    }

    /// The next step of the scan.
    pub(crate) async fn next_event(&mut self) -> Result<Event, R::Error> {
        if let Some(tail) = self.end {
            return Ok(Event::End(tail));
        }
        let p = self.offset;
        if let Some(h) = self.valid_at(p).await?
            && h.seq == self.seq
            && let Some(next) = h.seq.checked_add(1)
        {
            self.offset = p + span(h.len) as u64;
            self.seq = next;
            return Ok(Event::Record {
                seq: h.seq,
                offset: p,
                len: h.len,
            });
        }
        match self.resync(p).await? {
            Some((q, s)) => {
                let lost = Corrupt {
                    first_seq: self.seq,
                    last_seq: s - 1,
                    offset: p,
                    bytes: q - p,
                };
                self.offset = q;
                self.seq = s;
                Ok(Event::Corrupt(lost))
            }
            None => {
                let bytes = self.garbage_after(p).await?;
                let tail = (bytes > 0).then_some(TornTail { offset: p, bytes });
                self.end = Some(tail);
                Ok(Event::End(tail))
            }
        }
    }

    /// The header at `p` if a complete, intact record of this log is there
    /// (any sequence number).
    async fn valid_at(&mut self, p: u64) -> Result<Option<Header>, R::Error> {
        let capacity = self.cursor.capacity();
        if p + HEADER_LEN as u64 > capacity {
            return Ok(None);
        }
        let mut raw = [0u8; HEADER_LEN];
        self.cursor.read(p, &mut raw).await?;
        let Some(h) = Header::decode(&raw) else {
            return Ok(None);
        };
        let span = span(h.len) as u64;
        if h.log_id != self.superblock.log_id
            || h.len > self.superblock.max_payload
            || p + span > capacity
        {
            return Ok(None);
        }
        let mut digest = crc32c_digest();
        self.cursor
            .for_each(p + HEADER_LEN as u64, span - HEADER_LEN as u64, |piece| {
                digest.update(piece)
            })
            .await?;
        Ok((digest.finalize() == h.data_crc).then_some(h))
    }

    /// End of the window searched past a damaged spot at `p`.
    fn window_end(&self, p: u64) -> u64 {
        (p + self.superblock.resync_reach()).min(self.cursor.capacity())
    }

    /// The first valid record after `p` that can follow the records lost
    /// at `p`: its offset and sequence number.
    async fn resync(&mut self, p: u64) -> Result<Option<(u64, u64)>, R::Error> {
        let end = self.window_end(p);
        let max_span = self.superblock.max_span();
        let mut q = p + RECORD_ALIGN as u64;
        while q + HEADER_LEN as u64 <= end {
            let mut magic = [0u8; 4];
            self.cursor.read(q, &mut magic).await?;
            if Header::has_magic(&magic)
                && let Some(h) = self.valid_at(q).await?
            {
                let lost = h.seq.wrapping_sub(self.seq);
                let gap = q - p;
                if h.seq > self.seq
                    && lost.saturating_mul(HEADER_LEN as u64) <= gap
                    && gap <= lost.saturating_mul(max_span)
                {
                    return Ok(Some((q, h.seq)));
                }
            }
            q += RECORD_ALIGN as u64;
        }
        Ok(None)
    }

    /// Bytes from `p` to the last non-zero byte of the window after it.
    async fn garbage_after(&mut self, p: u64) -> Result<u64, R::Error> {
        let end = self.window_end(p);
        let (mut at, mut last) = (p, p);
        self.cursor
            .for_each(p, end - p, |piece| {
                if let Some(i) = piece.iter().rposition(|&b| b != 0) {
                    last = at + i as u64 + 1;
                }
                at += piece.len() as u64;
            })
            .await?;
        Ok(last - p)
    }
}
