//! One record on disk: a 32-byte header, the payload, zero padding to the
//! next multiple of 8 bytes.
//!
//! ```text
//! offset size field
//!  0      4   magic       "PCLR"
//!  4      4   len         payload bytes (<= the superblock's max_payload)
//!  8      8   seq         sequence number
//! 16      8   log_id      the superblock's nonce
//! 24      4   data_crc    CRC-32C of payload + padding
//! 28      4   header_crc  CRC-32C of bytes 0..28
//! 32    len   payload
//!       pad   zeros up to a multiple of 8
//! ```
//!
//! Two checksums, because they answer different questions: the header's
//! says whether `len` can be trusted to find the next record; the data's
//! says whether the payload is what was appended. The padding is covered
//! too, so every byte of a record's span belongs to exactly one checksum
//! and a flipped byte anywhere in it is attributed to that record.
//! CRC-32C (Castagnoli) is the `crc` crate's `CRC_32_ISCSI`.

use crc::{CRC_32_ISCSI, Crc, Table};

/// Bytes of a record header.
pub const HEADER_LEN: usize = 32;
/// Records start at multiples of this many bytes.
pub const RECORD_ALIGN: usize = 8;
const MAGIC: u32 = u32::from_le_bytes(*b"PCLR");

/// Slice-by-16 tables (16 KiB, built at compile time).
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// CRC-32C (Castagnoli) of `bytes`, the checksum the format uses; public
/// so a host-side check can compare payloads with what it expects.
///
/// ```
/// assert_eq!(percore_disklog::crc32c(b"123456789"), 0xe306_9283);
/// ```
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

/// A running CRC-32C, for payloads that span blocks.
pub(crate) fn crc32c_digest() -> crc::Digest<'static, u32, Table<16>> {
    CRC32C.digest()
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Bytes a record with a payload of `len` bytes occupies on disk.
///
/// ```
/// use percore_disklog::record_span;
/// assert_eq!(record_span(0), 32);
/// assert_eq!(record_span(1), 40);
/// assert_eq!(record_span(8), 40);
/// ```
pub const fn span(len: u32) -> usize {
    HEADER_LEN + (len as usize).next_multiple_of(RECORD_ALIGN)
}

/// A decoded record header whose own checksum holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: u32,
    pub(crate) seq: u64,
    pub(crate) log_id: u64,
    pub(crate) data_crc: u32,
}

impl Header {
    /// Writes the header for `payload` into `out[..HEADER_LEN]` and the
    /// payload after it; `out[HEADER_LEN + len..span]` must be zero.
    pub(crate) fn write_record(out: &mut [u8], seq: u64, log_id: u64, payload: &[u8]) {
        let len = payload.len() as u32;
        let span = span(len);
        out[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
        let data_crc = crc32c(&out[HEADER_LEN..span]);
        let h = &mut out[..HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&len.to_le_bytes());
        h[8..16].copy_from_slice(&seq.to_le_bytes());
        h[16..24].copy_from_slice(&log_id.to_le_bytes());
        h[24..28].copy_from_slice(&data_crc.to_le_bytes());
        let header_crc = crc32c(&h[..28]);
        h[28..32].copy_from_slice(&header_crc.to_le_bytes());
    }

    /// Whether `bytes` (at least 4) start with the record magic: the cheap
    /// first test when searching for a record.
    pub(crate) fn has_magic(bytes: &[u8]) -> bool {
        le_u32(bytes, 0) == MAGIC
    }

    /// Decodes a header, or `None` if the magic or its checksum is wrong.
    pub(crate) fn decode(h: &[u8; HEADER_LEN]) -> Option<Header> {
        if !Self::has_magic(h) || le_u32(h, 28) != crc32c(&h[..28]) {
            return None;
        }
        Some(Header {
            len: le_u32(h, 4),
            seq: le_u64(h, 8),
            log_id: le_u64(h, 16),
            data_crc: le_u32(h, 24),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{HEADER_LEN, Header, span};

    #[test]
    fn header_round_trips_and_rejects_every_bit_flip() {
        let payload = b"payload!!";
        let mut rec = [0u8; 64];
        Header::write_record(&mut rec, 77, 0xAB, payload);
        let raw: [u8; HEADER_LEN] = rec[..HEADER_LEN].try_into().unwrap();
        let h = Header::decode(&raw).unwrap();
        assert_eq!((h.len, h.seq, h.log_id), (9, 77, 0xAB));
        assert_eq!(h.data_crc, super::crc32c(&rec[HEADER_LEN..span(9)]));
        for bit in 0..HEADER_LEN * 8 {
            let mut bad = raw;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Header::decode(&bad), None, "bit {bit}");
        }
    }
}
