//! The network load tests of `cargo xtask test` (`qemu/netload-GUEST/*`):
//! one guest serving echo and http (`netload::Served`, QEMU's user
//! network, -smp 2), driven from the host by the clients of `netload.rs`
//! and by Debian's `curl`, `nc` (netcat-openbsd) and `wrk`. Each test
//! checks real bytes (echoes compared, checksums both ways, statuses and
//! bodies), each can fail, and each is bounded by the clients' timeouts
//! and the guest's host-side timeout.
//!
//! They test percore's servers (its release kernel, `serve echo,http` at
//! boot) in the default `cargo xtask test`;
//! `cargo xtask test --linux-net` runs them against the Linux reference
//! guest instead (the harness's own check: the reference is not what is
//! under test, so it is not in the default list).
//!
//! Counts are scaled down from the issue's targets where they would make
//! the set slow under TCG ([`TEST_COUNTS`]); `cargo xtask bench net` runs
//! the benchmark figures at full size.

use std::time::{Duration, Instant};

use crate::netload::{self, Backend, LOSS_FW_CFG, Outcome, Ports, Served, Target, WrkMode};
use crate::qemu::{Firmware, Machine};
use crate::test::{Tally, timeout};

/// How much each load test does.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub round_trips: usize,
    pub bulk_bytes: u64,
    pub concurrent: usize,
    pub concurrent_bytes: usize,
    pub churn: usize,
    pub half_close_bytes: usize,
    pub half_close_rounds: usize,
    pub vanish: usize,
    pub udp: usize,
    pub wrk_seconds: u32,
}

/// The issue's targets.
pub const ISSUE_COUNTS: Counts = Counts {
    round_trips: 10_000,
    bulk_bytes: 64 << 20,
    concurrent: 1000,
    concurrent_bytes: 1024,
    churn: 10_000,
    half_close_bytes: 1 << 20,
    half_close_rounds: 100,
    vanish: 10,
    udp: 1000,
    wrk_seconds: 10,
};

/// What `cargo xtask test` runs: the issue's 1000 concurrent connections,
/// 64 MiB bulk and 10 000 short connections, round trips cut to 2000, so
/// that the set stays under a minute under TCG (34-43 s). The short
/// connections were cut to 2000 while one run in two lost an echo (the
/// 20 s read timeout); that was smoltcp 0.12.0's retransmission timer
/// (`third_party/smoltcp/PERCORE.md`), and with its fix 10 000 passed in
/// four runs of four (9-13 s).
pub const TEST_COUNTS: Counts = Counts {
    round_trips: 2000,
    udp: 200,
    wrk_seconds: 3,
    ..ISSUE_COUNTS
};

/// A passed test says what it did; a test the backend cannot run says why.
enum Done {
    Passed(String),
    Skipped(String),
}

type Check = fn(&Ports, &Counts) -> Outcome<Done>;

/// Every test, by name, in the order they run.
const TESTS: &[(&str, Check)] = &[
    ("curl_index_stats_404", curl_pages),
    ("nc_echo_and_bad_request", nc_checks),
    ("udp_echo", udp),
    ("echo_round_trip", round_trip),
    ("bulk_echo_checksums", bulk),
    ("concurrent_connections", concurrent),
    ("connection_churn", churn),
    ("half_close", half_close),
    ("vanishing_clients_reset", vanish),
    ("wrk_keep_alive", wrk_keep_alive),
    ("wrk_connection_close", wrk_close),
    ("still_serving_after_load", still_serving),
];

/// The tests of the lossy set (`qemu/netload-percore-lossy/*`): percore
/// booted dropping one TCP segment in [`LOSS_EVERY`] each way
/// (`kernel/src/net/loss.rs`), so TCP's recovery is what is tested: every
/// byte must still come back, and the guest must say it dropped segments.
const LOSSY_TESTS: &[(&str, Check)] = &[
    ("bulk_echo_checksums", bulk),
    ("half_close", half_close),
    ("connection_churn", churn),
    ("loss_was_injected", loss_injected),
];

/// One TCP segment in this many is dropped each way in the lossy set.
const LOSS_EVERY: u32 = 100;

/// What the lossy set does: small enough that the segments lost at the
/// end of a transfer, which wait for a retransmission timeout (200 ms at
/// least, doubling while they repeat), keep it short.
const LOSSY_COUNTS: Counts = Counts {
    bulk_bytes: 2 << 20,
    churn: 30,
    half_close_rounds: 3,
    ..TEST_COUNTS
};

/// A set of tests: the plain one, or the lossy one.
struct Set {
    /// After `netload-TARGET` in the tests' names.
    suffix: &'static str,
    tests: &'static [(&'static str, Check)],
    counts: &'static Counts,
    /// Injected loss, if any ([`LOSS_EVERY`]).
    loss: Option<u32>,
}

const PLAIN: Set = Set {
    suffix: "",
    tests: TESTS,
    counts: &TEST_COUNTS,
    loss: None,
};

const LOSSY: Set = Set {
    suffix: "-lossy",
    tests: LOSSY_TESTS,
    counts: &LOSSY_COUNTS,
    loss: Some(LOSS_EVERY),
};

/// The sets run against `target`: the lossy one only against percore (the
/// loss is injected by its network stack).
fn sets(target: Target) -> &'static [Set] {
    match target {
        Target::Percore => &[PLAIN, LOSSY],
        Target::Linux => &[PLAIN],
    }
}

/// The test of the guest's address line (plain set only).
const ADDRESS_TEST: &str = "address_line";

/// The contract's address on QEMU's user network, as the guest prints it.
fn address(line: Option<&str>) -> Outcome<&str> {
    let line = line.ok_or("no `net: ip=...` line")?;
    let via = line
        .strip_prefix("net: ip=10.0.2.15/24 gw=10.0.2.2 via ")
        .ok_or_else(|| format!("not the user network's address: {line:?}"))?;
    if via != "dhcp" && via != "static" {
        return Err(format!("configured via {via:?}, not dhcp or static"));
    }
    Ok(line)
}

/// The tests' names as `cargo xtask test` shows them.
fn full_name(target: Target, set: &Set, test: &str) -> String {
    format!("qemu/netload-{}{}/{test}", target.name(), set.suffix)
}

/// The names of `set`'s tests.
fn names(set: &Set) -> impl Iterator<Item = &'static str> {
    let address = set.loss.is_none().then_some(ADDRESS_TEST);
    set.tests.iter().map(|(t, _)| *t).chain(address)
}

/// Whether `filter` selects any test of `set` against `target`.
fn set_selected(target: Target, set: &Set, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| names(set).any(|t| full_name(target, set, t).contains(f)))
}

/// Whether `filter` selects any of the tests against `target`.
pub fn selected(target: Target, filter: Option<&str>) -> bool {
    sets(target)
        .iter()
        .any(|set| set_selected(target, set, filter))
}

/// Runs every set of tests against `target` that `filter` selects,
/// recording each test in `tally`.
pub fn run(target: Target, filter: Option<&str>, tally: &mut Tally) {
    for set in sets(target) {
        if set_selected(target, set, filter) {
            run_set(target, set, filter, tally);
        }
    }
}

/// Boots `target` serving on a 2-core machine (with `set`'s loss) and runs
/// the tests of `set` that `filter` selects, recording each in `tally`.
fn run_set(target: Target, set: &Set, filter: Option<&str>, tally: &mut Tally) {
    let tests: Vec<&(&str, Check)> = set
        .tests
        .iter()
        .filter(|(t, _)| filter.is_none_or(|f| full_name(target, set, t).contains(f)))
        .collect();
    let mut machine = Machine::new(Firmware::Bios, 2);
    match set.loss {
        Some(every) => {
            println!(
                "\n== network load tests against {}, one TCP segment in {every} lost each way",
                target.name()
            );
            machine.fw_cfg.push((LOSS_FW_CFG.into(), every.to_string()));
        }
        None => println!("\n== network load tests against {}", target.name()),
    }
    let started = Instant::now();
    // percore's release kernel, the one users run: under TCG the debug
    // kernel makes the set take about 2.5 minutes instead of 30 s.
    let served = match Served::start(target, &machine, Backend::Slirp, timeout(), true) {
        Ok(served) => served,
        Err(error) => {
            for (test, _) in &tests {
                let name = full_name(target, set, test);
                println!("test {name} ... FAILED: {error}");
                tally.record(&name, false);
            }
            return;
        }
    };
    println!(
        "   ({} serving on {} cores after {:.1} s; host ports echo {} udp {} http {})",
        target.name(),
        served.cores,
        started.elapsed().as_secs_f64(),
        served.ports.echo_tcp,
        served.ports.echo_udp,
        served.ports.http
    );
    let mut failed = false;
    if set.loss.is_none() && filter.is_none_or(|f| full_name(target, set, ADDRESS_TEST).contains(f))
    {
        let name = full_name(target, set, ADDRESS_TEST);
        let verdict = address(served.net_line.as_deref());
        match &verdict {
            Ok(line) => println!("test {name} ... ok ({line})"),
            Err(why) => println!("test {name} ... FAILED: {why}"),
        }
        failed |= verdict.is_err();
        tally.record(&name, verdict.is_ok());
    }
    for (test, check) in tests {
        let name = full_name(target, set, test);
        let start = Instant::now();
        let verdict = check(&served.ports, set.counts);
        let took = start.elapsed().as_secs_f64();
        match &verdict {
            Ok(Done::Passed(what)) => println!("test {name} ... ok ({what}; {took:.1} s)"),
            Ok(Done::Skipped(why)) => {
                tally.skip_one(&name, why);
                continue;
            }
            Err(why) => println!("test {name} ... FAILED: {why} ({took:.1} s)"),
        }
        failed |= verdict.is_err();
        tally.record(&name, verdict.is_ok());
    }
    match served.stop() {
        Ok(captured) if failed => {
            println!(
                "   --- last serial lines ---\n{}",
                netload::tail(&captured.lines)
            )
        }
        Ok(_) => {}
        Err(error) => println!("   (stopping the guest: {error})"),
    }
    println!(
        "   (netload-{}{}: {:.1} s)",
        target.name(),
        set.suffix,
        started.elapsed().as_secs_f64()
    );
}

const TOOL_LIMIT: Duration = Duration::from_secs(30);

fn curl(ports: &Ports, path: &str, format: &str) -> Outcome<Vec<u8>> {
    let url = ports.http_url(path);
    netload::tool(
        "curl",
        &["-sS", "--max-time", "20", "-w", format, &url],
        b"",
        TOOL_LIMIT,
    )
}

/// curl: `/` is the index page byte for byte, `/stats` is JSON, `/nope` 404.
fn curl_pages(ports: &Ports, _: &Counts) -> Outcome<Done> {
    let index = curl(ports, "/", "")?;
    if index != percore_http::INDEX_BODY {
        return Err(format!(
            "GET / gave {} bytes, not the index page: {:?}",
            index.len(),
            String::from_utf8_lossy(&index)
        ));
    }
    let stats = curl(ports, "/stats", "")?;
    serde_json::from_slice::<serde_json::Value>(&stats).map_err(|e| {
        format!(
            "GET /stats is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&stats)
        )
    })?;
    let missing = curl(ports, "/nope", "%{http_code}")?;
    if !missing.ends_with(b"404") {
        return Err(format!(
            "GET /nope: {:?}, not 404",
            String::from_utf8_lossy(&missing)
        ));
    }
    Ok(Done::Passed(format!(
        "index, {} bytes of JSON stats, 404",
        stats.len()
    )))
}

/// nc: a line through TCP echo comes back; a malformed request to the
/// HTTP port gets `400`.
fn nc_checks(ports: &Ports, _: &Counts) -> Outcome<Done> {
    let (echo, http) = (ports.echo_tcp.to_string(), ports.http.to_string());
    // netcat-openbsd's own name: a plain `nc` may be another netcat
    // without `-N`.
    let nc = "nc.openbsd";
    let line = b"hello from netcat\n";
    let back = netload::tool(
        nc,
        &["-N", "-w", "10", "127.0.0.1", &echo],
        line,
        TOOL_LIMIT,
    )?;
    if back != line {
        return Err(format!("echo gave {:?}", String::from_utf8_lossy(&back)));
    }
    let bad = netload::tool(
        nc,
        &["-N", "-w", "10", "127.0.0.1", &http],
        b"NOT HTTP AT ALL\r\n\r\n",
        TOOL_LIMIT,
    )?;
    if !bad.starts_with(b"HTTP/1.1 400 ") {
        return Err(format!(
            "a malformed request got {:?}",
            String::from_utf8_lossy(&bad)
        ));
    }
    Ok(Done::Passed("echo line, 400".into()))
}

fn udp(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    if !ports.udp_replies {
        return Ok(Done::Skipped(
            "slirp with restrict=on drops every UDP datagram the guest sends (libslirp's udp_input), so no echo can reach the host; needs the tap backend".into(),
        ));
    }
    netload::udp_echo(ports, counts.udp)?;
    Ok(Done::Passed(format!("{} datagrams", counts.udp)))
}

fn round_trip(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    let latency = netload::echo_round_trips(ports, counts.round_trips)?;
    Ok(Done::Passed(format!(
        "{} round trips, p50 {} us, p99 {} us",
        counts.round_trips,
        latency.p50_ns / 1000,
        latency.p99_ns / 1000
    )))
}

fn bulk(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    let bulk = netload::bulk(ports, counts.bulk_bytes)?;
    Ok(Done::Passed(format!(
        "{} MiB each way, {} Mbit/s",
        bulk.bytes >> 20,
        bulk.mbit_s()
    )))
}

fn concurrent(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    netload::concurrent(ports, counts.concurrent, counts.concurrent_bytes)?;
    Ok(Done::Passed(format!(
        "{} connections, {} bytes each",
        counts.concurrent, counts.concurrent_bytes
    )))
}

fn churn(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    let rate = netload::churn(ports, counts.churn)?;
    Ok(Done::Passed(format!(
        "{} connections, {rate}/s",
        counts.churn
    )))
}

fn half_close(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    let slowest = netload::half_close(ports, counts.half_close_bytes, counts.half_close_rounds)?;
    Ok(Done::Passed(format!(
        "{} x {} bytes back after FIN, slowest round {:.2} s",
        counts.half_close_rounds,
        counts.half_close_bytes,
        slowest.as_secs_f64()
    )))
}

fn vanish(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    netload::vanish(ports, counts.vanish)?;
    Ok(Done::Passed(format!(
        "{} resets mid-transfer",
        counts.vanish
    )))
}

fn wrk_run(ports: &Ports, counts: &Counts, mode: WrkMode) -> Outcome<Done> {
    let wrk = netload::wrk(ports, mode, counts.wrk_seconds)?;
    if wrk.errors > 0 {
        return Err(format!(
            "{} errors in {} requests",
            wrk.errors, wrk.requests
        ));
    }
    Ok(Done::Passed(format!(
        "{} requests, {} requests/s",
        wrk.requests, wrk.requests_per_s
    )))
}

fn wrk_keep_alive(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    wrk_run(ports, counts, WrkMode::KeepAlive { connections: 64 })
}

fn wrk_close(ports: &Ports, counts: &Counts) -> Outcome<Done> {
    let connections = netload::CLOSE_CONNECTIONS;
    wrk_run(ports, counts, WrkMode::Close { connections })
}

/// The lossy set's own check: the guest dropped segments (its `/stats`,
/// `drop_injected` summed over the cores), so the tests before it did run
/// over a lossy link.
fn loss_injected(ports: &Ports, _: &Counts) -> Outcome<Done> {
    let dropped = netload::stat_sum(ports, "drop_injected")?;
    if dropped == 0 {
        return Err("the guest dropped no segment: no loss was injected".into());
    }
    Ok(Done::Passed(format!(
        "{dropped} segments dropped by the guest"
    )))
}

/// After everything above: echo and HTTP still answer.
fn still_serving(ports: &Ports, _: &Counts) -> Outcome<Done> {
    netload::echo_round_trips(ports, 10)?;
    let (status, body) = netload::http_get(ports, "/")?;
    if status != 200 || body != percore_http::INDEX_BODY {
        return Err(format!("GET / answered {status} with {} bytes", body.len()));
    }
    Ok(Done::Passed("echo and http answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_line_is_checked() {
        let dhcp = "net: ip=10.0.2.15/24 gw=10.0.2.2 via dhcp";
        assert_eq!(address(Some(dhcp)), Ok(dhcp));
        assert!(address(Some("net: ip=10.0.2.15/24 gw=10.0.2.2 via static")).is_ok());
        assert!(address(Some("net: ip=10.0.2.16/24 gw=10.0.2.2 via dhcp")).is_err());
        assert!(address(Some("net: ip=10.0.2.15/24 gw=10.0.2.2 via magic")).is_err());
        assert!(address(None).is_err());
    }
}
