//! The shell's `log` command: the disk log on the machine's virtio-blk
//! disk (`storage::virtio::open_machine_log`, the whole disk), opened on
//! first use and kept for the rest of the boot.
//!
//! ```text
//! log                 open (recover or format) the log; the open report and counters
//! log append TEXT     append TEXT as a record (not yet durable): its sequence number
//! log flush           make every appended record durable: the acknowledged end
//! log tail [N]        the last N durable records (default 10)
//! log from SEQ [N]    N durable records from sequence number SEQ on (default 10)
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use futures_util::StreamExt;

use crate::storage::log::Report;
use crate::storage::virtio::{DiskLog, open_machine_log};
use crate::time;

/// Records `tail` and `from` show when no count is given.
const DEFAULT_COUNT: u64 = 10;
/// The most payload bytes shown of a record.
const SHOWN: usize = 64;

/// `log ...`
pub async fn run(args: &[&str], out: &mut String) {
    // A new log's nonce: the time since boot, different from boot to boot.
    let log_id = time::uptime_ns() | 1;
    let (log, report) = match open_machine_log(log_id).await {
        Ok(open) => (&open.0, &open.1),
        Err(error) => {
            let _ = write!(
                out,
                "log: cannot open the log on the disk: {error} (boot with `cargo xtask run --disk FILE`)"
            );
            return;
        }
    };
    match args {
        [] => status(log, report, out),
        ["append", text @ ..] if !text.is_empty() => {
            let record = text.join(" ");
            match log.append(record.as_bytes()).await {
                Ok(seq) => {
                    let _ = write!(
                        out,
                        "appended seq {seq} ({} bytes; `log flush` makes it durable)",
                        record.len()
                    );
                }
                Err(error) => {
                    let _ = write!(out, "log append: {error}");
                }
            }
        }
        ["flush"] => match log.flush().await {
            Ok(end) => {
                let _ = write!(out, "durable: every record below seq {end}");
            }
            Err(error) => {
                let _ = write!(out, "log flush: {error} (nothing new acknowledged)");
            }
        },
        ["tail", rest @ ..] if rest.len() <= 1 => match count(rest.first()) {
            Some(n) => {
                let durable = log.stats().durable_seq;
                let first = report_first(report).max(durable.saturating_sub(n));
                show(log, first, durable, out).await;
            }
            None => out.push_str(USAGE),
        },
        ["from", seq, rest @ ..] if rest.len() <= 1 => {
            match (seq.parse::<u64>().ok(), count(rest.first())) {
                (Some(seq), Some(n)) => {
                    let durable = log.stats().durable_seq;
                    show(log, seq, durable.min(seq.saturating_add(n)), out).await;
                }
                _ => out.push_str(USAGE),
            }
        }
        _ => out.push_str(USAGE),
    }
}

const USAGE: &str = "usage: log | log append TEXT | log flush | log tail [N] | log from SEQ [N]";

fn count(word: Option<&&str>) -> Option<u64> {
    match word {
        None => Some(DEFAULT_COUNT),
        Some(w) => w.parse().ok(),
    }
}

/// The first sequence number the log can hold (its records start there).
fn report_first(report: &Report) -> u64 {
    report.next_seq.saturating_sub(report.records)
}

fn status(log: &DiskLog, report: &Report, out: &mut String) {
    let disk = log.device();
    let _ = writeln!(
        out,
        "log on virtio-blk {} ({} blocks of {} bytes){}",
        disk.bdf(),
        disk.blocks(),
        disk.block_size(),
        if disk.read_only() {
            ", read-only: appends are refused"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "at open: {}{} records, next seq {}, {} corrupt, torn tail {} bytes",
        if report.formatted {
            "formatted a new log; "
        } else {
            "recovered "
        },
        report.records,
        report.next_seq,
        report.corrupt.iter().map(|c| c.records()).sum::<u64>(),
        report.tail.map_or(0, |t| t.bytes)
    );
    for c in &report.corrupt {
        let _ = writeln!(
            out,
            "  corrupt seq {}..={} at log offset {} ({} bytes), never returned as data",
            c.first_seq, c.last_seq, c.offset, c.bytes
        );
    }
    let s = log.stats();
    let _ = write!(
        out,
        "now: next seq {}, durable below {}, {} appended since open, {} writes ({} failed)",
        s.next_seq, s.durable_seq, s.appended, s.writes, s.failed_writes
    );
}

/// Shows the durable records with sequence numbers in `from..to`.
async fn show(log: &DiskLog, from: u64, to: u64, out: &mut String) {
    if from >= to {
        let _ = write!(out, "no durable records in {from}..{to}");
        return;
    }
    let mut stream = core::pin::pin!(log.stream(from));
    let mut lines = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(record) => {
                let shown = &record.payload[..record.payload.len().min(SHOWN)];
                lines.push(alloc::format!(
                    "{:>8}  {:>5} bytes  {}",
                    record.seq,
                    record.payload.len(),
                    printable(shown)
                ));
                if record.seq + 1 >= to {
                    break;
                }
            }
            Err(percore_disklog::ReadError::Corrupt(c)) => {
                lines.push(alloc::format!(
                    "{:>8}  corrupt (seq {}..={}, {} bytes): never returned as data",
                    c.first_seq,
                    c.first_seq,
                    c.last_seq,
                    c.bytes
                ));
                if c.last_seq + 1 >= to {
                    break;
                }
            }
            Err(percore_disklog::ReadError::Io(error)) => {
                lines.push(alloc::format!("read error: {error}"));
                break;
            }
        }
    }
    out.push_str(&lines.join("\n"));
}

/// `bytes` as text, with anything not printable ASCII as `.`.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}
