//! [`Log::stream`]'s state: a reader of the log's region that yields only
//! durable records, and waits at the end of the durable log for more.

use percore_disklog::{AsyncReader, Corrupt, Position, ReadError, Record};

use super::{Log, Region};
use crate::storage::{BlockDevice, IoError};

/// The state of a [`Log::stream`].
pub(super) struct Follower<'a, D: BlockDevice> {
    log: &'a Log<D>,
    from: u64,
    reader: Option<AsyncReader<Region<'a, D>>>,
    /// The durable sequence number when the reader's cached blocks were
    /// read: records below it are in them as they are on disk; after it,
    /// what it cached may be stale.
    cached_durable: u64,
    done: bool,
}

impl<'a, D: BlockDevice> Follower<'a, D> {
    pub(super) fn new(log: &'a Log<D>, from: u64) -> Self {
        Follower {
            log,
            from,
            reader: None,
            cached_durable: 0,
            done: false,
        }
    }

    /// The next durable record at or after `from` (see [`Log::stream`]).
    pub(super) async fn next(&mut self) -> Option<Result<Record, ReadError<IoError>>> {
        if self.done {
            return None;
        }
        let item = self.step().await;
        if matches!(item, Err(ReadError::Io(_))) {
            self.done = true;
        }
        Some(item)
    }

    async fn step(&mut self) -> Result<Record, ReadError<IoError>> {
        if self.reader.is_none() {
            let reader = AsyncReader::new(self.log.region(), self.from).await;
            // The log opened, so its superblock was there: one that no
            // longer reads is the device's doing.
            self.reader = Some(reader.map_err(|e| match e {
                percore_disklog::OpenError::Io(e) => ReadError::Io(e),
                _ => ReadError::Io(IoError::Misbehaving),
            })?);
        }
        let log = self.log;
        let Some(reader) = self.reader.as_mut() else {
            unreachable!("set above");
        };
        loop {
            // What was durable before the read: the reader may see less
            // only if the disk lost acknowledged records.
            let (durable_seq, durable_end) = log.durable();
            let before = reader.position();
            if durable_seq != self.cached_durable {
                // Records became durable since the reader cached its
                // blocks: read them again, as they are now.
                reader
                    .seek(before)
                    .map_err(|_| ReadError::Io(IoError::Misbehaving))?;
                self.cached_durable = durable_seq;
            }
            let item = if before.seq < durable_seq || before.seq < self.from {
                reader.next().await
            } else {
                None
            };
            let back = match item {
                Some(Ok(record)) if record.seq < durable_seq => return Ok(record),
                Some(Err(ReadError::Corrupt(lost))) if lost.first_seq < durable_seq => {
                    return Err(ReadError::Corrupt(lost));
                }
                Some(Err(e @ ReadError::Io(_))) => return Err(e),
                // Not durable yet: read it again once it is.
                Some(Ok(record)) => Position {
                    offset: record.offset,
                    seq: record.seq,
                },
                Some(Err(ReadError::Corrupt(lost))) => Position {
                    offset: lost.offset,
                    seq: lost.first_seq,
                },
                None => {
                    let end = reader.position();
                    if end.seq < durable_seq {
                        // The log on disk ends before records that were
                        // acknowledged: they are lost; say which (if any
                        // was asked for) and go on after them.
                        let lost = Corrupt {
                            first_seq: end.seq,
                            last_seq: durable_seq - 1,
                            offset: end.offset,
                            bytes: durable_end.saturating_sub(end.offset),
                        };
                        let after = Position {
                            offset: durable_end,
                            seq: durable_seq,
                        };
                        reader
                            .seek(after)
                            .map_err(|_| ReadError::Io(IoError::Misbehaving))?;
                        if lost.last_seq >= self.from {
                            return Err(ReadError::Corrupt(lost));
                        }
                        continue;
                    }
                    end
                }
            };
            log.wait_until(|s| s.encoder.durable_seq() > durable_seq)
                .await;
            // (The next turn reads again from here, the cache forgotten.)
            reader
                .seek(back)
                .map_err(|_| ReadError::Io(IoError::Misbehaving))?;
        }
    }
}
