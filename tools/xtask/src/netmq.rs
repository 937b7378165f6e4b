//! The tap machine's tests (`tests/src/netmq.rs`), driven from the host:
//! a 4-core guest with 4 queue pairs on a multi-queue tap in a network
//! namespace of its own (`netns`). When the guest says its responders are
//! up, the host sends through an AF_PACKET socket on the tap: an ARP
//! request for 10.9.0.2 (the answer must come back), 64 UDP flows of 4
//! frames each, bad frames (a runt, IPv4 cut short of its header, lengths
//! that lie, frames over the MTU, garbage), an end marker saying what was
//! sent, and an ARP request again (it must still be answered). After the
//! boot the namespace must be gone.

use std::process::Command;
use std::time::Duration;

use crate::error::Error;
use crate::netns::{self, Namespace, RawSocket};
use crate::qemu::{Captured, Firmware, Machine};
use crate::test::{self, Tally};

/// The machine name the guest's tests give (`Kind::Machine`).
pub const MACHINE: &str = "tap";
const LABEL: &str = "tap-smp4";
/// Queue pairs (and cores) of the tap machine.
const PAIRS: u32 = 4;
/// The guest's line that starts the host's traffic.
const GO: &str = "netmq-host: go";
const FLOWS: u16 = 64;
const FRAMES_PER_FLOW: u16 = 4;
const FLOW_PORT: u16 = 9;
/// How long the host waits for an ARP answer (a hang guard).
const ARP_WAIT: Duration = Duration::from_secs(20);

/// Whether `name` is the machine this file drives.
pub fn drives(name: &str) -> bool {
    name == MACHINE
}

/// Asked about the serial lines so far: whether to SIGKILL QEMU now.
pub type KillCheck<'a> = &'a mut dyn FnMut(&[String]) -> bool;
/// A boot of the test kernel with a `run ...` command, its QEMU command
/// passed through `wrap`.
pub type BootWrapped<'a> = &'a dyn Fn(
    &Machine,
    &str,
    &dyn Fn(&Command) -> Command,
    KillCheck<'_>,
) -> Result<Captured, Error>;

/// What the host saw and sent.
#[derive(Debug, Default)]
struct HostReport {
    first_arp: Option<String>,
    last_arp: Option<String>,
    marker: String,
}

/// Runs the tap machine's guest `tests` and the host's checks.
pub fn run(tests: &[&str], boot: BootWrapped, tally: &mut Tally) -> Result<(), Error> {
    let started = std::time::Instant::now();
    if !netns::is_root() {
        let why = "needs root (a network namespace and a tap device)";
        println!("test qemu/{LABEL}/* ... skipped: {why}");
        tally.skip(
            tests.len() + 3,
            &format!("{} on {LABEL}: {why}", tests.len() + 3),
        );
        return Ok(());
    }
    let (captured, host, name) = {
        let namespace = Namespace::create()?;
        let name = namespace.name().to_string();
        // Frames over 1514 bytes must leave the host to reach the guest.
        namespace.set_mtu(9000)?;
        let socket = RawSocket::open(&namespace)?;
        let host_mac = namespace.tap_mac()?;
        let mut machine = Machine::new(Firmware::Bios, PAIRS);
        machine.extra = netns::qemu_args(PAIRS, Some(crate::net::TEST_MAC));
        for (key, value) in [
            ("opt/percore/expect-net-mac", crate::net::TEST_MAC),
            ("opt/percore/expect-net-pairs", &PAIRS.to_string()),
            ("opt/percore/expect-net-rss", "on"),
            ("opt/percore/net", netns::GUEST_CONFIG),
        ] {
            machine.fw_cfg.push((key.into(), value.into()));
        }
        let guest_mac = netns::parse_mac(crate::net::TEST_MAC).expect("a valid MAC");
        let mut host: Option<Result<HostReport, String>> = None;
        let mut seen = 0;
        let mut kill = |lines: &[String]| {
            if host.is_none() && lines[seen..].iter().any(|l| l == GO) {
                host = Some(drive(&socket, host_mac, guest_mac));
            }
            seen = lines.len();
            false
        };
        let captured = boot(
            &machine,
            &format!("run {}", tests.join(" ")),
            &|command| namespace.exec(command),
            &mut kill,
        )?;
        (captured, host, name)
    };
    test::report(LABEL, tests, &captured, tally);
    let host = host.unwrap_or_else(|| Err(format!("the guest never printed `{GO}`")));
    if let Ok(report) = &host {
        println!("   (host sent: {})", report.marker);
    }
    let checks: [(&str, Result<(), String>); 3] = [
        (
            "netmq_host_arp_answered",
            host.as_ref()
                .map_err(Clone::clone)
                .and_then(|r| r.first_arp.clone().map(drop).ok_or("no ARP answer".into())),
        ),
        (
            "netmq_host_good_frame_after_bad_ones",
            host.as_ref().map_err(Clone::clone).and_then(|r| {
                r.last_arp
                    .clone()
                    .map(drop)
                    .ok_or("no ARP answer after the bad frames".into())
            }),
        ),
        (
            "netmq_namespace_removed",
            if netns::exists(&name) {
                Err(format!("namespace {name} is still there"))
            } else {
                Ok(())
            },
        ),
    ];
    for (test, verdict) in checks {
        let full = format!("qemu/{LABEL}/{test}");
        match &verdict {
            Ok(()) => println!("test {full} ... ok"),
            Err(why) => println!("test {full} ... FAILED: {why}"),
        }
        tally.record(&full, verdict.is_ok());
    }
    println!("   ({LABEL}: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// The host's traffic (see the module docs).
fn drive(socket: &RawSocket, host: [u8; 6], guest: [u8; 6]) -> Result<HostReport, String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mut report = HostReport {
        first_arp: ask_arp(socket, host, guest)?,
        ..HostReport::default()
    };
    let mut sent = 0;
    for flow in 0..FLOWS {
        for frame in 0..FRAMES_PER_FLOW {
            let payload = format!("netmq-flow {flow} {frame}");
            let packet = udp(
                host,
                guest,
                40_000 + flow,
                FLOW_PORT,
                payload.as_bytes(),
                None,
            );
            socket.send(&packet).map_err(|e| io("a flow frame", e))?;
            sent += 1;
            if sent % 32 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // Bad frames. Which the guest can tell apart: `other` reach its
    // responders and are ignored, `long` are dropped by the driver.
    let mut other = 0;
    let mut short = 0;
    // A runt: Linux refuses to send less than an Ethernet header; if it
    // ever does not, the driver must count it as too short.
    if socket.send(&ethernet(guest, host, 0x0800)[..10]).is_ok() {
        short += 1;
    }
    let valid = udp(host, guest, 39_000, FLOW_PORT, b"netmq-bad", None);
    let mut bad: Vec<Vec<u8>> = Vec::new();
    // IPv4 with no header at all, and cut short of one.
    bad.extend((0..3).map(|_| valid[..14].to_vec()));
    bad.extend((0..3).map(|_| valid[..20].to_vec()));
    // Lengths that lie: IP total length 1000, header length 2 words, UDP
    // length past the datagram.
    bad.extend((0..3).map(|_| udp(host, guest, 39_001, FLOW_PORT, b"x", Some(1000))));
    let mut ihl = valid.clone();
    ihl[14] = 0x42;
    bad.extend([ihl.clone(), ihl]);
    let mut udp_len = valid.clone();
    udp_len[38..40].copy_from_slice(&500u16.to_be_bytes());
    bad.extend([udp_len.clone(), udp_len]);
    // Garbage: pseudo-random bytes of random lengths (never ARP or IPv4).
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20 {
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let len = 14 + (next() % 1500) as usize;
        let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        frame[..6].copy_from_slice(&guest);
        if matches!(frame[12..14], [0x08, 0x00] | [0x08, 0x06]) {
            frame[12] = 0x88;
        }
        bad.push(frame);
    }
    other += bad.len();
    for frame in &bad {
        socket.send(frame).map_err(|e| io("a bad frame", e))?;
    }
    // Over the 1514-byte maximum: 1600 bytes fit the driver's buffers and
    // are dropped by it; 4000 fit none (QEMU drops them, without
    // MRG_RXBUF); both must leave the guest running.
    let mut long = 0;
    for len in [1600, 1600, 4000, 4000] {
        let mut frame = ethernet(guest, host, 0x88b5);
        frame.resize(len, 0xAB);
        socket
            .send(&frame)
            .map_err(|e| io("an oversized frame", e))?;
        if len <= 2048 - 12 {
            long += 1;
        }
    }
    report.marker = format!(
        "netmq-end flows={} long={long} short={short} other={other} arps=2",
        FLOWS * FRAMES_PER_FLOW
    );
    let end = udp(
        host,
        guest,
        39_999,
        FLOW_PORT,
        report.marker.as_bytes(),
        None,
    );
    socket.send(&end).map_err(|e| io("the end marker", e))?;
    report.last_arp = ask_arp(socket, host, guest)?;
    Ok(report)
}

/// Asks who has 10.9.0.2 (a few times) and waits for the guest's answer.
fn ask_arp(socket: &RawSocket, host: [u8; 6], guest: [u8; 6]) -> Result<Option<String>, String> {
    let mut request = ethernet([0xFF; 6], host, 0x0806);
    request.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    request.extend_from_slice(&host);
    request.extend_from_slice(&netns::HOST_IP);
    request.extend_from_slice(&[0; 6]);
    request.extend_from_slice(&netns::GUEST_IP);
    request.resize(60, 0);
    socket
        .send(&request)
        .map_err(|e| format!("the ARP request: {e}"))?;
    let answer = socket
        .recv_matching(ARP_WAIT, &mut |f| {
            f.len() >= 42
                && f[12..14] == [0x08, 0x06]
                && f[20..22] == [0, 2]
                && f[22..28] == guest
                && f[28..32] == netns::GUEST_IP
                && f[32..38] == host
        })
        .map_err(|e| format!("waiting for the ARP answer: {e}"))?;
    Ok(answer.map(|_| format!("10.9.0.2 is at {}", crate::net::TEST_MAC)))
}

/// An Ethernet header.
fn ethernet(destination: [u8; 6], source: [u8; 6], kind: u16) -> Vec<u8> {
    let mut frame = Vec::with_capacity(1514);
    frame.extend_from_slice(&destination);
    frame.extend_from_slice(&source);
    frame.extend_from_slice(&kind.to_be_bytes());
    frame
}

/// An IPv4 UDP frame from 10.9.0.1:`from` to 10.9.0.2:`to` (a valid
/// header checksum; `total` overrides the IP total length).
fn udp(
    host: [u8; 6],
    guest: [u8; 6],
    from: u16,
    to: u16,
    payload: &[u8],
    total: Option<u16>,
) -> Vec<u8> {
    let mut frame = ethernet(guest, host, 0x0800);
    let length = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.unwrap_or(length).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&netns::HOST_IP);
    ip[16..20].copy_from_slice(&netns::GUEST_IP);
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !((folded & 0xffff) + (folded >> 16)) as u16;
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&from.to_be_bytes());
    frame.extend_from_slice(&to.to_be_bytes());
    frame.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_frames_have_a_valid_ip_checksum() {
        let frame = udp([2; 6], [4; 6], 40_000, 9, b"hello", None);
        assert_eq!(frame.len(), 14 + 20 + 8 + 5);
        let sum: u32 = frame[14..34]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        let folded = (sum & 0xffff) + (sum >> 16);
        assert_eq!((folded & 0xffff) + (folded >> 16), 0xffff);
        assert_eq!(&frame[16 + 20..16 + 20 + 2], &9u16.to_be_bytes());
    }
}
