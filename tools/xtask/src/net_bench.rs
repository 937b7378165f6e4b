//! `cargo xtask bench net [--smp N[,N...]] [--guest percore|linux] [--runs R] [--seconds S] [--backend tap|slirp]`:
//! the network benchmark of issue 14, driven from the host against a guest
//! serving echo and http (`netload::Served`): HTTP requests/s with wrk
//! (64 keep-alive connections; and one request per connection), echo
//! round trip p50/p99 (64 bytes, one connection), bulk throughput (64 MiB
//! through echo, checksummed), and the server's heap before and after
//! 1000 idle connections (`heap_used_bytes`, anywhere in the JSON of
//! `/stats`; on the Linux guest the kernel's slab; rows left out, with a
//! note, when the server does not report it), R runs (default 3) per core
//! count (default 1, 2 and 4), each a boot of its own, then one table of
//! every figure by core count: the median of the runs and their min..max.
//! The host's load average is printed before and after each run (the
//! machine may be shared: a run whose load differs from the others' is
//! the one to distrust).
//!
//! Backend ([`netload::Backend`]): the tap backend where it can be made
//! (root, `/dev/net/tun`, `ip`), one queue pair per core, RSS on, in a
//! network namespace of the run's own; every client (the Rust ones, wrk,
//! curl) runs inside it against the guest's 10.9.0.2 there and nothing
//! else. Elsewhere QEMU's user network (slirp, one queue pair); `--backend`
//! picks one. The output says which, and each run prints the guest's line
//! about its queue pairs (the Linux guest's virtio-net uses one pair per
//! vCPU by itself; a guest using fewer pairs than cores is said so). How
//! connections are paced around slirp's listen backlog of 1 is in
//! `netload.rs`; on slirp each run prints how many connections the host's
//! listening sockets dropped meanwhile (`TcpExtListenOverflows`, the whole
//! host's), which should stay near 0. On tap, one request per connection
//! runs [`TAP_CLOSE_CONNECTIONS`] connections (there is no backlog of 1 to
//! respect), on slirp [`CLOSE_CONNECTIONS`].
//!
//! Time: a run (a boot, two wrk runs of S seconds, 10 000 round trips,
//! 64 MiB each way, 1000 paced connections) takes about `2 S + 12`
//! seconds here under TCG; with the default S = [`DEFAULT_SECONDS`] the
//! default 3 runs at 1, 2 and 4 cores took 3.4 minutes for one guest,
//! `cargo xtask bench compare net` (both guests) about 8.
//!
//! `cargo xtask bench compare net` runs the same figures on both guests
//! (`compare.rs`); [`figures`] is what both use. [`smoke`] is the short
//! variant `cargo xtask test` runs.

use std::time::{Duration, Instant};

use crate::args::Args;
use crate::error::Error;
use crate::netload::{self, Backend, CLOSE_CONNECTIONS, Served, Target, WrkMode};
use crate::qemu::{Firmware, Machine};
use crate::test::timeout;
use crate::tools;

/// Seconds of each wrk run unless `--seconds` says otherwise.
pub const DEFAULT_SECONDS: u32 = 5;
/// Runs per core count unless `--runs` says otherwise.
pub const DEFAULT_RUNS: usize = 3;
/// Core counts unless `--smp` says otherwise.
pub const DEFAULT_SMP: &str = "1,2,4";
const KEEP_ALIVE_CONNECTIONS: u32 = 64;
/// Connections of wrk's one-request-per-connection run on tap: below the
/// 16 listening sockets percore keeps per core, so no SYN waits for one.
pub const TAP_CLOSE_CONNECTIONS: u32 = 16;

/// How much each figure measures.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub seconds: u32,
    pub round_trips: usize,
    pub bulk_bytes: u64,
    pub idle: usize,
}

impl Sizes {
    /// The benchmark's sizes with wrk runs of `seconds`.
    pub fn full(seconds: u32) -> Sizes {
        Sizes {
            seconds,
            round_trips: 10_000,
            bulk_bytes: 64 << 20,
            idle: 1000,
        }
    }
}

/// The smoke variant's sizes: every figure, each for a moment.
const SMOKE_SIZES: Sizes = Sizes {
    seconds: 1,
    round_trips: 200,
    bulk_bytes: 1 << 20,
    idle: 50,
};

/// One figure: row name, value, unit.
pub struct Figure {
    pub name: String,
    pub value: u64,
    pub unit: &'static str,
}

/// The backend `--backend` names, or the best one here (said why).
pub fn backend(choice: Option<&str>) -> Result<Backend, Error> {
    match choice {
        None => {
            let (backend, why) = Backend::best();
            if let Some(why) = why {
                println!("(tap backend not available: {why}; using slirp)");
            }
            Ok(backend)
        }
        Some("slirp") => Ok(Backend::Slirp),
        Some("tap") => match Backend::tap_unavailable() {
            None => Ok(Backend::Tap),
            Some(why) => Err(Error::Other(format!("--backend tap: {why}"))),
        },
        Some(other) => Err(Error::Usage(format!(
            "unknown backend `{other}` (tap or slirp)"
        ))),
    }
}

/// The host's load average (`/proc/loadavg`'s first three numbers).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Boots `target` serving on `machine` over `backend` and measures every
/// figure; rows are named with the machine's core count
/// (`net_http_keepalive_smp2`). Prints the load average before and after,
/// and the guest's queue pairs.
pub fn figures(
    target: Target,
    machine: &Machine,
    backend: Backend,
    sizes: Sizes,
) -> Result<Vec<Figure>, Error> {
    println!("   (load average before: {})", load_average());
    let started = Instant::now();
    let limit = timeout() + Duration::from_secs(u64::from(sizes.seconds) * 4);
    let served = Served::start(target, machine, backend, limit, true)?;
    match &served.queues_line {
        Some(line) => println!("   ({}: {line})", target.name()),
        None => println!("   ({}: no line about its queue pairs)", target.name()),
    }
    if backend == Backend::Tap
        && let Some(pairs) = served.queues_line.as_deref().and_then(pairs_in_use)
        && pairs < machine.smp
    {
        println!(
            "   (note: {} uses {pairs} queue pair(s) on {} cores: it cannot use one per core here)",
            target.name(),
            machine.smp
        );
    }
    let measured = served.within(|| measure(&served, machine.smp, sizes));
    let captured = served.stop()?;
    println!(
        "   (load average after: {}; {:.1} s)",
        load_average(),
        started.elapsed().as_secs_f64()
    );
    measured.map_err(|why| {
        Error::Other(format!(
            "{}: {why}; its serial log:\n{}",
            target.name(),
            netload::tail(&captured.lines)
        ))
    })
}

/// The pairs in use in a guest's queue line: percore's `... N of M queue
/// pair(s) ...`, the Linux guest's `... (N queue pair(s) in use)`.
fn pairs_in_use(line: &str) -> Option<u32> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "queue")?;
    let n = match at {
        3.. if words[at - 2] == "of" => words[at - 3],
        1.. => words[at - 1].trim_start_matches('('),
        _ => return None,
    };
    n.parse().ok()
}

fn measure(served: &Served, smp: u32, sizes: Sizes) -> Result<Vec<Figure>, String> {
    let ports = &served.ports;
    let slirp = served.backend == Backend::Slirp;
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
    let wrk = netload::wrk(ports, keep_alive, sizes.seconds)?;
    check_wrk(&wrk, "keep-alive")?;
    add("http_keepalive", wrk.requests_per_s, "req/s");
    let close = WrkMode::Close {
        connections: if slirp {
            CLOSE_CONNECTIONS
        } else {
            TAP_CLOSE_CONNECTIONS
        },
    };
    let wrk = netload::wrk(ports, close, sizes.seconds)?;
    check_wrk(&wrk, "Connection: close")?;
    add("http_close", wrk.requests_per_s, "req/s");
    let latency = netload::echo_round_trips(ports, sizes.round_trips)?;
    add("echo_rtt_p50", latency.p50_ns, "ns");
    add("echo_rtt_p99", latency.p99_ns, "ns");
    let counters_before = bulk_counters(ports);
    let started = Instant::now();
    let bulk = netload::bulk(ports, sizes.bulk_bytes)?;
    let elapsed = started.elapsed();
    add("bulk", bulk.mbit_s(), "Mbit/s");
    if let (Some(before), Some(after)) = (counters_before, bulk_counters(ports)) {
        print_bulk_counters(&before, &after, elapsed);
    }
    // The idle connections must fit either way; the heap rows need the
    // server's `/stats` to report `heap_used_bytes`.
    let before = netload::heap_used(ports);
    let idle = netload::open_paced(ports, sizes.idle)?;
    let after = netload::heap_used(ports);
    drop(idle);
    match (before, after) {
        (Ok(before), Ok(after)) => {
            add("heap_before_idle", before, "bytes");
            add("heap_with_1000_idle", after, "bytes");
            add(
                "idle_conn",
                after.saturating_sub(before) / sizes.idle.max(1) as u64,
                "bytes",
            );
        }
        (Err(why), _) | (_, Err(why)) => {
            println!(
                "   ({} idle connections held; no heap rows: {why})",
                sizes.idle
            )
        }
    }
    if slirp {
        println!(
            "   ({} listen overflows on the host during the run)",
            netload::listen_overflows().saturating_sub(overflows)
        );
    }
    Ok(rows)
}

/// Per-core counters of the guest's `/stats` that say where the net
/// task's time goes (percore only: `None` when the server has none).
const BULK_KEYS: [&str; 8] = [
    "turns",
    "rx_frames",
    "tx_frames",
    "ns_take",
    "ns_flush",
    "ns_poll",
    "ns_report",
    "copied_bytes",
];

fn bulk_counters(ports: &netload::Ports) -> Option<Vec<[u64; BULK_KEYS.len()]>> {
    let (status, body) = netload::http_get(ports, "/stats").ok()?;
    if status != 200 {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    json["cores"]
        .as_array()?
        .iter()
        .map(|core| {
            let mut row = [0; BULK_KEYS.len()];
            for (value, key) in row.iter_mut().zip(BULK_KEYS) {
                *value = core[key].as_u64()?;
            }
            Some(row)
        })
        .collect()
}

/// What each core's net task did during the bulk transfer: turns,
/// frames, and the share of the transfer's time in each phase of a turn.
fn print_bulk_counters(
    before: &[[u64; BULK_KEYS.len()]],
    after: &[[u64; BULK_KEYS.len()]],
    elapsed: Duration,
) {
    let wall = elapsed.as_nanos().max(1) as f64;
    for (core, (b, a)) in before.iter().zip(after).enumerate() {
        let d: Vec<u64> = a.iter().zip(b).map(|(a, b)| a.saturating_sub(*b)).collect();
        let share = |ns: u64| 100.0 * ns as f64 / wall;
        println!(
            "   (bulk, core {core}: {} turns, {} frames in, {} out, {} bytes copied; net task time: take {:.0}%, flush {:.0}%, smoltcp poll {:.0}%, report {:.0}% of {:.2} s)",
            d[0],
            d[1],
            d[2],
            d[7],
            share(d[3]),
            share(d[4]),
            share(d[5]),
            share(d[6]),
            elapsed.as_secs_f64()
        );
    }
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

/// The smoke test `cargo xtask test` runs (also selected by `bench-net`
/// and `net`): percore's release kernel at -smp 2 on the best backend
/// here (tap where available), every figure for a moment, each row
/// printed and present.
pub const SMOKE: &str = "qemu/bench-net/every_figure";

/// [`SMOKE`]: Ok with what ran, or why not.
pub fn smoke() -> Result<String, Error> {
    let backend = Backend::best().0;
    let figures = figures(Target::Percore, &machine(2), backend, SMOKE_SIZES)?;
    for f in &figures {
        println!("   {:<36} {:>12} {}", f.name, f.value, f.unit);
    }
    let want = [
        "http_keepalive",
        "http_close",
        "echo_rtt_p50",
        "echo_rtt_p99",
        "bulk",
        "heap_before_idle",
        "heap_with_1000_idle",
        "idle_conn",
    ];
    let missing: Vec<&str> = want
        .iter()
        .filter(|w| !figures.iter().any(|f| f.name == format!("net_{w}_smp2")))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(Error::Other(format!("no figure for {missing:?}")));
    }
    if figures
        .iter()
        .any(|f| f.unit.ends_with("/s") && f.value == 0)
    {
        return Err(Error::Other("a rate of 0".into()));
    }
    Ok(format!("{} figures on {}", figures.len(), backend.name()))
}

/// Parses `1,2,4`.
pub fn core_counts(list: &str) -> Result<Vec<u32>, Error> {
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
    let smp = core_counts(
        &args
            .option::<String>("--smp")?
            .unwrap_or(DEFAULT_SMP.into()),
    )?;
    let target = parse_target(
        &args
            .option::<String>("--guest")?
            .unwrap_or("percore".into()),
    )?;
    let runs: usize = args.option("--runs")?.unwrap_or(DEFAULT_RUNS);
    let seconds: u32 = args.option("--seconds")?.unwrap_or(DEFAULT_SECONDS);
    let choice: Option<String> = args.option("--backend")?;
    std::mem::take(args).finish()?;
    if runs == 0 || seconds == 0 {
        return Err(Error::Usage(
            "--runs and --seconds must be at least 1".into(),
        ));
    }
    let backend = backend(choice.as_deref())?;
    let started = Instant::now();
    println!("backend: {}", backend.describe());
    let mut table: Vec<(u32, Vec<Summary>)> = Vec::new();
    for &cores in &smp {
        let mut all: Vec<Vec<Figure>> = Vec::new();
        for run in 1..=runs {
            println!(
                "\n== bench net: {}, {cores} cores, {}, run {run}/{runs}",
                target.name(),
                backend.name()
            );
            let figures = figures(target, &machine(cores), backend, Sizes::full(seconds))?;
            if runs > 1 {
                for f in &figures {
                    println!("{:<36} {:>12} {}", f.name, f.value, f.unit);
                }
            }
            all.push(figures);
        }
        let summaries = summarize(all);
        for f in &summaries {
            println!("bench {} {} {}", f.name, f.median, f.unit);
        }
        table.push((cores, summaries));
    }
    print_scaling(&table, backend, runs);
    println!(
        "(bench net: {:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A figure over its runs: median, min and max.
pub struct Summary {
    pub name: String,
    pub median: u64,
    pub min: u64,
    pub max: u64,
    pub unit: &'static str,
}

/// Each figure's median, min and max over the runs that have it (rows of
/// the first run).
fn summarize(runs: Vec<Vec<Figure>>) -> Vec<Summary> {
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
            Summary {
                name: f.name.clone(),
                median: values[values.len() / 2],
                min: values[0],
                max: values[values.len() - 1],
                unit: f.unit,
            }
        })
        .collect()
}

/// Every figure by core count (row names without their `_smpN`): the
/// median, and with more than one run the min..max under it.
fn print_scaling(table: &[(u32, Vec<Summary>)], backend: Backend, runs: usize) {
    println!(
        "\n== network figures by cores, {}, medians of {runs} run(s){}",
        backend.name(),
        if runs > 1 {
            " (min..max below each)"
        } else {
            ""
        }
    );
    const WIDTH: usize = 22;
    print!("{:<24} {:<7}", "row", "unit");
    for (cores, _) in table {
        print!(" {:>WIDTH$}", format!("smp {cores}"));
    }
    println!();
    for figure in &table[0].1 {
        let row = figure
            .name
            .rsplit_once("_smp")
            .map_or(&figure.name[..], |(r, _)| r);
        let cells: Vec<Option<&Summary>> = table
            .iter()
            .map(|(cores, figures)| {
                let name = format!("{row}_smp{cores}");
                figures.iter().find(|f| f.name == name)
            })
            .collect();
        print!("{row:<24} {:<7}", figure.unit);
        for cell in &cells {
            match cell {
                Some(f) => print!(" {:>WIDTH$}", f.median),
                None => print!(" {:>WIDTH$}", "-"),
            }
        }
        println!();
        if runs > 1 {
            print!("{:<24} {:<7}", "", "");
            for cell in &cells {
                match cell {
                    Some(f) => print!(" {:>WIDTH$}", format!("{}..{}", f.min, f.max)),
                    None => print!(" {:>WIDTH$}", ""),
                }
            }
            println!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_take_the_middle_run_and_the_range() {
        let run = |v: u64| {
            vec![Figure {
                name: "net_x_smp1".into(),
                value: v,
                unit: "ns",
            }]
        };
        let m = summarize(vec![run(30), run(10), run(20)]);
        assert_eq!(
            (m[0].name.as_str(), m[0].median, m[0].min, m[0].max),
            ("net_x_smp1", 20, 10, 30)
        );
        assert!(summarize(Vec::new()).is_empty());
    }

    #[test]
    fn queue_pairs_are_read_from_both_guests_lines() {
        let percore = "[INFO] virtio-net 00:03.0: MAC 52:54:00:c0:ff:ee, link up, 4 of 4 queue pair(s), RSS on, features 0x1";
        assert_eq!(pairs_in_use(percore), Some(4));
        let linux = "linux-ref: eth0 uses 2 rx and 2 tx queue(s) (2 queue pair(s) in use)";
        assert_eq!(pairs_in_use(linux), Some(2));
        assert_eq!(pairs_in_use("nothing here"), None);
    }

    #[test]
    fn backends_parse() {
        assert_eq!(backend(Some("slirp")).ok(), Some(Backend::Slirp));
        assert!(backend(Some("vde")).is_err());
    }

    #[test]
    fn guests_and_core_counts_parse() {
        assert_eq!(parse_target("linux").ok(), Some(Target::Linux));
        assert!(parse_target("bsd").is_err());
        assert_eq!(core_counts("1,2,4").unwrap(), [1, 2, 4]);
        assert!(core_counts("0").is_err());
    }
}
