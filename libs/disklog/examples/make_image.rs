//! Writes a disk image file holding a log of `N` records, optionally with
//! a torn last write: a companion to `dump` for trying the format on the
//! host (and for checking `dump` itself).
//!
//! ```text
//! cargo run -p percore-disklog --example make_image -- out.img 100 [--torn BYTES]
//! ```
//!
//! Record `i`'s payload is the text `record i`. The image is 4 MiB of
//! 512-byte blocks; `--torn` appends one more record and lets only the
//! first BYTES of its write land.

use percore_disklog::{Encoder, Superblock};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: make_image OUT RECORDS [--torn BYTES]";
    let (path, count) = match args.as_slice() {
        [path, count, ..] => (path, count.parse::<u64>().map_err(|_| usage)?),
        _ => return Err(usage.into()),
    };
    let torn = match &args[2..] {
        [flag, n] if flag == "--torn" => Some(n.parse::<usize>().map_err(|_| usage)?),
        [] => None,
        _ => return Err(usage.into()),
    };
    let sb = Superblock::new(512, 8192, 0x1234_5678).map_err(|e| e.to_string())?;
    let mut image = vec![0u8; 8192 * 512];
    sb.encode(&mut image);
    let mut enc = Encoder::new(sb, 160).map_err(|e| e.to_string())?;
    let write = |image: &mut Vec<u8>, enc: &mut Encoder, limit: Option<usize>| {
        if let Some(p) = enc.pending() {
            let n = limit.unwrap_or(p.data.len()).min(p.data.len());
            image[p.lba as usize * 512..][..n].copy_from_slice(&p.data[..n]);
            let w = p.written;
            enc.mark_written(w);
        }
    };
    for i in 0..count {
        let text = format!("record {i}");
        if enc.append(text.as_bytes()).is_err() {
            write(&mut image, &mut enc, None);
            enc.append(text.as_bytes()).map_err(|e| e.to_string())?;
        }
    }
    write(&mut image, &mut enc, None);
    if let Some(bytes) = torn {
        // The write starts at the block holding the end of the log.
        let start_in_block = (enc.end() % 512) as usize;
        enc.append(&[0xEE; 1000]).map_err(|e| e.to_string())?;
        write(&mut image, &mut enc, Some(start_in_block + bytes));
    }
    std::fs::write(path, &image).map_err(|e| format!("{path}: {e}"))
}
