//! The on-disk format of percore's append-only log ("disk streams"), with
//! no hardware knowledge: the kernel appends through it onto virtio-blk,
//! and the host reads a disk image with the very same code.
//!
//! - [`Superblock`] (block 0): block size, region size, payload limit, and
//!   the log's nonce.
//! - Records ([`record_span`]): a 32-byte header (magic, length, sequence
//!   number, log nonce, payload CRC-32C, header CRC-32C), the payload,
//!   zero padding to 8 bytes; packed one after another over blocks 1...
//! - [`Encoder`]: append records (sequence numbers assigned in order) into
//!   a preallocated window of blocks; [`Encoder::pending`] says which
//!   blocks to write for durability.
//! - [`recover`] over any [`BlockRead`]: scan to the last valid record;
//!   report records corrupt in the middle by sequence number ([`Corrupt`])
//!   and a torn or corrupt tail by size ([`TornTail`]); the tail is cut.
//! - [`Reader`]: records from a sequence number on; corrupt ones are
//!   errors, never data.
//!
//! ```
//! use percore_disklog::{Encoder, Reader, SliceDisk, Superblock, recover};
//! let sb = Superblock::new(512, 256, 0x5eed).unwrap();
//! let mut disk = vec![0u8; 256 * 512];
//! sb.encode(&mut disk);
//! let mut enc = Encoder::new(sb, 160).unwrap();
//! for i in 0..10u32 {
//!     enc.append(&i.to_le_bytes()).unwrap();
//! }
//! let p = enc.pending().unwrap();
//! disk[p.lba as usize * 512..][..p.data.len()].copy_from_slice(p.data);
//! let w = p.written;
//! enc.mark_written(w);
//!
//! let r = recover(SliceDisk::new(&disk, 512)).unwrap();
//! assert_eq!((r.records, r.next_seq), (10, 10));
//! let seven = Reader::new(SliceDisk::new(&disk, 512), 7).unwrap().next().unwrap().unwrap();
//! assert_eq!(seven.payload, 7u32.to_le_bytes());
//! ```

#![no_std]

extern crate alloc;

mod block;
mod encoder;
mod error;
mod reader;
mod record;
mod recovery;
mod scan;
mod superblock;

pub use block::{AsyncBlockRead, BlockRead, OutOfRange, SliceDisk};
pub use encoder::{Encoder, Pending, Written};
pub use error::{AppendError, Corrupt, FormatError, OpenError, ReadError, TornTail};
pub use reader::{AsyncReader, Position, Reader, Record};
pub use record::{HEADER_LEN, RECORD_ALIGN, crc32c, span as record_span};
pub use recovery::{Recovery, recover, recover_async};
pub use superblock::{DEFAULT_MAX_PAYLOAD, SUPERBLOCK_LEN, Superblock};
