//! The tap machines' tests (`tests/src/netmq.rs`), driven from the host:
//! a 4-core guest with 4 queue pairs, and one with 2 (cores 2 and 3
//! share), on a multi-queue tap in a network namespace of its own
//! (`netns`), RSS on. The guest prints a line for each step and the host,
//! watching the serial console, sends through an AF_PACKET socket on the
//! tap. At `netmq-host: go`: an ARP request for 10.9.0.2 (the answer must
//! come back), 64 UDP flows of 4 frames each, bad frames (a runt, IPv4 cut
//! short of its header, lengths that lie, frames over the MTU, garbage),
//! an end marker saying what was sent, and an ARP request again (it must
//! still be answered). At `netmq-host: flood`: 64 flows of 5 frames while
//! the guest receives nothing. At `netmq-host: arp`: an ARP request (the
//! pairs still deliver after the flood). After the boot the namespace
//! must be gone.

use std::process::Command;
use std::time::Duration;

use crate::error::Error;
use crate::netns::{self, Namespace, RawSocket};
use crate::qemu::{Captured, Firmware, Machine};
use crate::test::{self, Tally};

/// The machine name the guest's tests give (`Kind::Machine`).
pub const MACHINE: &str = "tap";
/// The tap machines: 4 cores with a pair each, and 4 cores on 2 pairs
/// (cores 2 and 3 share).
const MACHINES: [(&str, u32, u32); 2] = [("tap-smp4", 4, 4), ("tap-smp4-2pairs", 4, 2)];
/// The guest's lines that start each part of the host's traffic.
const GO: &str = "netmq-host: go";
const FLOOD: &str = "netmq-host: flood";
const ARP_AGAIN: &str = "netmq-host: arp";
const FLOWS: u16 = 64;
const FRAMES_PER_FLOW: u16 = 4;
const FLOOD_FRAMES_PER_FLOW: u16 = 10;
const FLOW_PORT: u16 = 9;
/// How long the host waits for an ARP answer (a hang guard).
const ARP_WAIT: Duration = Duration::from_secs(20);
/// Host-side checks per machine.
const HOST_CHECKS: usize = 4;

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

/// The host's part, step by step as the guest asks.
#[derive(Default)]
struct Host {
    frames: Option<Result<HostReport, String>>,
    flood: Option<Result<(), String>>,
    arp_after_flood: Option<Result<Option<String>, String>>,
}

/// Runs the tap machines' guest `tests` and the host's checks.
pub fn run(tests: &[&str], boot: BootWrapped, tally: &mut Tally) -> Result<(), Error> {
    for (label, cores, pairs) in MACHINES {
        if !netns::is_root() {
            let why = "needs root (a network namespace and a tap device)";
            println!("test qemu/{label}/* ... skipped: {why}");
            let count = tests.len() + HOST_CHECKS;
            tally.skip(count, &format!("{count} on {label}: {why}"));
            continue;
        }
        run_machine(label, cores, pairs, tests, boot, tally)?;
    }
    Ok(())
}

fn run_machine(
    label: &str,
    cores: u32,
    pairs: u32,
    tests: &[&str],
    boot: BootWrapped,
    tally: &mut Tally,
) -> Result<(), Error> {
    let (captured, host, name) = {
        let namespace = Namespace::create()?;
        let name = namespace.name().to_string();
        // Frames over 1514 bytes must leave the host to reach the guest.
        namespace.set_mtu(9000)?;
        let socket = RawSocket::open(&namespace)?;
        let host_mac = namespace.tap_mac()?;
        let mut machine = Machine::new(Firmware::Bios, cores);
        machine.extra = netns::qemu_args(pairs, Some(crate::net::TEST_MAC));
        for (key, value) in [
            ("opt/percore/expect-net-mac", crate::net::TEST_MAC),
            ("opt/percore/expect-net-pairs", &pairs.to_string()),
            ("opt/percore/expect-net-rss", "on"),
            ("opt/percore/net", netns::GUEST_CONFIG),
        ] {
            machine.fw_cfg.push((key.into(), value.into()));
        }
        let guest_mac = netns::parse_mac(crate::net::TEST_MAC).expect("a valid MAC");
        let mut host = Host::default();
        let mut seen = 0;
        let mut kill = |lines: &[String]| {
            for line in &lines[seen..] {
                match line.as_str() {
                    GO if host.frames.is_none() => {
                        host.frames = Some(drive(&socket, host_mac, guest_mac));
                    }
                    FLOOD if host.flood.is_none() => {
                        host.flood = Some(flood(&socket, host_mac, guest_mac));
                    }
                    ARP_AGAIN if host.arp_after_flood.is_none() => {
                        host.arp_after_flood = Some(ask_arp(&socket, host_mac, guest_mac));
                    }
                    _ => {}
                }
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
    test::report(label, tests, &captured, tally);
    let never = |line: &str| format!("the guest never printed `{line}`");
    let frames = host.frames.unwrap_or_else(|| Err(never(GO)));
    if let Ok(report) = &frames {
        println!("   (host sent: {})", report.marker);
    }
    let answered = |answer: &Option<String>, when: &str| {
        answer
            .as_ref()
            .map(drop)
            .ok_or_else(|| format!("no ARP answer {when}"))
    };
    let checks: [(&str, Result<(), String>); HOST_CHECKS] = [
        (
            "netmq_host_arp_answered",
            frames
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|r| answered(&r.first_arp, "at first")),
        ),
        (
            "netmq_host_good_frame_after_bad_ones",
            frames
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|r| answered(&r.last_arp, "after the bad frames")),
        ),
        (
            "netmq_host_arp_after_flood",
            host.flood
                .unwrap_or_else(|| Err(never(FLOOD)))
                .and(
                    host.arp_after_flood
                        .unwrap_or_else(|| Err(never(ARP_AGAIN))),
                )
                .and_then(|answer| answered(&answer, "after the flood")),
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
        let full = format!("qemu/{label}/{test}");
        match &verdict {
            Ok(()) => println!("test {full} ... ok"),
            Err(why) => println!("test {full} ... FAILED: {why}"),
        }
        tally.record(&full, verdict.is_ok());
    }
    Ok(())
}

/// Sends `per_flow` frames of each of the [`FLOWS`] UDP flows, paced.
fn send_flows(
    socket: &RawSocket,
    host: [u8; 6],
    guest: [u8; 6],
    per_flow: u16,
) -> Result<u64, String> {
    let mut sent = 0;
    for flow in 0..FLOWS {
        for frame in 0..per_flow {
            let payload = format!("netmq-flow {flow} {frame}");
            let packet = udp(
                host,
                guest,
                40_000 + flow,
                FLOW_PORT,
                payload.as_bytes(),
                None,
            );
            socket
                .send(&packet)
                .map_err(|e| format!("a flow frame: {e}"))?;
            sent += 1;
            if sent % 32 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(sent)
}

/// The flood: more frames per pair than it holds, while nobody receives.
fn flood(socket: &RawSocket, host: [u8; 6], guest: [u8; 6]) -> Result<(), String> {
    send_flows(socket, host, guest, FLOOD_FRAMES_PER_FLOW).map(drop)
}

/// The host's traffic (see the module docs).
fn drive(socket: &RawSocket, host: [u8; 6], guest: [u8; 6]) -> Result<HostReport, String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mut report = HostReport {
        first_arp: ask_arp(socket, host, guest)?,
        ..HostReport::default()
    };
    send_flows(socket, host, guest, FRAMES_PER_FLOW)?;
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
