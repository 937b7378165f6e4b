//! `cargo xtask bench net [--smp N[,N...]] [--guest percore|linux] [--runs R] [--seconds S]`:
//! the network benchmark of issue 14, driven from the host against a guest
//! serving echo and http (`netload::Served`): HTTP requests/s with wrk
//! (64 keep-alive connections; and one request per connection), echo
//! round trip p50/p99 (64 bytes, one connection), bulk throughput (64 MiB
//! through echo, checksummed), and the server's heap before and after
//! 1000 idle connections (`heap_used_bytes`, anywhere in the JSON of
//! `/stats`; on the Linux guest the kernel's slab; rows left out, with a
//! note, when the server does not report it), once per core count (default 1, 2 and 4), with a
//! table of every figure by core count.
//!
//! Backend: QEMU's user network (slirp, one queue pair) for now, said in
//! the output; the tap backend with one queue pair per core comes with the
//! netmq work's network namespaces. How connections are paced around
//! slirp's listen backlog of 1 is in `netload.rs`; each run prints how
//! many connections the host's listening sockets dropped meanwhile
//! (`TcpExtListenOverflows`, the whole host's), which should stay near 0.
//!
//! `cargo xtask bench compare net` runs the same figures on both guests
//! (`compare.rs`); [`figures`] is what both use.

use std::time::Duration;

use crate::args::Args;
use crate::error::Error;
use crate::netload::{self, CLOSE_CONNECTIONS, Served, Target, WrkMode};
use crate::qemu::{Firmware, Machine};
use crate::test::timeout;
use crate::tools;

/// Seconds of each wrk run unless `--seconds` says otherwise.
pub const DEFAULT_SECONDS: u32 = 10;
/// The network backend the benchmark runs on, as printed.
pub const BACKEND: &str =
    "slirp (QEMU user network, restrict=on, one queue pair; the tap backend is not wired in yet)";
const KEEP_ALIVE_CONNECTIONS: u32 = 64;
const ROUND_TRIPS: usize = 10_000;
const BULK_BYTES: u64 = 64 << 20;
const IDLE_CONNECTIONS: usize = 1000;

/// One figure: row name, value, unit.
pub struct Figure {
    pub name: String,
    pub value: u64,
    pub unit: &'static str,
}

/// Boots `target` serving on `machine` and measures every figure; rows are
/// named with the machine's core count (`net_http_keepalive_smp2`).
pub fn figures(target: Target, machine: &Machine, seconds: u32) -> Result<Vec<Figure>, Error> {
    let limit = timeout() + Duration::from_secs(u64::from(seconds) * 4);
    let served = Served::start(target, machine, limit, true)?;
    let measured = measure(&served, machine.smp, seconds);
    let captured = served.stop()?;
    measured.map_err(|why| {
        Error::Other(format!(
            "{}: {why}; its serial log:\n{}",
            target.name(),
            netload::tail(&captured.lines)
        ))
    })
}

fn measure(served: &Served, smp: u32, seconds: u32) -> Result<Vec<Figure>, String> {
    let ports = &served.ports;
    let overflows = netload::listen_overflows();
    let mut rows = Vec::new();
    let mut add = |name: &str, value: u64, unit: &'static str| {
        rows.push(Figure {
            name: format!("net_{name}_smp{smp}"),
            value,
            unit,
        })
    };
    let keep_alive = WrkMode::KeepAlive {
        connections: KEEP_ALIVE_CONNECTIONS,
    };
    let wrk = netload::wrk(ports, keep_alive, seconds)?;
    check_wrk(&wrk, "keep-alive")?;
    add("http_keepalive", wrk.requests_per_s, "req/s");
    let close = WrkMode::Close {
        connections: CLOSE_CONNECTIONS,
    };
    let wrk = netload::wrk(ports, close, seconds)?;
    check_wrk(&wrk, "Connection: close")?;
    add("http_close", wrk.requests_per_s, "req/s");
    let latency = netload::echo_round_trips(ports, ROUND_TRIPS)?;
    add("echo_rtt_p50", latency.p50_ns, "ns");
    add("echo_rtt_p99", latency.p99_ns, "ns");
    let bulk = netload::bulk(ports, BULK_BYTES)?;
    add("bulk", bulk.mbit_s(), "Mbit/s");
    // The 1000 idle connections must fit either way; the heap rows need
    // the server's `/stats` to report `heap_used_bytes`.
    let before = netload::heap_used(ports);
    let idle = netload::open_paced(ports, IDLE_CONNECTIONS)?;
    let after = netload::heap_used(ports);
    drop(idle);
    match (before, after) {
        (Ok(before), Ok(after)) => {
            add("heap_before_idle", before, "bytes");
            add("heap_with_1000_idle", after, "bytes");
            add(
                "idle_conn",
                after.saturating_sub(before) / IDLE_CONNECTIONS as u64,
                "bytes",
            );
        }
        (Err(why), _) | (_, Err(why)) => {
            println!("   ({IDLE_CONNECTIONS} idle connections held; no heap rows: {why})")
        }
    }
    println!(
        "   ({} listen overflows on the host during the run)",
        netload::listen_overflows().saturating_sub(overflows)
    );
    Ok(rows)
}

fn check_wrk(wrk: &netload::Wrk, what: &str) -> Result<(), String> {
    if wrk.errors > 0 {
        return Err(format!(
            "wrk ({what}): {} errors in {} requests",
            wrk.errors, wrk.requests
        ));
    }
    Ok(())
}

/// Parses `1,2,4`.
fn core_counts(list: &str) -> Result<Vec<u32>, Error> {
    list.split(',')
        .map(|n| match n.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::Usage(format!("invalid core count `{n}` in --smp"))),
        })
        .collect()
}

/// `percore` or `linux`.
pub fn parse_target(name: &str) -> Result<Target, Error> {
    match name {
        "percore" => Ok(Target::Percore),
        "linux" => Ok(Target::Linux),
        other => Err(Error::Usage(format!(
            "unknown guest `{other}` (percore or linux)"
        ))),
    }
}

/// The machine both guests serve on: `smp` cores, KVM where it works.
pub fn machine(smp: u32) -> Machine {
    let mut machine = Machine::new(Firmware::Bios, smp);
    machine.kvm = tools::kvm_available();
    machine
}

/// `cargo xtask bench net`.
pub fn run(args: &mut Args) -> Result<(), Error> {
    let smp = core_counts(&args.option::<String>("--smp")?.unwrap_or("1,2,4".into()))?;
    let target = parse_target(
        &args
            .option::<String>("--guest")?
            .unwrap_or("percore".into()),
    )?;
    let runs: usize = args.option("--runs")?.unwrap_or(1);
    let seconds: u32 = args.option("--seconds")?.unwrap_or(DEFAULT_SECONDS);
    std::mem::take(args).finish()?;
    if runs == 0 || seconds == 0 {
        return Err(Error::Usage(
            "--runs and --seconds must be at least 1".into(),
        ));
    }
    println!("backend: {BACKEND}");
    let mut table: Vec<(u32, Vec<Figure>)> = Vec::new();
    for &cores in &smp {
        let mut all: Vec<Vec<Figure>> = Vec::new();
        for run in 1..=runs {
            println!(
                "\n== bench net: {}, {cores} cores, run {run}/{runs}",
                target.name()
            );
            let figures = figures(target, &machine(cores), seconds)?;
            if runs > 1 {
                for f in &figures {
                    println!("{:<36} {:>12} {}", f.name, f.value, f.unit);
                }
            }
            all.push(figures);
        }
        let medians = medians(all);
        for f in &medians {
            println!("bench {} {} {}", f.name, f.value, f.unit);
        }
        table.push((cores, medians));
    }
    if table.len() > 1 {
        print_scaling(&table);
    }
    Ok(())
}

/// Each figure's median over the runs that have it (rows of the first run).
fn medians(runs: Vec<Vec<Figure>>) -> Vec<Figure> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|f| {
            let mut values: Vec<u64> = runs
                .iter()
                .filter_map(|r| Some(r.iter().find(|g| g.name == f.name)?.value))
                .collect();
            values.sort_unstable();
            Figure {
                name: f.name.clone(),
                value: values[values.len() / 2],
                unit: f.unit,
            }
        })
        .collect()
}

/// Every figure by core count (row names without their `_smpN`).
fn print_scaling(table: &[(u32, Vec<Figure>)]) {
    println!("\n== network figures by cores ({BACKEND})");
    print!("{:<28} {:<8}", "row", "unit");
    for (cores, _) in table {
        print!(" {:>12}", format!("smp {cores}"));
    }
    println!();
    for figure in &table[0].1 {
        let row = figure
            .name
            .rsplit_once("_smp")
            .map_or(&figure.name[..], |(r, _)| r);
        print!("{row:<28} {:<8}", figure.unit);
        for (cores, figures) in table {
            let name = format!("{row}_smp{cores}");
            match figures.iter().find(|f| f.name == name) {
                Some(f) => print!(" {:>12}", f.value),
                None => print!(" {:>12}", "-"),
            }
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_middle_run() {
        let run = |v: u64| {
            vec![Figure {
                name: "net_x_smp1".into(),
                value: v,
                unit: "ns",
            }]
        };
        let m = medians(vec![run(30), run(10), run(20)]);
        assert_eq!((m[0].name.as_str(), m[0].value), ("net_x_smp1", 20));
        assert!(medians(Vec::new()).is_empty());
    }

    #[test]
    fn guests_and_core_counts_parse() {
        assert_eq!(parse_target("linux").ok(), Some(Target::Linux));
        assert!(parse_target("bsd").is_err());
        assert_eq!(core_counts("1,2,4").unwrap(), [1, 2, 4]);
        assert!(core_counts("0").is_err());
    }
}
