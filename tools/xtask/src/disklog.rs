//! `cargo xtask disklog`: the disk log in an image file, read on the host
//! with `percore-disklog` — the same recovery and reader the kernel runs.
//!
//! ```text
//! cargo xtask disklog FILE [--offset BYTES] [--from SEQ] [--payload] [--check]
//! cargo xtask disklog --create FILE [--size 64M] [--block-size 512] [--max-payload BYTES] [--offset BYTES]
//! ```
//!
//! Reading prints, one item per line (machine-readable, `key=value`):
//!
//! ```text
//! log log_id=0x... block_size=512 blocks=N max_payload=M first_seq=S
//! record seq=S offset=O len=L crc32c=0x... head=HEX       (first 16 bytes; --payload: all)
//! corrupt first_seq=A last_seq=B offset=O bytes=N
//! summary records=N next_seq=S end=O corrupt=C tail_offset=O tail_bytes=N
//! ```
//!
//! `--offset` is where the log's region starts in the file (the kernel
//! opens a log on a region of a disk). With `--check` the command fails
//! when records in the middle are corrupt; a torn tail (an unflushed write
//! cut by a crash, never acknowledged) is reported but is not a failure.
//! `--create` makes a new, empty log of `--size` bytes at `--offset` in
//! FILE (created or extended as needed, sparse): the region zeroed, the
//! superblock in its first block; bytes outside the region are kept.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use percore_disklog::{BlockRead, ReadError, Reader, Superblock, TornTail, crc32c, recover};

use crate::args::Args;
use crate::error::Error;

/// Payload bytes shown per record without `--payload`.
const HEAD_BYTES: usize = 16;

/// A region of an image file, read in blocks.
pub struct FileRegion {
    file: File,
    offset: u64,
    block_size: u32,
    blocks: u64,
}

impl BlockRead for FileRegion {
    type Error = std::io::Error;
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(
            self.offset + lba * u64::from(self.block_size),
        ))?;
        self.file.read_exact(buf)
    }
}

/// What to show of a log.
pub struct Show {
    pub offset: u64,
    pub from: u64,
    pub payload: bool,
}

/// What a read found (the summary line).
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub next_seq: u64,
    /// Records lost in the middle.
    pub corrupt: u64,
    pub tail: Option<TornTail>,
}

/// `cargo xtask disklog ...`
pub fn run(args: &mut Args) -> Result<(), Error> {
    if let Some(path) = args.option::<String>("--create")? {
        let size = args.option::<String>("--size")?.unwrap_or("64M".into());
        let size = parse_size(&size)?;
        let block_size = args.option::<u32>("--block-size")?.unwrap_or(512);
        let max_payload = args.option::<u32>("--max-payload")?;
        let offset = args.option::<u64>("--offset")?.unwrap_or(0);
        std::mem::take(args).finish()?;
        let sb = create(Path::new(&path), offset, size, block_size, max_payload)?;
        println!(
            "created a log in {path}: {} blocks of {} bytes at offset {offset}, log_id {:#x}, records up to {} bytes",
            sb.blocks, sb.block_size, sb.log_id, sb.max_payload
        );
        return Ok(());
    }
    let show = Show {
        offset: args.option("--offset")?.unwrap_or(0),
        from: args.option("--from")?.unwrap_or(0),
        payload: args.flag("--payload"),
    };
    let check = args.flag("--check");
    let path = args
        .next_positional()
        .ok_or_else(|| Error::Usage("disklog needs an image FILE (or --create FILE)".into()))?;
    std::mem::take(args).finish()?;
    let summary = print(Path::new(&path), &show, &mut std::io::stdout().lock())?;
    if check && summary.corrupt > 0 {
        return Err(Error::Other(format!(
            "{path}: {} corrupt records in the log",
            summary.corrupt
        )));
    }
    Ok(())
}

/// `64M`, `4K`, `1G` or a byte count.
fn parse_size(text: &str) -> Result<u64, Error> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, 'K' | 'k')) => (&text[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&text[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| Error::Usage(format!("invalid size `{text}` (e.g. 64M)")))
}

/// Makes a new log at `offset` of `path` in a region of `size` bytes: the
/// region zeroed, the superblock in its first block (the file grows to hold
/// the region; its bytes outside it are kept).
pub fn create(
    path: &Path,
    offset: u64,
    size: u64,
    block_size: u32,
    max_payload: Option<u32>,
) -> Result<Superblock, Error> {
    let log_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let bad = |e: percore_disklog::FormatError| Error::Usage(format!("cannot make that log: {e}"));
    let mut sb = Superblock::new(block_size, size / u64::from(block_size), log_id).map_err(bad)?;
    if let Some(max) = max_payload {
        sb = sb.with_max_payload(max).map_err(bad)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    let end = offset + sb.blocks * u64::from(block_size);
    let old_len = file.metadata()?.len();
    if old_len < end {
        file.set_len(end)?;
    }
    // The region is zeroed where the file had bytes (the rest is sparse
    // zeros already): whatever was there would read as a torn tail.
    let zeros = vec![0u8; 1 << 20];
    file.seek(SeekFrom::Start(offset))?;
    let mut at = offset;
    while at < old_len.min(end) {
        let n = (old_len.min(end) - at).min(zeros.len() as u64);
        file.write_all(&zeros[..n as usize])?;
        at += n;
    }
    let mut block = vec![0u8; block_size as usize];
    sb.encode(&mut block);
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&block)?;
    file.sync_all()?;
    Ok(sb)
}

/// Opens the log region at `offset` of `path`: the superblock (in its
/// first 512 bytes) gives the block size; the file's length bounds the
/// block count.
pub fn open(path: &Path, offset: u64) -> Result<FileRegion, Error> {
    let name = path.display();
    let mut file = File::open(path).map_err(|e| Error::Other(format!("{name}: {e}")))?;
    let len = file.metadata()?.len();
    let mut first = [0u8; 512];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut first))
        .map_err(|e| Error::Other(format!("{name}: reading the superblock: {e}")))?;
    let sb = Superblock::decode(&first)
        .ok_or_else(|| Error::Other(format!("{name}: no log superblock at offset {offset}")))?;
    Ok(FileRegion {
        file,
        offset,
        block_size: sb.block_size,
        blocks: len.saturating_sub(offset) / u64::from(sb.block_size),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints the log in `path` to `out` (see the module doc) and returns the
/// summary.
pub fn print(path: &Path, show: &Show, out: &mut impl Write) -> Result<Summary, Error> {
    let mut region = open(path, show.offset)?;
    let name = path.display();
    let recovery =
        recover(&mut region).map_err(|e| Error::Other(format!("{name}: recovery: {e}")))?;
    let sb = recovery.superblock;
    writeln!(
        out,
        "log log_id={:#x} block_size={} blocks={} max_payload={} first_seq={}",
        sb.log_id, sb.block_size, sb.blocks, sb.max_payload, sb.first_seq
    )?;
    let reader = Reader::new(&mut region, show.from)
        .map_err(|e| Error::Other(format!("{name}: reading: {e}")))?;
    for item in reader {
        match item {
            Ok(rec) => {
                let shown = if show.payload {
                    &rec.payload[..]
                } else {
                    &rec.payload[..rec.payload.len().min(HEAD_BYTES)]
                };
                writeln!(
                    out,
                    "record seq={} offset={} len={} crc32c={:#010x} {}={}",
                    rec.seq,
                    rec.offset,
                    rec.payload.len(),
                    crc32c(&rec.payload),
                    if show.payload { "payload" } else { "head" },
                    hex(shown)
                )?;
            }
            Err(ReadError::Corrupt(c)) => writeln!(
                out,
                "corrupt first_seq={} last_seq={} offset={} bytes={}",
                c.first_seq, c.last_seq, c.offset, c.bytes
            )?,
            Err(ReadError::Io(e)) => return Err(Error::Other(format!("{name}: reading: {e}"))),
        }
    }
    let summary = Summary {
        records: recovery.records,
        next_seq: recovery.next_seq,
        corrupt: recovery.corrupt.iter().map(|c| c.records()).sum(),
        tail: recovery.tail,
    };
    let tail = summary.tail.unwrap_or(TornTail {
        offset: recovery.end,
        bytes: 0,
    });
    writeln!(
        out,
        "summary records={} next_seq={} end={} corrupt={} tail_offset={} tail_bytes={}",
        summary.records, summary.next_seq, recovery.end, summary.corrupt, tail.offset, tail.bytes
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::{Show, Summary, create, parse_size, print};
    use percore_disklog::{Encoder, Superblock, TornTail, record_span};
    use std::path::PathBuf;

    /// A scratch file under the target directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/xtask-tests");
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir.join(format!("{name}-{}", std::process::id())))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const OFFSET: u64 = 4096;

    /// An image with 1 MiB of something else, then a log at `OFFSET` of 30
    /// records (`record N`), then one more record torn after 40 bytes (its
    /// header and 8 payload bytes).
    fn image() -> (Vec<u8>, Vec<u64>) {
        let sb = Superblock::new(512, 2048, 0xabc).unwrap();
        let mut image = vec![0x11u8; OFFSET as usize];
        image.resize(OFFSET as usize + 2048 * 512, 0);
        sb.encode(&mut image[OFFSET as usize..]);
        let mut enc = Encoder::new(sb, 200).unwrap();
        let mut offsets = Vec::new();
        for i in 0..30 {
            let text = format!("record {i}");
            offsets.push(enc.end());
            enc.append(text.as_bytes()).unwrap();
        }
        let write = |image: &mut Vec<u8>, enc: &mut Encoder, limit: usize| {
            let p = enc.pending().unwrap();
            let at = OFFSET as usize + p.lba as usize * 512;
            let n = limit.min(p.data.len());
            image[at..at + n].copy_from_slice(&p.data[..n]);
            let w = p.written;
            enc.mark_written(w);
        };
        write(&mut image, &mut enc, usize::MAX);
        let torn_at = (enc.end() % 512) as usize + 40;
        enc.append(&[0xee; 300]).unwrap();
        write(&mut image, &mut enc, torn_at);
        (image, offsets)
    }

    #[test]
    fn reads_an_image_written_by_the_encoder() {
        let (bytes, offsets) = image();
        let file = Scratch::new("disklog-read");
        std::fs::write(&file.0, &bytes).unwrap();
        let show = Show {
            offset: OFFSET,
            from: 28,
            payload: false,
        };
        let mut out = Vec::new();
        let summary = print(&file.0, &show, &mut out).unwrap();
        let end = offsets[29] + record_span(9) as u64;
        assert_eq!(
            summary,
            Summary {
                records: 30,
                next_seq: 30,
                corrupt: 0,
                tail: Some(TornTail {
                    offset: end,
                    bytes: 40
                }),
            }
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("log log_id=0xabc block_size=512 blocks=2048"));
        let crc = percore_disklog::crc32c(b"record 28");
        assert_eq!(
            lines[1],
            format!(
                "record seq=28 offset={} len=9 crc32c={crc:#010x} head={}",
                offsets[28], "7265636f7264203238"
            )
        );
        assert!(lines[2].starts_with("record seq=29 "));
        assert_eq!(
            lines[3],
            format!(
                "summary records=30 next_seq=30 end={end} corrupt=0 tail_offset={end} tail_bytes=40"
            )
        );
    }

    #[test]
    fn a_flipped_byte_is_reported_by_sequence_number() {
        let (mut bytes, offsets) = image();
        bytes[OFFSET as usize + 512 + offsets[12] as usize + 34] ^= 1;
        let file = Scratch::new("disklog-flip");
        std::fs::write(&file.0, &bytes).unwrap();
        let show = Show {
            offset: OFFSET,
            from: 0,
            payload: true,
        };
        let mut out = Vec::new();
        let summary = print(&file.0, &show, &mut out).unwrap();
        assert_eq!((summary.records, summary.corrupt), (29, 1));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!(
            "corrupt first_seq=12 last_seq=12 offset={} bytes=48",
            offsets[12]
        )));
        assert!(!text.contains("record seq=12 "));
        assert!(text.contains(&format!("payload={}", "7265636f7264203133")));
    }

    #[test]
    fn creates_a_log_that_reads_back_empty() {
        let file = Scratch::new("disklog-create");
        std::fs::write(&file.0, vec![0x55u8; 8192]).unwrap();
        let sb = create(&file.0, 1024, 1 << 20, 512, Some(4096)).unwrap();
        assert_eq!((sb.blocks, sb.max_payload), (2048, 4096));
        let bytes = std::fs::read(&file.0).unwrap();
        assert_eq!(bytes.len(), 1024 + (1 << 20));
        assert!(
            bytes[..1024].iter().all(|&b| b == 0x55),
            "bytes before the region kept"
        );
        let show = Show {
            offset: 1024,
            from: 0,
            payload: false,
        };
        let summary = print(&file.0, &show, &mut Vec::new()).unwrap();
        assert_eq!(
            (summary.records, summary.corrupt, summary.tail),
            (0, 0, None)
        );
        assert!(print(&file.0, &Show { offset: 0, ..show }, &mut Vec::new()).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("M").is_err() && parse_size("12Q").is_err());
    }
}
