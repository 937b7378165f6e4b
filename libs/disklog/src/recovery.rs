//! Opening a log after a crash (or a clean stop): scan to the last valid
//! record, collect what was lost, and hand the encoder where to go on.

use alloc::vec;
use alloc::vec::Vec;

use crate::block::{AsyncBlockRead, BlockRead, now};
use crate::error::{Corrupt, OpenError, TornTail};
use crate::scan::{Event, Scanner};
use crate::superblock::Superblock;

/// What a scan of the whole log found.
///
/// ```
/// use percore_disklog::{Encoder, SliceDisk, Superblock, recover};
/// let sb = Superblock::new(512, 16, 7).unwrap();
/// let mut image = vec![0u8; 16 * 512];
/// sb.encode(&mut image);
/// let mut enc = Encoder::new(sb, 130).unwrap();
/// enc.append(b"hello").unwrap();
/// let pending = enc.pending().unwrap();
/// let at = pending.lba as usize * 512;
/// image[at..at + pending.data.len()].copy_from_slice(pending.data);
/// let r = recover(SliceDisk::new(&image, 512)).unwrap();
/// assert_eq!((r.records, r.next_seq, r.end), (1, 1, 40));
/// assert!(r.corrupt.is_empty() && r.tail.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The log's superblock.
    pub superblock: Superblock,
    /// Valid records found.
    pub records: u64,
    /// Sequence number the next append gets.
    pub next_seq: u64,
    /// Log offset where the next record goes: the end of the last valid
    /// record (the truncation point when the tail was torn).
    pub end: u64,
    /// Records lost in the middle of the log, in log order.
    pub corrupt: Vec<Corrupt>,
    /// The torn tail dropped at `end`, if any.
    pub tail: Option<TornTail>,
    /// The block holding `end`, with the bytes after `end` zeroed: the
    /// encoder rewrites it with the next records.
    pub(crate) tail_block: Vec<u8>,
}

/// Scans the log on `dev` from its first record to its end: every record
/// is checked, corrupt ones in the middle are listed by sequence number,
/// a torn or corrupt tail is measured and cut off (nothing is written:
/// [`Encoder::resume`](crate::Encoder::resume) overwrites it).
///
/// ```
/// use percore_disklog::{SliceDisk, Superblock, recover};
/// let sb = Superblock::new(512, 8, 1).unwrap();
/// let mut image = vec![0u8; 8 * 512];
/// sb.encode(&mut image);
/// let r = recover(SliceDisk::new(&image, 512)).unwrap();
/// assert_eq!((r.records, r.end, r.tail), (0, 0, None));
/// ```
pub fn recover<R: BlockRead>(dev: R) -> Result<Recovery, OpenError<R::Error>> {
    now(recover_async(dev))
}

/// [`recover`] over a device whose reads complete later (the kernel's).
///
/// ```
/// use percore_disklog::{SliceDisk, Superblock, recover, recover_async};
/// # let mut image = vec![0u8; 2048];
/// # Superblock::new(512, 4, 1).unwrap().encode(&mut image);
/// // Any `BlockRead` is also an `AsyncBlockRead` whose reads are ready at once.
/// let disk = SliceDisk::new(&image, 512);
/// assert_eq!(futures_executor::block_on(recover_async(disk)), recover(disk));
/// ```
pub async fn recover_async<R: AsyncBlockRead>(dev: R) -> Result<Recovery, OpenError<R::Error>> {
    let mut scanner = Scanner::open(dev).await?;
    let mut records = 0;
    let mut corrupt = Vec::new();
    let tail = loop {
        match scanner.next_event().await.map_err(OpenError::Io)? {
            Event::Record { .. } => records += 1,
            Event::Corrupt(lost) => corrupt.push(lost),
            Event::End(tail) => break tail,
        }
    };
    let (end, next_seq) = scanner.position();
    let superblock = *scanner.superblock();
    let bs = superblock.block_size as u64;
    let mut tail_block = vec![0; bs as usize];
    let keep = (end % bs) as usize;
    if keep > 0 {
        scanner
            .cursor()
            .read(end - keep as u64, &mut tail_block[..keep])
            .await
            .map_err(OpenError::Io)?;
    }
    Ok(Recovery {
        superblock,
        records,
        next_seq,
        end,
        corrupt,
        tail,
        tail_block,
    })
}
