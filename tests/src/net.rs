//! Tests of the virtio-net driver on machines with a network device (the
//! host attaches one on QEMU's user network with `restrict=on`, so no
//! frame leaves QEMU, and names its MAC in `opt/percore/expect-net-mac`).
//!
//! The exchange is ARP: the guest asks for the slirp gateway 10.0.2.2 as
//! 10.0.2.15 and must get slirp's reply.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::future::Future;
use core::time::Duration;

use futures_util::future::{Either, select};
use percore_kernel::arch::{CoreId, cpu};
use percore_kernel::drivers::pci;
use percore_kernel::drivers::virtio::net::{self, Mac, NetError, Nic};
use percore_kernel::reactor::{block_on, sleep};
use percore_kernel::{Kernel, println};

use crate::harness::{Kind, Test};
use crate::reactor::start_reactors;
use crate::smp::expectation;

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("net_found_and_routed", Kind::Normal, found_and_routed),
    Test::new("net_arp_exchange_with_the_gateway", Kind::Normal, arp),
    Test::new("net_bad_frames_are_errors", Kind::Normal, bad_frames),
];

/// A hang guard (not a timing assertion).
const HANG: Duration = Duration::from_secs(30);
/// Frames looked at for the ARP reply before giving up.
const MAX_FRAMES: usize = 32;
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

fn nic() -> Result<&'static Nic, String> {
    start_reactors();
    net::init().map_err(|e| format!("no network device: {e:?}"))
}

/// `future`, or an error if it has not finished after [`HANG`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> Result<T, String> {
    let future = core::pin::pin!(future);
    let timeout = core::pin::pin!(sleep(HANG));
    match select(future, timeout).await {
        Either::Left((value, _)) => Ok(value),
        Either::Right(_) => Err(format!("{what}: nothing within {HANG:?}")),
    }
}

/// The device, its MAC (the one the host set), link up, one queue pair
/// (slirp offers one) owned by core 0, both its virtqueues on MSI-X entry
/// 0 whose message targets core 0's vector (read back from the device).
pub fn found_and_routed(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let mac = format!("{}", Mac(nic.mac()));
    let expected = expectation("opt/percore/expect-net-mac").ok_or("host gave no MAC")?;
    if mac != expected {
        return Err(format!("MAC {mac}, host set {expected}"));
    }
    if !nic.link_up() {
        return Err(String::from("link down"));
    }
    if nic.pairs().len() != 1 {
        return Err(format!("{} queue pairs on slirp", nic.pairs().len()));
    }
    let table = pci::msix_table(nic.bdf()).ok_or("no MSI-X table mapped")?;
    if !table.enabled() {
        return Err(String::from("MSI-X is not enabled on the device"));
    }
    let info = nic.pair_info(0).ok_or("no pair info")?;
    if info.owner != CoreId(0) || info.msix_entries != (0, 0) {
        return Err(format!("pair 0: {info:?}"));
    }
    if info.target != Some((CoreId(0), info.vector)) {
        return Err(format!(
            "pair 0: its MSI-X entry targets {:?}, not core 0 vector {:#x}",
            info.target, info.vector
        ));
    }
    for core in 0..cpu::online_cores() {
        if nic.pair_of(CoreId(core as u16)) != 0 {
            return Err(format!("core {core} uses another pair than 0"));
        }
    }
    let listing = block_on(percore_kernel::shell::commands::execute("net"));
    println!("{listing}");
    if !listing.contains(&mac) || !listing.contains("link up") || !listing.contains("0>c0/") {
        return Err(format!("`net` printed:\n{listing}"));
    }
    Ok(())
}

/// An ARP request for `GATEWAY_IP` from `GUEST_IP` at `mac`, padded to
/// Ethernet's 60-byte minimum.
fn arp_request(mac: [u8; 6]) -> [u8; 60] {
    let mut frame = [0u8; 60];
    frame[..6].fill(0xFF);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_ARP);
    // Ethernet, IPv4, 6-byte and 4-byte addresses, request.
    frame[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame[22..28].copy_from_slice(&mac);
    frame[28..32].copy_from_slice(&GUEST_IP);
    frame[38..42].copy_from_slice(&GATEWAY_IP);
    frame
}

/// The gateway's MAC if `frame` is an ARP reply from `GATEWAY_IP` to us.
fn arp_reply(frame: &[u8], mac: [u8; 6]) -> Option<[u8; 6]> {
    let is_reply = frame.len() >= 42
        && frame[12..14] == ETHERTYPE_ARP
        && frame[14..22] == [0, 1, 8, 0, 6, 4, 0, 2]
        && frame[28..32] == GATEWAY_IP
        && frame[32..38] == mac
        && frame[38..42] == GUEST_IP
        && frame[..6] == mac;
    is_reply.then(|| frame[22..28].try_into().unwrap_or_default())
}

/// Sends the ARP request and waits (bounded) for slirp's reply. The first
/// frame is first asked for with a 10-byte buffer: an error naming its
/// length, and the frame is still there for the next call.
pub fn arp(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let mac = nic.mac();
    let before = nic.totals();
    block_on(within("the ARP reply", async {
        nic.send(&arp_request(mac))
            .await
            .map_err(|e| format!("send: {e:?}"))?;
        let mut small = [0u8; 10];
        let needed = match nic.recv(&mut small).await {
            Err(NetError::BufferTooSmall(needed)) if needed >= 42 => needed,
            other => return Err(format!("recv into 10 bytes: {other:?}")),
        };
        let mut frame = vec![0u8; 2048];
        for i in 0..MAX_FRAMES {
            let len = nic
                .recv(&mut frame)
                .await
                .map_err(|e| format!("recv: {e:?}"))?;
            if i == 0 && len != needed {
                return Err(format!("the kept frame has {len} bytes, not {needed}"));
            }
            if let Some(gateway) = arp_reply(&frame[..len], mac) {
                println!("ARP reply: 10.0.2.2 is at {}", Mac(gateway));
                if gateway[0] & 1 != 0 || gateway == [0; 6] {
                    return Err(format!("gateway MAC {}", Mac(gateway)));
                }
                return Ok(());
            }
            println!("not the reply: {:02x?}", &frame[..len.min(42)]);
        }
        Err(format!("no ARP reply among {MAX_FRAMES} frames"))
    }))??;
    let after = nic.totals();
    if after.tx_frames <= before.tx_frames || after.rx_frames <= before.rx_frames {
        return Err(format!("counters before {before:?}, after {after:?}"));
    }
    if after.interrupts == 0 || after.foreign_interrupts != 0 {
        return Err(format!("interrupts: {after:?}"));
    }
    Ok(())
}

/// Frames `send` must refuse: each an error value, none sent, each counted.
pub fn bad_frames(_: &Kernel) -> Result<(), String> {
    let nic = nic()?;
    let mac = nic.mac();
    let mut short_length = arp_request(mac);
    // An 802.3 length field of 1000 in a 60-byte frame.
    short_length[12..14].copy_from_slice(&1000u16.to_be_bytes());
    let mut multicast_source = arp_request(mac);
    multicast_source[6] |= 1;
    let cases: [(&str, &[u8], NetError); 5] = [
        ("empty", &[], NetError::BadLength(0)),
        ("13 bytes", &[0x02; 13], NetError::BadLength(13)),
        ("1515 bytes", &[0x02; 1515], NetError::BadLength(1515)),
        ("length field", &short_length, NetError::Malformed),
        ("group source", &multicast_source, NetError::Malformed),
    ];
    let before = nic.totals();
    for (what, frame, expected) in cases {
        let result = block_on(within(what, nic.send(frame)))?;
        if result != Err(expected) {
            return Err(format!("{what}: {result:?}, expected {expected:?}"));
        }
    }
    let after = nic.totals();
    if after.tx_frames != before.tx_frames || after.tx_rejected != before.tx_rejected + 5 {
        return Err(format!("counters before {before:?}, after {after:?}"));
    }
    Ok(())
}
