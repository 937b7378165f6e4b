//! Reading records back, from a sequence number on.

use alloc::vec;
use alloc::vec::Vec;

use crate::block::{AsyncBlockRead, BlockRead, now};
use crate::error::{OpenError, ReadError, TornTail};
use crate::scan::{Event, Scanner};
use crate::superblock::Superblock;

/// A valid record.
///
/// ```
/// let r = percore_disklog::Record { seq: 3, offset: 96, payload: b"x".to_vec() };
/// assert_eq!(r.payload, b"x");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// Log offset of its header.
    pub offset: u64,
    /// What was appended.
    pub payload: Vec<u8>,
}

/// A record boundary: where the record with sequence number `seq` starts
/// (or will start). [`Reader::position`] gives one, [`Reader::resume`]
/// goes on from it without scanning from the first record: the way to
/// follow a log as it grows.
///
/// ```
/// let p = percore_disklog::Position { offset: 40, seq: 1 };
/// assert_eq!((p.offset, p.seq), (40, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Log offset of the record's header.
    pub offset: u64,
    /// Its sequence number.
    pub seq: u64,
}

/// The records of a log with sequence numbers from `from_seq` on, in order.
/// Corrupt records come as [`ReadError::Corrupt`] (never as data) and the
/// reader goes on after them; it ends at the log's end.
///
/// It scans from the first record (there is no index), checking every
/// record on the way exactly as [`recover`](crate::recover) does. This is
/// the blocking face of [`AsyncReader`].
///
/// ```
/// use percore_disklog::{Encoder, Reader, SliceDisk, Superblock};
/// let sb = Superblock::new(512, 16, 7).unwrap();
/// let mut image = vec![0u8; 16 * 512];
/// sb.encode(&mut image);
/// let mut enc = Encoder::new(sb, 130).unwrap();
/// for word in ["a", "bb", "ccc"] {
///     enc.append(word.as_bytes()).unwrap();
/// }
/// let p = enc.pending().unwrap();
/// image[p.lba as usize * 512..][..p.data.len()].copy_from_slice(p.data);
/// let mut reader = Reader::new(SliceDisk::new(&image, 512), 1).unwrap();
/// let got: Vec<_> = reader.by_ref().map(|r| r.unwrap().payload).collect();
/// assert_eq!(got, [b"bb".to_vec(), b"ccc".to_vec()]);
/// assert_eq!(reader.tail(), None);
/// ```
pub struct Reader<R: BlockRead>(AsyncReader<R>);

impl<R: BlockRead> core::fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

impl<R: BlockRead> Reader<R> {
    /// Opens the log on `dev` for reading from `from_seq` on.
    ///
    /// ```
    /// use percore_disklog::{OpenError, Reader, SliceDisk};
    /// let blank = [0u8; 1024];
    /// assert!(matches!(Reader::new(SliceDisk::new(&blank, 512), 0), Err(OpenError::NoSuperblock)));
    /// ```
    pub fn new(dev: R, from_seq: u64) -> Result<Self, OpenError<R::Error>> {
        now(AsyncReader::new(dev, from_seq)).map(Reader)
    }

    /// Opens the log on `dev` for reading from `position` on (a position
    /// an earlier reader returned), without scanning what comes before.
    ///
    /// ```
    /// use percore_disklog::{Encoder, Reader, SliceDisk, Superblock};
    /// let sb = Superblock::new(512, 16, 7).unwrap();
    /// let mut image = vec![0u8; 16 * 512];
    /// sb.encode(&mut image);
    /// let mut enc = Encoder::new(sb, 130).unwrap();
    /// enc.append(b"one").unwrap();
    /// let p = enc.pending().unwrap();
    /// image[p.lba as usize * 512..][..p.data.len()].copy_from_slice(p.data);
    /// let w = p.written;
    /// enc.mark_written(w);
    /// // Read to the end, remember where it is.
    /// let mut reader = Reader::new(SliceDisk::new(&image, 512), 0).unwrap();
    /// assert_eq!(reader.by_ref().count(), 1);
    /// let end = reader.position();
    /// // The log grows; follow it from there.
    /// enc.append(b"two").unwrap();
    /// let p = enc.pending().unwrap();
    /// image[p.lba as usize * 512..][..p.data.len()].copy_from_slice(p.data);
    /// let mut reader = Reader::resume(SliceDisk::new(&image, 512), end).unwrap();
    /// assert_eq!(reader.next().unwrap().unwrap().payload, b"two");
    /// ```
    pub fn resume(dev: R, position: Position) -> Result<Self, OpenError<R::Error>> {
        now(AsyncReader::resume(dev, position)).map(Reader)
    }

    /// Where the next record the reader would look at starts; after the
    /// end, where the log ends (the next append's position).
    ///
    /// ```
    /// # use percore_disklog::{Position, Reader, SliceDisk, Superblock};
    /// # let sb = Superblock::new(512, 4, 9).unwrap();
    /// # let mut image = vec![0u8; 2048];
    /// # sb.encode(&mut image);
    /// let reader = Reader::new(SliceDisk::new(&image, 512), 0).unwrap();
    /// assert_eq!(reader.position(), Position { offset: 0, seq: 0 });
    /// ```
    pub fn position(&self) -> Position {
        self.0.position()
    }

    /// The log's superblock.
    ///
    /// ```
    /// # use percore_disklog::{Reader, SliceDisk, Superblock};
    /// # let sb = Superblock::new(512, 4, 9).unwrap();
    /// # let mut image = vec![0u8; 2048];
    /// # sb.encode(&mut image);
    /// let reader = Reader::new(SliceDisk::new(&image, 512), 0).unwrap();
    /// assert_eq!(reader.superblock().log_id, 9);
    /// ```
    pub fn superblock(&self) -> &Superblock {
        self.0.superblock()
    }

    /// The torn tail the log ended with, once the reader has reached the
    /// end (`None` before, or if the log ended cleanly).
    ///
    /// ```
    /// # use percore_disklog::{Reader, SliceDisk, Superblock};
    /// # let sb = Superblock::new(512, 4, 9).unwrap();
    /// # let mut image = vec![0u8; 2048];
    /// # sb.encode(&mut image);
    /// image[512] = 0xff; // garbage where the first record would be
    /// let mut reader = Reader::new(SliceDisk::new(&image, 512), 0).unwrap();
    /// assert!(reader.next().is_none());
    /// assert_eq!(reader.tail().unwrap().bytes, 1);
    /// ```
    pub fn tail(&self) -> Option<TornTail> {
        self.0.tail()
    }
}

impl<R: BlockRead> Iterator for Reader<R> {
    type Item = Result<Record, ReadError<R::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        now(self.0.next())
    }
}

/// [`Reader`] over a device whose reads complete later (the kernel's):
/// the same records, errors and positions, from `async` calls; and
/// [`seek`](Self::seek), to follow a log that grows while it is read.
///
/// ```
/// use percore_disklog::{AsyncReader, Encoder, SliceDisk, Superblock};
/// let sb = Superblock::new(512, 16, 7).unwrap();
/// let mut image = vec![0u8; 16 * 512];
/// sb.encode(&mut image);
/// let mut enc = Encoder::new(sb, 130).unwrap();
/// enc.append(b"one").unwrap();
/// let p = enc.pending().unwrap();
/// image[p.lba as usize * 512..][..p.data.len()].copy_from_slice(p.data);
/// futures_executor::block_on(async {
///     let mut reader = AsyncReader::new(SliceDisk::new(&image, 512), 0).await.unwrap();
///     assert_eq!(reader.next().await.unwrap().unwrap().payload, b"one");
///     assert!(reader.next().await.is_none());
/// });
/// ```
pub struct AsyncReader<R: AsyncBlockRead> {
    scanner: Scanner<R>,
    from_seq: u64,
    done: bool,
    tail: Option<TornTail>,
}

impl<R: AsyncBlockRead> core::fmt::Debug for AsyncReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader")
            .field("position", &self.position())
            .field("from_seq", &self.from_seq)
            .field("done", &self.done)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncBlockRead> AsyncReader<R> {
    /// Opens the log on `dev` for reading from `from_seq` on
    /// ([`Reader::new`]).
    pub async fn new(dev: R, from_seq: u64) -> Result<Self, OpenError<R::Error>> {
        Ok(AsyncReader {
            scanner: Scanner::open(dev).await?,
            from_seq,
            done: false,
            tail: None,
        })
    }

    /// Opens the log on `dev` for reading from `position` on
    /// ([`Reader::resume`]).
    pub async fn resume(dev: R, position: Position) -> Result<Self, OpenError<R::Error>> {
        let mut reader = AsyncReader::new(dev, position.seq).await?;
        reader.seek(position)?;
        Ok(reader)
    }

    /// Goes on from `position` (usually [`position`](Self::position), once
    /// the log has grown), forgetting the end and any blocks read before:
    /// what the device holds now is read.
    ///
    /// ```
    /// # use percore_disklog::{AsyncReader, OpenError, Position, SliceDisk, Superblock};
    /// # let mut image = vec![0u8; 2048];
    /// # Superblock::new(512, 4, 9).unwrap().encode(&mut image);
    /// futures_executor::block_on(async {
    ///     let mut reader = AsyncReader::new(SliceDisk::new(&image, 512), 0).await.unwrap();
    ///     let odd = Position { offset: 3, seq: 0 };
    ///     assert_eq!(reader.seek(odd), Err(OpenError::BadPosition { offset: 3 }));
    /// });
    /// ```
    pub fn seek(&mut self, position: Position) -> Result<(), OpenError<R::Error>> {
        self.scanner.seek(position.offset, position.seq)?;
        self.from_seq = self.from_seq.max(position.seq);
        self.done = false;
        self.tail = None;
        Ok(())
    }

    /// [`Reader::position`].
    pub fn position(&self) -> Position {
        let (offset, seq) = self.scanner.position();
        Position { offset, seq }
    }

    /// [`Reader::superblock`].
    pub fn superblock(&self) -> &Superblock {
        self.scanner.superblock()
    }

    /// [`Reader::tail`].
    pub fn tail(&self) -> Option<TornTail> {
        self.tail
    }

    /// The next record, corrupt range or device error; `None` at the end
    /// ([`Reader`]'s `Iterator::next`).
    pub async fn next(&mut self) -> Option<Result<Record, ReadError<R::Error>>> {
        while !self.done {
            let event = self.scanner.next_event().await;
            match event {
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadError::Io(e)));
                }
                Ok(Event::Record { seq, offset, len }) if seq >= self.from_seq => {
                    let mut payload = vec![0; len as usize];
                    let at = offset + crate::record::HEADER_LEN as u64;
                    return Some(match self.scanner.cursor().read(at, &mut payload).await {
                        Ok(()) => Ok(Record {
                            seq,
                            offset,
                            payload,
                        }),
                        Err(e) => {
                            self.done = true;
                            Err(ReadError::Io(e))
                        }
                    });
                }
                Ok(Event::Corrupt(lost)) if lost.last_seq >= self.from_seq => {
                    return Some(Err(ReadError::Corrupt(lost)));
                }
                Ok(Event::Record { .. } | Event::Corrupt(_)) => {}
                Ok(Event::End(tail)) => {
                    self.tail = tail;
                    self.done = true;
                }
            }
        }
        None
    }
}
