//! Tests of the multiqueue virtio-net driver on the tap machines: 4-core
//! guests whose device has 4 (or 2) queue pairs on a multi-queue tap
//! inside a network namespace the host made for the boot
//! (`tools/xtask/src/netns.rs`), with RSS on. The host names what to
//! expect in fw_cfg (`opt/percore/expect-net-pairs`, `expect-net-rss`).
//!
//! The host drives the traffic (`tools/xtask/src/netmq.rs`), started by the
//! guest's lines. `netmq_host_frames`: the guest starts a small responder
//! on every core (each receives on its core's pair, answers ARP for
//! 10.9.0.2 and sorts what comes in), prints [`GO`], and the host sends an
//! ARP request, many UDP flows, bad frames, an end marker saying what it
//! sent, and an ARP request again. The guest checks the counts against the
//! marker, that every pair took flows, that each flow came in on the pair
//! the RSS table names, and that the drops are counted by reason.
//! `netmq_ring_never_runs_dry`: nobody receives while the host floods
//! ([`FLOOD`]); then an ARP request must still be answered ([`ARP_AGAIN`]).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use futures_util::future::{Either, select};
use percore_kernel::arch::{CoreId, cpu};
use percore_kernel::drivers::virtio::net::{self, CtrlError, DropReason, Flow, Mac, Nic, ctrl};
use percore_kernel::reactor::{self, SpawnOptions, block_on, priority, sleep};
use percore_kernel::{Kernel, println};

use crate::harness::{Kind, Test};
use crate::reactor::start_reactors;
use crate::smp::expectation;

/// The machine these tests run on (`tools/xtask/src/netmq.rs`).
const MACHINE: &str = "tap";

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "netmq_pairs_found_and_routed",
        Kind::Machine(MACHINE),
        pairs_found,
    ),
    Test::new(
        "netmq_control_errors_are_values",
        Kind::Machine(MACHINE),
        control_errors,
    ),
    Test::new("netmq_host_frames", Kind::Machine(MACHINE), host_frames),
    Test::new(
        "netmq_ring_never_runs_dry",
        Kind::Machine(MACHINE),
        never_dry,
    ),
    Test::new(
        "netmq_transmit_from_every_core",
        Kind::Machine(MACHINE),
        transmit,
    ),
];

/// The line the host waits for before it sends.
pub const GO: &str = "netmq-host: go";
/// The line after which the host floods the pairs (nobody receives).
pub const FLOOD: &str = "netmq-host: flood";
/// The line after which the host asks for 10.9.0.2 once more.
pub const ARP_AGAIN: &str = "netmq-host: arp";
const GUEST_IP: [u8; 4] = [10, 9, 0, 2];
/// UDP port of the host's flows and of its end marker.
const FLOW_PORT: u16 = 9;
const FLOW_TAG: &[u8] = b"netmq-flow";
const END_TAG: &[u8] = b"netmq-end";
/// Hang guard for the host's traffic (not a timing assertion).
const HANG: Duration = Duration::from_secs(90);

fn nic() -> Result<&'static Nic, String> {
    start_reactors();
    net::init().map_err(|e| format!("no network device: {e:?}"))
}

fn expected_pairs() -> Result<usize, String> {
    expectation("opt/percore/expect-net-pairs")
        .ok_or("host gave no pair count")?
        .parse()
        .map_err(|e| format!("expect-net-pairs: {e}"))
}

/// Every pair is there, pair *k* owned by core *k*, both its queues on
/// MSI-X entry *k* whose message targets core *k*'s vector (read back);
/// RSS as the host says; the `net` listing shows each route.
pub fn pairs_found(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let pairs = expected_pairs()?;
    if nic.pairs().len() != pairs || nic.max_pairs() as usize != pairs {
        return Err(format!(
            "{} of {} pairs in use, host gave {pairs} (fallback {:?})",
            nic.pairs().len(),
            nic.max_pairs(),
            nic.fallback()
        ));
    }
    let rss = expectation("opt/percore/expect-net-rss").as_deref() == Some("on");
    if nic.rss().is_some() != rss {
        return Err(format!(
            "RSS {:?}, host expects {rss} (fallback {:?})",
            nic.rss(),
            nic.fallback()
        ));
    }
    let listing = block_on(percore_kernel::shell::commands::execute("net"));
    println!("{listing}");
    for k in 0..pairs {
        let info = nic.pair_info(k).ok_or("no pair info")?;
        let core = CoreId(k as u16);
        if info.owner != core || info.msix_entries != (k as u16, k as u16) {
            return Err(format!("pair {k}: {info:?}"));
        }
        if info.target != Some((core, info.vector)) {
            return Err(format!(
                "pair {k}: its MSI-X entry targets {:?}, not core {k} vector {:#x}",
                info.target, info.vector
            ));
        }
        if nic.pair_of(core) != k {
            return Err(format!("core {k} uses pair {}", nic.pair_of(core)));
        }
        if nic.pairs()[k].buffers().0 != net::pair::RX_BUFFERS {
            return Err(format!("pair {k}: {:?} buffers", nic.pairs()[k].buffers()));
        }
        if !listing.contains(&format!("{k}>c{k}/")) {
            return Err(format!("`net` shows no route for pair {k}"));
        }
    }
    if !listing.contains(&format!("{pairs} of {pairs} queue pair(s)")) {
        return Err(String::from("`net` does not show the pairs"));
    }
    // Cores beyond the pair count share: core c uses pair c mod pairs.
    for c in pairs..cpu::online_cores() {
        if nic.pair_of(CoreId(c as u16)) != c % pairs {
            return Err(format!(
                "core {c} uses pair {}",
                nic.pair_of(CoreId(c as u16))
            ));
        }
    }
    if pairs < cpu::online_cores() && !listing.contains("share pairs") {
        return Err(String::from("`net` does not say that cores share pairs"));
    }
    Ok(())
}

/// Commands the device refuses come back as `Refused`, change nothing the
/// driver relies on, and the driver's own configuration is taken again.
pub fn control_errors(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let pairs = nic.pairs().len() as u16;
    let cases: [(&str, u8, u8, Vec<u8>); 4] = [
        ("an unknown class", 0xEE, 0, vec![]),
        (
            "too many pairs",
            ctrl::CLASS_MQ,
            ctrl::MQ_VQ_PAIRS_SET,
            (nic.max_pairs() + 1).to_le_bytes().to_vec(),
        ),
        (
            "zero pairs",
            ctrl::CLASS_MQ,
            ctrl::MQ_VQ_PAIRS_SET,
            0u16.to_le_bytes().to_vec(),
        ),
        (
            "a truncated RSS configuration",
            ctrl::CLASS_MQ,
            ctrl::MQ_RSS_CONFIG,
            vec![0xFF; 5],
        ),
    ];
    for (what, class, command, data) in cases {
        match nic.command(class, command, &data) {
            Err(CtrlError::Refused(_)) => {}
            other => return Err(format!("{what}: {other:?}, expected Refused")),
        }
    }
    let too_long = nic.command(ctrl::CLASS_MQ, ctrl::MQ_RSS_CONFIG, &[0; 2000]);
    if too_long != Err(CtrlError::TooLong(2000)) {
        return Err(format!("2000 bytes of data: {too_long:?}"));
    }
    nic.reprogram()
        .map_err(|e| format!("taking the configuration again: {e:?}"))?;
    if nic.pairs().len() as u16 != pairs || nic.failure().is_some() {
        return Err(format!(
            "after the errors: {} pairs, failure {:?}",
            nic.pairs().len(),
            nic.failure()
        ));
    }
    Ok(())
}

/// Responders on every core until `done` says so (or the hang guard).
fn with_responders(
    nic: &'static Nic,
    seen: &Arc<Seen>,
    done: impl Fn(&Seen) -> Result<bool, String>,
) -> Result<(), String> {
    let pinned = SpawnOptions::new(priority(40)).pinned();
    let responders: Vec<_> = (0..cpu::online_cores())
        .map(|core| reactor::spawn_with(CoreId(core as u16), pinned, respond(nic, seen.clone())))
        .collect();
    let waited = block_on(async {
        let wait = core::pin::pin!(async {
            loop {
                if done(seen)? {
                    return Ok(());
                }
                sleep(Duration::from_millis(20)).await;
            }
        });
        let guard = core::pin::pin!(sleep(HANG));
        match select(wait, guard).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(format!(
                "the host's traffic did not all arrive within {HANG:?} (marker {:?})",
                seen.end.lock().clone()
            )),
        }
    });
    seen.stop.store(true, Ordering::Release);
    for responder in responders {
        block_on(responder)?;
    }
    waited
}

/// What the responders saw, shared by all of them.
#[derive(Default)]
struct Seen {
    /// Flow frames per pair.
    flows: [AtomicU64; 8],
    /// Flow frames that came in on another pair than the RSS table names.
    misrouted: AtomicU64,
    arp_answered: AtomicU64,
    /// Frames that are neither ARP for us, nor a flow, nor the end marker.
    other: AtomicU64,
    /// The end marker's text.
    end: spin::Mutex<Option<String>>,
    stop: AtomicBool,
}

/// Everything received on the core's pair until told to stop.
async fn respond(nic: &'static Nic, seen: Arc<Seen>) -> Result<(), String> {
    let pair = nic.pair_of(cpu::core_id());
    let mac = nic.mac();
    let mut buf = vec![0u8; 2048];
    while !seen.stop.load(Ordering::Acquire) {
        let received = {
            let recv = core::pin::pin!(nic.recv_on(pair, &mut buf));
            let tick = core::pin::pin!(sleep(Duration::from_millis(50)));
            match select(recv, tick).await {
                Either::Left((received, _)) => received,
                Either::Right(_) => continue,
            }
        };
        let received = received.map_err(|e| format!("pair {pair}: {e:?}"))?;
        let frame = &buf[..received.len];
        if let Some(reply) = arp_reply(frame, mac) {
            nic.send(&reply)
                .await
                .map_err(|e| format!("ARP reply: {e:?}"))?;
            seen.arp_answered.fetch_add(1, Ordering::Relaxed);
        } else if let Some(payload) = udp_payload(frame) {
            if payload.starts_with(END_TAG) {
                *seen.end.lock() = Some(String::from_utf8_lossy(payload).into_owned());
            } else if payload.starts_with(FLOW_TAG) {
                seen.flows[received.pair.min(7)].fetch_add(1, Ordering::Relaxed);
                let expected = Flow::of_frame(frame).and_then(|f| nic.pair_of_flow(&f));
                if expected.is_some_and(|p| p != received.pair) {
                    seen.misrouted.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                seen.other.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            seen.other.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// The ARP reply to `frame` if it is a request for [`GUEST_IP`].
fn arp_reply(frame: &[u8], mac: [u8; 6]) -> Option<[u8; 60]> {
    let request = frame.len() >= 42
        && frame[12..14] == [0x08, 0x06]
        && frame[14..22] == [0, 1, 8, 0, 6, 4, 0, 1]
        && frame[38..42] == GUEST_IP;
    if !request {
        return None;
    }
    let mut reply = [0u8; 60];
    reply[..6].copy_from_slice(&frame[22..28]);
    reply[6..12].copy_from_slice(&mac);
    reply[12..14].copy_from_slice(&[0x08, 0x06]);
    reply[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    reply[22..28].copy_from_slice(&mac);
    reply[28..32].copy_from_slice(&GUEST_IP);
    reply[32..42].copy_from_slice(&frame[22..32]);
    Some(reply)
}

/// The payload of an IPv4 UDP datagram to [`GUEST_IP`]:[`FLOW_PORT`],
/// every length checked (the bad frames test exactly this).
fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let ip = frame.get(14..)?;
    if frame[12..14] != [0x08, 0x00] || ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if header < 20 || total < header + 8 || total > ip.len() || ip[9] != 17 {
        return None;
    }
    if ip[16..20] != GUEST_IP {
        return None;
    }
    let udp = &ip[header..total];
    let length = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if u16::from_be_bytes([udp[2], udp[3]]) != FLOW_PORT || length < 8 || length > udp.len() {
        return None;
    }
    Some(&udp[8..length])
}

/// A number after `key=` in the end marker.
fn marker_field(marker: &str, key: &str) -> Result<u64, String> {
    marker
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("end marker `{marker}` has no {key}"))
}

/// The host's traffic (see the module docs), checked.
pub fn host_frames(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let before = nic.totals();
    let seen = Arc::new(Seen::default());
    println!("{GO}");
    let waited = with_responders(nic, &seen, |seen| {
        let Some(marker) = seen.end.lock().clone() else {
            return Ok(false);
        };
        let flows = marker_field(&marker, "flows")?;
        let arps = marker_field(&marker, "arps")?;
        let got: u64 = seen.flows.iter().map(|f| f.load(Ordering::Relaxed)).sum();
        Ok(got >= flows && seen.arp_answered.load(Ordering::Relaxed) >= arps)
    });
    let marker = seen.end.lock().clone().unwrap_or_default();
    let after = nic.totals();
    let flows: Vec<u64> = seen
        .flows
        .iter()
        .take(nic.pairs().len())
        .map(|f| f.load(Ordering::Relaxed))
        .collect();
    let drops: Vec<(&str, u64)> = DropReason::ALL
        .iter()
        .map(|r| {
            (
                r.name(),
                after.drops[*r as usize] - before.drops[*r as usize],
            )
        })
        .collect();
    println!(
        "netmq: flows per pair {flows:?}, misrouted {}, ARP answered {}, other {}, drops {drops:?}",
        seen.misrouted.load(Ordering::Relaxed),
        seen.arp_answered.load(Ordering::Relaxed),
        seen.other.load(Ordering::Relaxed)
    );
    println!(
        "{}",
        block_on(percore_kernel::shell::commands::execute("net"))
    );
    waited?;
    if flows.contains(&0) {
        return Err(format!("a pair took no flow: {flows:?}"));
    }
    let misrouted = seen.misrouted.load(Ordering::Relaxed);
    if misrouted != 0 {
        return Err(format!("{misrouted} flow frames off their RSS pair"));
    }
    let long = marker_field(&marker, "long")?;
    let too_long =
        after.drops[DropReason::TooLong as usize] - before.drops[DropReason::TooLong as usize];
    if too_long != long {
        return Err(format!(
            "{too_long} frames dropped as too long, host sent {long}"
        ));
    }
    let short = marker_field(&marker, "short")?;
    let too_short =
        after.drops[DropReason::TooShort as usize] - before.drops[DropReason::TooShort as usize];
    if too_short != short {
        return Err(format!(
            "{too_short} frames dropped as too short, host sent {short}"
        ));
    }
    let other = marker_field(&marker, "other")?;
    if seen.other.load(Ordering::Relaxed) < other {
        return Err(format!(
            "{} bad frames reached the responders, host sent {other}",
            seen.other.load(Ordering::Relaxed)
        ));
    }
    if nic.failure().is_some() || after.rx_frames <= before.rx_frames {
        return Err(format!("device {:?}, totals {after:?}", nic.failure()));
    }
    println!("netmq: MAC {}", Mac(nic.mac()));
    Ok(())
}

/// Frames the host sends in the flood (64 flows, 10 frames each: more
/// than every pair holds, however RSS spreads them).
const FLOOD_FRAMES: u64 = 640;

/// Nobody receives while the host sends more frames than a pair holds:
/// each pair keeps its newest frames (all but a quarter of its buffers),
/// drops the oldest as `NoBuffer`, loses nothing uncounted, and still
/// answers afterwards.
pub fn never_dry(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let before = nic.totals();
    let nobuf = |t: &net::Totals| t.drops[DropReason::NoBuffer as usize];
    let waiting = || nic.pairs().iter().map(|p| p.waiting() as u64).sum::<u64>();
    println!("{FLOOD}");
    block_on(async {
        let wait = core::pin::pin!(async {
            while waiting() + nobuf(&nic.totals()) - nobuf(&before) < FLOOD_FRAMES {
                sleep(Duration::from_millis(20)).await;
            }
        });
        let guard = core::pin::pin!(sleep(HANG));
        match select(wait, guard).await {
            Either::Left(_) => Ok(()),
            Either::Right(_) => Err(format!(
                "{} of {FLOOD_FRAMES} flood frames arrived",
                waiting() + nobuf(&nic.totals()) - nobuf(&before)
            )),
        }
    })?;
    let dropped = nobuf(&nic.totals()) - nobuf(&before);
    let held: Vec<usize> = nic.pairs().iter().map(|p| p.waiting()).collect();
    println!("netmq: flood held {held:?}, dropped {dropped} as no buffer");
    let capacity = net::pair::RX_BUFFERS - net::pair::RX_BUFFERS / 4;
    if dropped == 0 || held.iter().any(|&h| h > capacity) {
        return Err(format!(
            "held {held:?} (at most {capacity} each), dropped {dropped}"
        ));
    }
    if waiting() + dropped != FLOOD_FRAMES {
        return Err(format!(
            "{} frames held and {dropped} dropped, host sent {FLOOD_FRAMES}",
            waiting()
        ));
    }
    // Take what is held, then the device must still deliver.
    let mut buf = vec![0u8; 2048];
    let mut taken = 0;
    for pair in 0..nic.pairs().len() {
        while nic
            .try_recv_on(pair, &mut buf)
            .map_err(|e| format!("pair {pair}: {e:?}"))?
            .is_some()
        {
            taken += 1;
        }
    }
    if taken != held.iter().sum::<usize>() {
        return Err(format!("took {taken} frames, {held:?} were held"));
    }
    let seen = Arc::new(Seen::default());
    println!("{ARP_AGAIN}");
    with_responders(nic, &seen, |seen| {
        Ok(seen.arp_answered.load(Ordering::Relaxed) >= 1)
    })
}

/// Frames sent from each core.
const SENDS_PER_CORE: usize = 200;

/// Every core sends at once on its pair (cores beyond the pairs share):
/// every frame is accepted and counted, none lost to a full ring (a full
/// ring makes the sender wait: `tx_waits`).
pub fn transmit(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let before = nic.totals();
    let mac = nic.mac();
    let pinned = SpawnOptions::new(priority(40)).pinned();
    let senders: Vec<_> = (0..cpu::online_cores())
        .map(|core| {
            reactor::spawn_with(CoreId(core as u16), pinned, async move {
                let mut frame = [0u8; 200];
                frame[..6].fill(0xFF);
                frame[6..12].copy_from_slice(&mac);
                frame[12..14].copy_from_slice(&[0x88, 0xb5]);
                for i in 0..SENDS_PER_CORE {
                    frame[14..22].copy_from_slice(&(i as u64).to_be_bytes());
                    nic.send(&frame)
                        .await
                        .map_err(|e| format!("core {core}: {e:?}"))?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for sender in senders {
        block_on(sender)?;
    }
    let after = nic.totals();
    let sent = after.tx_frames - before.tx_frames;
    println!(
        "netmq: {sent} frames sent, {} backpressure waits",
        after.tx_waits - before.tx_waits
    );
    if sent != (SENDS_PER_CORE * cpu::online_cores()) as u64
        || after.tx_rejected != before.tx_rejected
    {
        return Err(format!("before {before:?}, after {after:?}"));
    }
    Ok(())
}
