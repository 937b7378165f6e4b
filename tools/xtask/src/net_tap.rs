//! Host-driven tests of the network stack on the tap backend: the kernel
//! users run (not the test kernel) boots at -smp 4 with 4 queue pairs (RSS)
//! inside a network namespace of its own ([`netns`]), its samples started
//! by fw_cfg, the static address 10.9.0.2/24; every client runs inside the
//! namespace (`ip netns exec`, or a thread that joined it):
//!
//! - `curl` gets `/` (the bytes of `percore_http::INDEX_BODY`) and
//!   `/stats` (JSON, one entry per core); 64 connections with distinct
//!   source ports (all held open at once, so the ports cannot repeat) each
//!   make one request, and `/stats` afterwards must show that every core
//!   accepted some of them (the per-core `accepted` counter);
//! - `nc` (netcat-openbsd) gets a line echoed over TCP and over UDP (UDP
//!   works here: no slirp `restrict=on`);
//! - connection churn: the 10 000 short connections to the echo
//!   sample (connect, 32 bytes echoed and checked, close) from 4 client
//!   threads in the namespace, one connection at a time each (about 20 s
//!   under TCG with this debug kernel, against about 30 s from one thread;
//!   slirp's load tests run 2000, see `netload_tests.rs` why);
//! - the guest's `get` (typed into its shell) downloads 1 MiB from a
//!   server in the namespace (10.9.0.1:8000, a thread of this process
//!   whose socket was made in the namespace) and checks the FNV-1a 64;
//! - bad input through an AF_PACKET socket on the tap: IPv4 with a bad
//!   header checksum, a bad TCP checksum, IP total lengths longer and
//!   shorter than the frame, odd flag combinations (SYN+FIN, SYN+RST, none,
//!   all), a truncated TCP header; the stack's counters (`/stats`:
//!   `drop_bad_ip`, `drop_bad_tcp`) must rise by exactly what was sent;
//!   then a SYN flood of [`FLOOD_SYNS`] half-open connections from random
//!   source addresses (outside the namespace's subnet: the guest's SYN-ACKs
//!   go to the gateway, which drops them, so the connections stay
//!   half-open) and random ports, while a well-behaved `curl` connects
//!   (bounded); nothing may panic and `/` is served afterwards;
//! - checksum offloads: QEMU offers `CSUM` and `GUEST_CSUM` on tap, so the
//!   guest must have sent frames for the device to finish
//!   (`tx_csum_offloaded` in `/stats`' pairs) and taken frames whose
//!   checksum the device validated or left partial (`rx_csum_valid`); the
//!   bad frames above come with neither flag (an AF_PACKET socket's), so
//!   their counts also show that a corrupt checksum the device did not
//!   validate is still dropped and counted.
//!
//! A second machine (`qemu/net_tap_csum_off/*`) has the device options
//! `csum=off,guest_csum=off`: no offload offered, so the guest computes
//! and checks every checksum itself; it runs the same checks but the churn
//! and the flood, and its offload counters must stay 0.
//!
//! Every wait is bounded, and QEMU is killed when the guest guard drops.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::{self, KernelKind};
use crate::error::Error;
use crate::net::{SERVE_FILE, TEST_MAC};
use crate::net_host::{self, BOOT, Guest, STEP, fnv1a64};
use crate::netload;
use crate::netns::{self, Namespace, RawSocket};
use crate::qemu::{Firmware, Machine};
use crate::test::Tally;
use crate::tools;

/// The filter that selects these tests.
pub const NAME: &str = "net_tap";
const CORES: u32 = 4;
const GUEST: &str = "10.9.0.2";
/// The payload server's port in the namespace.
const PAYLOAD_PORT: u16 = 8000;
/// Connections that each make one request.
const CONNECTIONS: usize = 64;
/// Copies of each bad frame.
const COPIES: u64 = 5;
/// Short connections of the churn test: the 10 000.
const CHURN: usize = 10_000;
/// Client threads the churn runs from (each one connection at a time).
const CHURN_CLIENTS: usize = 4;
/// SYNs in the flood.
pub const FLOOD_SYNS: u32 = 10_000;
/// The bound on the curl opened during the flood (a hang guard).
const FLOOD_CURL_SECONDS: &str = "60";

/// One machine of the tests.
struct Variant {
    /// The tests' group name (`qemu/{name}/…`).
    name: &'static str,
    /// More options for the virtio-net device.
    device_options: &'static str,
    /// Whether the device offers the checksum offloads.
    offloads: bool,
    /// Whether the long tests (churn, SYN flood) run.
    long: bool,
}

const VARIANTS: [Variant; 2] = [
    Variant {
        name: NAME,
        device_options: "",
        offloads: true,
        long: true,
    },
    Variant {
        name: "net_tap_csum_off",
        device_options: "csum=off,guest_csum=off",
        offloads: false,
        long: false,
    },
];

/// Runs the tests, recording each in `tally`.
pub fn run(tally: &mut Tally) -> Result<(), Error> {
    for variant in &VARIANTS {
        run_variant(tally, variant)?;
    }
    Ok(())
}

fn run_variant(tally: &mut Tally, variant: &Variant) -> Result<(), Error> {
    let group = variant.name;
    let name = |test: &str| format!("qemu/{group}/{test}");
    if !netns::is_root() {
        tally.skip_one(
            &name("*"),
            "needs root (a network namespace and a tap device)",
        );
        return Ok(());
    }
    let missing: Vec<&str> = ["curl", "nc"]
        .into_iter()
        .filter(|t| !crate::apt::on_path(t))
        .collect();
    if !missing.is_empty() {
        tally.skip_one(
            &name("*"),
            &format!(
                "{} not installed (apt-get install curl netcat-openbsd)",
                missing.join(", ")
            ),
        );
        return Ok(());
    }
    let started = Instant::now();
    let ovmf = tools::ensure(tools::Need::AnyQemu)?;
    let built = build::kernel(KernelKind::Kernel, false)?;
    let namespace = Namespace::create()?;
    let server = in_namespace(&namespace, || TcpListener::bind(("10.9.0.1", PAYLOAD_PORT)))?;
    let data = net_host::payload();
    let expected = fnv1a64(&data);
    std::thread::spawn(move || net_host::serve_payload(server, data));
    let socket = RawSocket::open(&namespace)?;
    let host_mac = namespace.tap_mac()?;
    let mut machine = Machine::new(Firmware::Bios, CORES);
    machine.extra = netns::qemu_args_with(CORES, Some(TEST_MAC), variant.device_options);
    machine.fw_cfg.push((SERVE_FILE.into(), "echo,http".into()));
    machine
        .fw_cfg
        .push(("opt/percore/net".into(), netns::GUEST_CONFIG.into()));
    let mut command = machine.command(&built.images, &ovmf, &ovmf.vars);
    command.args(["-serial", "stdio"]);
    let mut guest = net_host::spawn(namespace.exec(&command))?;
    let ready = guest
        .wait_for("serve: http ready", BOOT)
        .and_then(|_| guest.wait_for("serve: echo ready", STEP));
    if let Err(why) = ready {
        println!("test {} ... FAILED: {why}", name("boot_and_serve"));
        for line in guest.seen.iter().rev().take(20).rev() {
            println!("    | {line}");
        }
        tally.record(&name("boot_and_serve"), false);
        return Ok(());
    }
    let ns = &namespace;
    let guest_mac = netns::parse_mac(TEST_MAC).expect("a valid MAC");
    let mut checks: Vec<(&str, Result<String, String>)> = vec![
        ("curl_index", curl_index(ns)),
        (
            "curl_stats_json",
            stats(ns).map(|s| format!("{} cores", s.len())),
        ),
        ("every_core_accepts", every_core_accepts(ns)),
        ("nc_tcp_echo", nc_echo(ns, false)),
        ("nc_udp_echo", nc_echo(ns, true)),
        ("get_download_checksum", download(&mut guest, expected)),
    ];
    if variant.long {
        checks.push(("connection_churn_10k", churn(ns)));
    }
    checks.push((
        "bad_frames_counted",
        bad_frames(ns, &socket, host_mac, guest_mac),
    ));
    checks.push(("checksum_offload", offload_counters(ns, variant.offloads)));
    if variant.long {
        checks.push(("syn_flood", syn_flood(ns, &socket, host_mac, guest_mac)));
    }
    for (test, verdict) in checks {
        match &verdict {
            Ok(note) => println!("test {} ... ok ({note})", name(test)),
            Err(why) => println!("test {} ... FAILED: {why}", name(test)),
        }
        tally.record(&name(test), verdict.is_ok());
    }
    // The shell's `net` table (every core's counters), printed; it also
    // drains what the guest printed meanwhile, then look for a panic.
    let from = guest.seen.len();
    let _ = guest.type_line("net");
    let _ = guest.wait_for("\u{0}never", Duration::from_secs(3));
    for line in &guest.seen[from..] {
        println!("    | {line}");
    }
    let panics: Vec<&String> = guest.seen.iter().filter(|l| l.contains("PANIC")).collect();
    let verdict = if panics.is_empty() {
        Ok(format!("{} serial lines", guest.seen.len()))
    } else {
        Err(format!("the guest panicked: {panics:?}"))
    };
    match &verdict {
        Ok(note) => println!("test {} ... ok ({note})", name("no_panic")),
        Err(why) => println!("test {} ... FAILED: {why}", name("no_panic")),
    }
    tally.record(&name("no_panic"), verdict.is_ok());
    drop(guest);
    drop(namespace);
    println!("   ({group}: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// The checksum offload counters of `/stats`' pairs, summed: received
/// frames not checked again, sent frames the device finished. With the
/// offloads offered both must have risen (the checks before this one sent
/// and received plenty); without, both must be 0.
fn offload_counters(ns: &Namespace, offered: bool) -> Result<String, String> {
    let body = curl(ns, &[&format!("http://{GUEST}/stats")])?;
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("/stats is not JSON ({e})"))?;
    let pairs = json["pairs"].as_array().ok_or("/stats has no `pairs`")?;
    let sum = |key: &str| -> Result<u64, String> {
        pairs
            .iter()
            .map(|p| {
                p[key]
                    .as_u64()
                    .ok_or(format!("a pair without `{key}`: {p}"))
            })
            .sum()
    };
    let (valid, offloaded) = (sum("rx_csum_valid")?, sum("tx_csum_offloaded")?);
    let ok = if offered {
        valid > 0 && offloaded > 0
    } else {
        valid == 0 && offloaded == 0
    };
    let note = format!("rx_csum_valid {valid}, tx_csum_offloaded {offloaded}");
    if ok {
        Ok(note)
    } else {
        Err(format!(
            "{note} with the offloads {}",
            if offered { "offered" } else { "off" }
        ))
    }
}

/// Runs `f` on a thread that joined `namespace` (sockets made there stay
/// in the namespace).
fn in_namespace<T: Send>(
    namespace: &Namespace,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let path = format!("/run/netns/{}", namespace.name());
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(&path)?;
                // SAFETY: setns on a descriptor we own; it changes only
                // this thread's namespace.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
    })
}

/// `curl` inside the namespace, bounded by `-m`.
fn curl(ns: &Namespace, args: &[&str]) -> Result<Vec<u8>, String> {
    net_host::curl_in(Some(ns), args)
}

fn curl_index(ns: &Namespace) -> Result<String, String> {
    net_host::curl_index_in(Some(ns), &format!("http://{GUEST}"))
}

/// `/stats` as JSON: each core's entry.
fn stats(ns: &Namespace) -> Result<Vec<serde_json::Value>, String> {
    let body = curl(ns, &[&format!("http://{GUEST}/stats")])?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        format!(
            "/stats is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    let cores = json["cores"]
        .as_array()
        .ok_or("/stats has no `cores` array")?;
    if cores.len() != CORES as usize {
        return Err(format!(
            "/stats lists {} cores on a {CORES}-core machine",
            cores.len()
        ));
    }
    Ok(cores.clone())
}

/// One counter of every core.
fn counter(cores: &[serde_json::Value], key: &str) -> Result<Vec<u64>, String> {
    cores
        .iter()
        .map(|c| {
            c[key]
                .as_u64()
                .ok_or_else(|| format!("/stats has no `{key}` for a core: {c}"))
        })
        .collect()
}

/// [`CONNECTIONS`] connections held open at once (so their source ports
/// differ), one request each; then every core's `accepted` must have
/// risen.
fn every_core_accepts(ns: &Namespace) -> Result<String, String> {
    let before = counter(&stats(ns)?, "accepted")?;
    let ports = in_namespace(ns, || {
        let guest: SocketAddr = format!("{GUEST}:80").parse().expect("an address");
        let mut open = Vec::new();
        let mut ports = HashSet::new();
        for _ in 0..CONNECTIONS {
            let mut conn = TcpStream::connect_timeout(&guest, STEP)?;
            conn.set_read_timeout(Some(STEP))?;
            ports.insert(conn.local_addr()?.port());
            conn.write_all(b"GET / HTTP/1.1\r\nHost: percore\r\nConnection: close\r\n\r\n")?;
            let mut response = Vec::new();
            conn.read_to_end(&mut response)?;
            if !response.starts_with(b"HTTP/1.1 200 ")
                || !response.ends_with(percore_http::INDEX_BODY)
            {
                return Err(std::io::Error::other(format!(
                    "answered {:?}",
                    String::from_utf8_lossy(&response)
                )));
            }
            open.push(conn);
        }
        Ok(ports.len())
    })
    .map_err(|e| format!("a connection: {e}"))?;
    if ports != CONNECTIONS {
        return Err(format!("{ports} distinct source ports"));
    }
    let after = counter(&stats(ns)?, "accepted")?;
    let gained: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // The /stats request itself is one of the gained connections.
    let total: u64 = gained.iter().sum();
    if gained.contains(&0) || total < CONNECTIONS as u64 {
        return Err(format!(
            "`accepted` per core rose by {gained:?} for {CONNECTIONS} connections"
        ));
    }
    Ok(format!(
        "{CONNECTIONS} source ports; `accepted` per core +{gained:?}"
    ))
}

/// A line through the echo sample, over TCP or UDP.
fn nc_echo(ns: &Namespace, udp: bool) -> Result<String, String> {
    let mut nc = Command::new("nc");
    if udp {
        // UDP has no end: nc quits 3 s after its input ends.
        nc.args(["-u", "-w", "3"]);
    } else {
        nc.args(["-N", "-w", "30"]);
    }
    nc.args([GUEST, "7"]);
    net_host::echo_line(ns.exec(&nc))
}

/// [`CHURN`] short connections to the echo sample one after another
/// (`netload::churn`: connect, a 32-byte exchange checked, close), from a
/// thread inside the namespace.
fn churn(ns: &Namespace) -> Result<String, String> {
    let started = Instant::now();
    let rate = in_namespace(ns, || {
        Ok(netload::churn_parallel(
            &netload::Ports::tap(),
            CHURN,
            CHURN_CLIENTS,
        ))
    })
    .map_err(|e| format!("joining the namespace: {e}"))??;
    Ok(format!(
        "{CHURN} connections in {:.1} s, {rate}/s",
        started.elapsed().as_secs_f64()
    ))
}

fn download(guest: &mut Guest, expected: u64) -> Result<String, String> {
    net_host::download_from(guest, "10.9.0.1", PAYLOAD_PORT, expected)
}

/// The sum over cores of each of `keys`.
fn sums(ns: &Namespace, keys: &[&str]) -> Result<Vec<u64>, String> {
    let cores = stats(ns)?;
    keys.iter()
        .map(|key| counter(&cores, key).map(|v| v.iter().sum()))
        .collect()
}

const DROP_KEYS: [&str; 2] = ["drop_bad_ip", "drop_bad_tcp"];
const FLOOD_KEYS: [&str; 4] = [
    "rx_frames",
    "drop_syn_backlog",
    "drop_queue_full",
    "accepted",
];

/// The bad frames of the module docs, [`COPIES`] of each; the counters
/// must rise by what was sent, and `/` must still be served.
fn bad_frames(
    ns: &Namespace,
    socket: &RawSocket,
    host: [u8; 6],
    guest: [u8; 6],
) -> Result<String, String> {
    let before = sums(ns, &DROP_KEYS)?;
    let src = netns::HOST_IP;
    let syn = |port| tcp(host, guest, src, port, 0x02, b"");
    let mut bad_ip = Vec::new();
    let mut bad_tcp = Vec::new();
    let mut ignored = Vec::new();
    // A bad IPv4 header checksum.
    let mut frame = syn(41_000);
    frame[24] ^= 0x55;
    bad_ip.push(frame);
    // An IP total length past the frame's end.
    let mut frame = syn(41_001);
    frame[16..18].copy_from_slice(&200u16.to_be_bytes());
    ip_checksum(&mut frame);
    bad_ip.push(frame);
    // A bad TCP checksum.
    let mut frame = syn(41_002);
    frame[50] ^= 0x55;
    bad_tcp.push(frame);
    // An IP total length shorter than the frame: 4 bytes of the segment's
    // payload fall outside the datagram, so its checksum no longer holds.
    let mut frame = tcp(host, guest, src, 41_003, 0x18, b"payload!");
    let total = u16::from_be_bytes([frame[16], frame[17]]) - 4;
    frame[16..18].copy_from_slice(&total.to_be_bytes());
    ip_checksum(&mut frame);
    bad_tcp.push(frame);
    // Odd flags: SYN+FIN, SYN+RST, all (smoltcp refuses these); none at
    // all is a valid segment (no ACK), answered with a reset.
    for (port, flags) in [(41_004, 0x03), (41_005, 0x06), (41_006, 0x3f)] {
        bad_tcp.push(tcp(host, guest, src, port, flags, b""));
    }
    ignored.push(tcp(host, guest, src, 41_007, 0x00, b""));
    // A TCP header cut short: the datagram holds 10 of its 20 bytes.
    let mut frame = syn(41_008);
    frame.truncate(14 + 20 + 10);
    frame[16..18].copy_from_slice(&30u16.to_be_bytes());
    ip_checksum(&mut frame);
    bad_tcp.push(frame);
    for frame in bad_ip.iter().chain(&bad_tcp).chain(&ignored) {
        for _ in 0..COPIES {
            socket
                .send(frame)
                .map_err(|e| format!("a bad frame: {e}"))?;
        }
    }
    // The guest's turn: `/` after the frames, then the counters.
    curl_index(ns)?;
    let after = sums(ns, &DROP_KEYS)?;
    let want = [bad_ip.len() as u64 * COPIES, bad_tcp.len() as u64 * COPIES];
    let got = [after[0] - before[0], after[1] - before[1]];
    if got != want {
        return Err(format!(
            "drop_bad_ip/drop_bad_tcp rose by {got:?}, sent {want:?}"
        ));
    }
    Ok(format!(
        "drop_bad_ip +{} drop_bad_tcp +{} (totals {}/{}); `/` served after",
        got[0], got[1], after[0], after[1]
    ))
}

/// [`FLOOD_SYNS`] SYNs from random sources, a `curl` started a third of
/// the way in; the curl must complete, and `/` be served afterwards.
fn syn_flood(
    ns: &Namespace,
    socket: &RawSocket,
    host: [u8; 6],
    guest: [u8; 6],
) -> Result<String, String> {
    let before = sums(ns, &FLOOD_KEYS)?;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let started = Instant::now();
    let mut sent_in = Duration::ZERO;
    let during = std::thread::scope(|scope| {
        let mut during = None;
        for i in 0..FLOOD_SYNS {
            if i == FLOOD_SYNS / 3 {
                during = Some(scope.spawn(|| {
                    let begun = Instant::now();
                    curl(ns, &["-m", FLOOD_CURL_SECONDS, &format!("http://{GUEST}/")])
                        .map(|body| (body, begun.elapsed()))
                }));
            }
            let r = next();
            // 198.18.0.0/15 (benchmarking addresses): routed through the
            // gateway, which forwards nothing.
            let src = [198, 18 + (r & 1) as u8, (r >> 8) as u8, (r >> 16) as u8];
            let port = 1024 + (r >> 24) as u16 % 60_000;
            let frame = tcp(host, guest, src, port, 0x02, b"");
            // A full tap queue is the host refusing for now: retry a bit.
            let mut tries = 0;
            while socket.send(&frame).is_err() && tries < 100 {
                tries += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            if i % 200 == 199 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        sent_in = started.elapsed();
        during
            .expect("the curl was started")
            .join()
            .map_err(|_| "the curl thread panicked".to_string())
    });
    let (body, took) = during?.map_err(|e| format!("the curl during the flood: {e}"))?;
    if body != percore_http::INDEX_BODY {
        return Err(format!(
            "the curl during the flood got {:?}",
            String::from_utf8_lossy(&body)
        ));
    }
    curl_index(ns)?;
    let after = sums(ns, &FLOOD_KEYS)?;
    let gained: Vec<String> = FLOOD_KEYS
        .iter()
        .zip(after.iter().zip(&before))
        .map(|(key, (a, b))| format!("{key} +{}", a - b))
        .collect();
    // Every listening socket held a half-open connection: the rest of the
    // SYNs were dropped (and counted), not answered with a reset.
    if after[1] == before[1] {
        return Err(format!("the flood never filled a backlog: {gained:?}"));
    }
    Ok(format!(
        "{FLOOD_SYNS} SYNs in {:.1} s; the curl during it took {:.1} s; {}",
        sent_in.as_secs_f64(),
        took.as_secs_f64(),
        gained.join(", ")
    ))
}

/// Sets the IPv4 header checksum of an Ethernet frame.
fn ip_checksum(frame: &mut [u8]) {
    frame[24..26].fill(0);
    let sum = !fold(sum16(&frame[14..34]));
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
}

fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// A TCP segment from `src`:`port` to 10.9.0.2:80 with `flags`, valid
/// checksums, sequence number 1000, no options.
fn tcp(
    host: [u8; 6],
    guest: [u8; 6],
    src: [u8; 4],
    port: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(54 + payload.len());
    frame.extend_from_slice(&guest);
    frame.extend_from_slice(&host);
    frame.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 20 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&netns::GUEST_IP);
    frame.extend_from_slice(&ip);
    let mut segment = [0u8; 20];
    segment[0..2].copy_from_slice(&port.to_be_bytes());
    segment[2..4].copy_from_slice(&80u16.to_be_bytes());
    segment[4..8].copy_from_slice(&1000u32.to_be_bytes());
    segment[12] = 5 << 4;
    segment[13] = flags;
    segment[14..16].copy_from_slice(&64240u16.to_be_bytes());
    frame.extend_from_slice(&segment);
    frame.extend_from_slice(payload);
    ip_checksum(&mut frame);
    let length = (20 + payload.len()) as u32;
    let pseudo = sum16(&src) + sum16(&netns::GUEST_IP) + 6 + length;
    let sum = !fold(pseudo + sum16(&frame[34..]));
    frame[50..52].copy_from_slice(&sum.to_be_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_have_valid_checksums() {
        let frame = tcp([2; 6], [4; 6], [10, 9, 0, 1], 40_000, 0x02, b"hello");
        assert_eq!(frame.len(), 14 + 20 + 20 + 5);
        assert_eq!(fold(sum16(&frame[14..34])), 0xffff);
        let pseudo = sum16(&frame[26..34]) + 6 + 25;
        assert_eq!(fold(pseudo + sum16(&frame[34..])), 0xffff);
        assert_eq!(frame[47], 0x02);
    }
}
