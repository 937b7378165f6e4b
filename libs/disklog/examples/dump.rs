//! Dumps the log in a disk image file, with the same recovery the kernel
//! runs at open: what the host uses to check what the kernel wrote.
//!
//! ```text
//! cargo run -p percore-disklog --example dump -- disk.img [--offset BYTES] [--from SEQ] [--payload]
//! ```
//!
//! `--offset` is where the log's region starts in the image (default 0).
//! Output, one line per item, machine-readable:
//!
//! ```text
//! log log_id=0x... block_size=512 blocks=N max_payload=M first_seq=S
//! record seq=S offset=O len=L crc32c=0x... [payload=HEX]
//! corrupt first_seq=A last_seq=B offset=O bytes=N
//! summary records=N next_seq=S end=O corrupt=C tail_offset=O tail_bytes=N
//! ```
//!
//! Exit status: 0 for a log that recovered cleanly, 1 for any damage
//! (corrupt records or a torn tail), 2 when the image holds no log.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;

use percore_disklog::{BlockRead, ReadError, Reader, Superblock, crc32c, recover};

/// A region of a disk image file, read in blocks.
struct FileRegion {
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

struct Args {
    path: String,
    offset: u64,
    from: u64,
    payload: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        path: String::new(),
        offset: 0,
        from: 0,
        payload: false,
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match arg.as_str() {
            "--offset" => parsed.offset = number("--offset")?,
            "--from" => parsed.from = number("--from")?,
            "--payload" => parsed.payload = true,
            _ if parsed.path.is_empty() && !arg.starts_with("--") => parsed.path = arg,
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if parsed.path.is_empty() {
        return Err("usage: dump IMAGE [--offset BYTES] [--from SEQ] [--payload]".into());
    }
    Ok(parsed)
}

/// Opens the region: the superblock (in the first 512 bytes) gives the
/// block size; the file's length bounds the block count.
fn open(args: &Args) -> Result<FileRegion, String> {
    let mut file = File::open(&args.path).map_err(|e| format!("{}: {e}", args.path))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut first = [0u8; 512];
    file.seek(SeekFrom::Start(args.offset))
        .and_then(|_| file.read_exact(&mut first))
        .map_err(|e| format!("reading the superblock: {e}"))?;
    let sb = Superblock::decode(&first).ok_or("no log superblock at that offset")?;
    Ok(FileRegion {
        file,
        offset: args.offset,
        block_size: sb.block_size,
        blocks: len.saturating_sub(args.offset) / u64::from(sb.block_size),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(args: &Args) -> Result<bool, String> {
    let mut region = open(args)?;
    let mut out = std::io::stdout().lock();
    // A closed pipe (`dump img | head`) ends the dump quietly.
    macro_rules! say {
        ($($t:tt)*) => {
            if writeln!(out, $($t)*).is_err() {
                return Ok(true);
            }
        };
    }
    let recovery = recover(&mut region).map_err(|e| e.to_string())?;
    let sb = recovery.superblock;
    say!(
        "log log_id={:#x} block_size={} blocks={} max_payload={} first_seq={}",
        sb.log_id,
        sb.block_size,
        sb.blocks,
        sb.max_payload,
        sb.first_seq
    );
    for item in Reader::new(&mut region, args.from).map_err(|e| e.to_string())? {
        match item {
            Ok(rec) => {
                let mut line = format!(
                    "record seq={} offset={} len={} crc32c={:#010x}",
                    rec.seq,
                    rec.offset,
                    rec.payload.len(),
                    crc32c(&rec.payload)
                );
                if args.payload {
                    line += &format!(" payload={}", hex(&rec.payload));
                }
                say!("{line}");
            }
            Err(ReadError::Corrupt(c)) => say!(
                "corrupt first_seq={} last_seq={} offset={} bytes={}",
                c.first_seq,
                c.last_seq,
                c.offset,
                c.bytes
            ),
            Err(ReadError::Io(e)) => return Err(format!("reading: {e}")),
        }
    }
    let tail = recovery.tail.unwrap_or(percore_disklog::TornTail {
        offset: recovery.end,
        bytes: 0,
    });
    say!(
        "summary records={} next_seq={} end={} corrupt={} tail_offset={} tail_bytes={}",
        recovery.records,
        recovery.next_seq,
        recovery.end,
        recovery.corrupt.iter().map(|c| c.records()).sum::<u64>(),
        tail.offset,
        tail.bytes
    );
    Ok(recovery.corrupt.is_empty() && recovery.tail.is_none())
}

fn main() -> ExitCode {
    match parse().and_then(|args| run(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("dump: {e}");
            ExitCode::from(2)
        }
    }
}
