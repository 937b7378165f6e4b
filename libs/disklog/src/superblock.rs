//! Block 0 of a log region: what the log is (magic, version), its shape
//! (block size, region size, largest record) and its identity (`log_id`,
//! a nonce chosen when the log is created, carried by every record so
//! records of an earlier log in the same place are never mistaken for this
//! one's).
//!
//! ```text
//! offset size field
//!  0      8   magic        "PCDISKLG"
//!  8      4   version      1
//! 12      4   block_size   bytes, power of two >= 512
//! 16      8   log_id       nonce
//! 24      8   first_seq    sequence number of the first record
//! 32      8   blocks       region size in blocks, this one included
//! 40      4   max_payload  largest record payload, bytes
//! 44      4   crc          CRC-32C of bytes 0..44
//! ```
//!
//! The rest of block 0 is zero. The superblock is written once, when the
//! log is created, and never rewritten, so no append can tear it.

use crate::error::FormatError;
use crate::record::{HEADER_LEN, crc32c, le_u32, le_u64};

/// How many largest-record spans past a damaged spot recovery looks for
/// the next valid record.
const RESYNC_SPANS: u64 = 4;

const MAGIC: [u8; 8] = *b"PCDISKLG";
const VERSION: u32 = 1;
/// Bytes of block 0 the superblock uses.
pub const SUPERBLOCK_LEN: usize = 48;
/// The highest first sequence number a log may start at: far enough from
/// `u64::MAX` that no log (at most 2^59 records of 32 bytes) can run out.
const MAX_FIRST_SEQ: u64 = 1 << 62;
/// The payload limit [`Superblock::new`] uses unless told otherwise.
pub const DEFAULT_MAX_PAYLOAD: u32 = 64 * 1024;

/// The description of a log region, from its block 0.
///
/// ```
/// use percore_disklog::Superblock;
/// let sb = Superblock::new(512, 2048, 0xfeed).unwrap();
/// let mut block = [0u8; 512];
/// sb.encode(&mut block);
/// assert_eq!(Superblock::decode(&block), Some(sb));
/// assert_eq!(sb.capacity(), 2047 * 512);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Bytes per block: the unit of every read and write of the log.
    pub block_size: u32,
    /// Nonce identifying this log; every record carries it.
    pub log_id: u64,
    /// Sequence number of the log's first record (at most 2^62).
    pub first_seq: u64,
    /// Blocks in the region, block 0 (this superblock) included.
    pub blocks: u64,
    /// Largest payload a record may have.
    pub max_payload: u32,
}

impl Superblock {
    /// A new log of `blocks` blocks of `block_size` bytes, identified by
    /// `log_id` (pick a fresh nonce: a timestamp, a random number), with
    /// records numbered from 0 and payloads up to [`DEFAULT_MAX_PAYLOAD`].
    ///
    /// ```
    /// use percore_disklog::{FormatError, Superblock};
    /// assert_eq!(Superblock::new(500, 64, 1), Err(FormatError::BadBlockSize(500)));
    /// assert_eq!(Superblock::new(512, 1, 1), Err(FormatError::TooFewBlocks(1)));
    /// ```
    pub fn new(block_size: u32, blocks: u64, log_id: u64) -> Result<Self, FormatError> {
        Superblock {
            block_size,
            log_id,
            first_seq: 0,
            blocks,
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
        .validated()
    }

    /// The same log with another payload limit (at most 256 MiB).
    ///
    /// ```
    /// use percore_disklog::Superblock;
    /// let sb = Superblock::new(4096, 64, 1).unwrap().with_max_payload(1 << 20).unwrap();
    /// assert_eq!(sb.max_payload, 1 << 20);
    /// ```
    pub fn with_max_payload(self, max_payload: u32) -> Result<Self, FormatError> {
        Superblock {
            max_payload,
            ..self
        }
        .validated()
    }

    /// The superblock if its fields describe a possible log.
    pub(crate) fn validated(self) -> Result<Self, FormatError> {
        if self.first_seq > MAX_FIRST_SEQ {
            return Err(FormatError::BadFirstSeq(self.first_seq));
        }
        if !self.block_size.is_power_of_two() || self.block_size < 512 {
            return Err(FormatError::BadBlockSize(self.block_size));
        }
        if self.blocks < 2
            || self
                .blocks
                .checked_mul(u64::from(self.block_size))
                .is_none()
        {
            return Err(FormatError::TooFewBlocks(self.blocks));
        }
        if self.max_payload > 1 << 28 {
            return Err(FormatError::BadMaxPayload(self.max_payload));
        }
        Ok(self)
    }

    /// Bytes of records the region holds: every block but block 0.
    ///
    /// ```
    /// assert_eq!(percore_disklog::Superblock::new(4096, 3, 1).unwrap().capacity(), 8192);
    /// ```
    pub const fn capacity(&self) -> u64 {
        (self.blocks - 1) * self.block_size as u64
    }

    /// The most bytes one record occupies: header plus the largest payload,
    /// padded to 8 bytes.
    ///
    /// ```
    /// assert_eq!(percore_disklog::Superblock::new(512, 8, 1).unwrap().max_span(), 32 + 65536);
    /// ```
    pub const fn max_span(&self) -> u64 {
        crate::record::span(self.max_payload) as u64
    }

    /// How far past a damaged spot recovery searches for the next valid
    /// record: four largest-record spans, rounded up to whole blocks, plus
    /// two blocks. An [`Encoder`](crate::Encoder)'s window never exceeds
    /// it, so every byte a torn write can leave behind lies within reach of
    /// the truncation point (and gets scrubbed after it).
    ///
    /// ```
    /// let sb = percore_disklog::Superblock::new(512, 8, 1).unwrap().with_max_payload(100).unwrap();
    /// assert_eq!(sb.resync_reach(), 1024 + 1024); // 4 * 136 -> 1024, + 2 blocks
    /// ```
    pub const fn resync_reach(&self) -> u64 {
        let bs = self.block_size as u64;
        (RESYNC_SPANS * self.max_span()).next_multiple_of(bs) + 2 * bs
    }

    /// The fewest blocks an encoder window may have: the largest record
    /// plus the partial block it may start in.
    ///
    /// ```
    /// let sb = percore_disklog::Superblock::new(512, 8, 1).unwrap();
    /// assert_eq!(sb.min_window_blocks(), 130);
    /// ```
    pub const fn min_window_blocks(&self) -> usize {
        self.max_span().div_ceil(self.block_size as u64) as usize + 1
    }

    /// The most blocks an encoder window may have:
    /// [`resync_reach`](Self::resync_reach) in blocks.
    ///
    /// ```
    /// let sb = percore_disklog::Superblock::new(4096, 8, 1).unwrap();
    /// assert_eq!(sb.max_window_blocks(), 67);
    /// ```
    pub const fn max_window_blocks(&self) -> usize {
        (self.resync_reach() / self.block_size as u64) as usize
    }

    /// Writes the superblock into the start of `block` (at least 48 bytes;
    /// the caller zeroes the rest of block 0).
    ///
    /// ```
    /// let mut b = [0u8; 48];
    /// percore_disklog::Superblock::new(512, 8, 1).unwrap().encode(&mut b);
    /// assert_eq!(&b[..8], b"PCDISKLG");
    /// ```
    pub fn encode(&self, block: &mut [u8]) {
        let b = &mut block[..SUPERBLOCK_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.block_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.log_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        b[32..40].copy_from_slice(&self.blocks.to_le_bytes());
        b[40..44].copy_from_slice(&self.max_payload.to_le_bytes());
        let crc = crc32c(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
    }

    /// Reads a superblock, or `None` if `block` does not start with a valid
    /// one (wrong magic or version, bad checksum, impossible shape).
    ///
    /// ```
    /// assert_eq!(percore_disklog::Superblock::decode(&[0u8; 512]), None);
    /// ```
    pub fn decode(block: &[u8]) -> Option<Self> {
        let b = block.get(..SUPERBLOCK_LEN)?;
        if b[0..8] != MAGIC || le_u32(b, 8) != VERSION || le_u32(b, 44) != crc32c(&b[..44]) {
            return None;
        }
        Superblock {
            block_size: le_u32(b, 12),
            log_id: le_u64(b, 16),
            first_seq: le_u64(b, 24),
            blocks: le_u64(b, 32),
            max_payload: le_u32(b, 40),
        }
        .validated()
        .ok()
        .filter(|sb| sb.block_size as usize >= SUPERBLOCK_LEN.max(HEADER_LEN))
    }
}

#[cfg(test)]
mod tests {
    use super::{SUPERBLOCK_LEN, Superblock};

    #[test]
    fn decode_rejects_every_bit_flip() {
        let sb = Superblock::new(4096, 100, 0x1234).unwrap();
        let mut block = [0u8; 4096];
        sb.encode(&mut block);
        assert_eq!(Superblock::decode(&block), Some(sb));
        for bit in 0..SUPERBLOCK_LEN * 8 {
            let mut bad = block;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Superblock::decode(&bad), None, "bit {bit}");
        }
    }
}
