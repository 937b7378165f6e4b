//! Tests of the virtio-net driver on machines with a network device (the
//! host attaches one on QEMU's user network with `restrict=on`, so no
//! frame leaves QEMU, and names its MAC in `opt/percore/expect-net-mac`).
//!
//! The driver's exchange is ARP: the guest asks for the slirp gateway
//! 10.0.2.2 as 10.0.2.15 and must get slirp's reply.
//!
//! Then the stack (`net`, started by the first test that needs it, which
//! takes the device's frames from then on): the address DHCP gives, and
//! socket errors as values (a port bound twice on one core, bad
//! arguments, a connection nobody accepts, a socket used on another core,
//! a full UDP send buffer), readiness as `percore_poll` events, and TCP
//! exchanges between sockets of the guest itself (frames to its own
//! address loop back through the steering, so client and server sides sit
//! on the cores their flows hash to). The exchanges with real clients are
//! the host's (`tools/xtask/src/net_host.rs`).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::future::Future;
use core::time::Duration;

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use embedded_io_async::{Read, Write};
use futures_util::future::{Either, select};
use percore_kernel::arch::{CoreId, cpu};
use percore_kernel::drivers::pci;
use percore_kernel::drivers::virtio::net::{self, Mac, NetError, Nic};
use percore_kernel::net::samples::{self, Service};
use percore_kernel::net::{self as stack, Error as StackError, TcpListener, TcpStream, UdpSocket};
use percore_kernel::reactor::{block_on, priority, sleep, spawn_on};
use percore_kernel::{Kernel, println};
use percore_poll::{Events, Interest, Poll, Token};

use crate::harness::{Kind, Test};
use crate::reactor::start_reactors;
use crate::smp::expectation;

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("net_found_and_routed", Kind::Normal, found_and_routed),
    Test::new("net_arp_exchange_with_the_gateway", Kind::Normal, arp),
    Test::new("net_bad_frames_are_errors", Kind::Normal, bad_frames),
    // After the driver's own tests: from here on the stack owns the device.
    Test::new("net_stack_address_by_dhcp", Kind::Normal, stack_address),
    Test::new("net_socket_errors_are_values", Kind::Normal, socket_errors),
    Test::new("net_socket_wrong_core", Kind::Normal, wrong_core),
    Test::new(
        "net_user_badptr_socket_arguments",
        Kind::Normal,
        user_badptr_sockets,
    ),
    Test::new("net_udp_full_buffer_is_no_space", Kind::Normal, udp_full),
    Test::new(
        "net_socket_readiness_events",
        Kind::Normal,
        readiness_events,
    ),
    Test::new(
        "net_tcp_exchange_with_itself",
        Kind::Normal,
        exchange_with_itself,
    ),
    Test::new(
        "net_idle_echo_connection_bytes",
        Kind::Normal,
        idle_connection_bytes,
    ),
    Test::new(
        "net_streamed_connections_give_buffers_back",
        Kind::Normal,
        streamed_connections_give_buffers_back,
    ),
    Test::new(
        "net_flood_while_a_core_takes_nothing",
        Kind::Normal,
        flood_while_a_core_is_busy,
    ),
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

/// The stack, running and configured (DHCP under slirp).
fn stack() -> Result<stack::Address, String> {
    nic()?;
    stack::init().map_err(|e| format!("the stack did not start: {e}"))?;
    block_on(within("an address", stack::configured()))?.map_err(|e| format!("configured: {e}"))
}

fn any(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
}

/// DHCP gives slirp's address, the gateway is slirp's, the shell shows it.
pub fn stack_address(_: &Kernel) -> Result<(), String> {
    let address = stack()?;
    let (_, source) = stack::address().ok_or("no address after configured()")?;
    if address.ip != GUEST_IP || address.prefix != 24 || address.gateway != Some(GATEWAY_IP) {
        return Err(format!("address {address}"));
    }
    if source != stack::Source::Dhcp {
        return Err(format!("configured by {source}, not DHCP"));
    }
    let listing = block_on(percore_kernel::shell::commands::execute("net"));
    println!("{listing}");
    if !listing.contains("net: ip=10.0.2.15/24 gw=10.0.2.2 via dhcp") {
        return Err(format!("`net` printed:\n{listing}"));
    }
    Ok(())
}

/// Binding a port twice on one core, connecting where nobody listens,
/// bad arguments: each an error value.
pub fn socket_errors(_: &Kernel) -> Result<(), String> {
    stack()?;
    let first = TcpListener::bind(any(5555)).map_err(|e| format!("bind: {e}"))?;
    match TcpListener::bind(any(5555)) {
        Err(StackError::AddrInUse) => {}
        other => return Err(format!("second TCP bind: {:?}", other.map(|_| ()))),
    }
    drop(first);
    // Free again once the first is gone.
    drop(TcpListener::bind(any(5555)).map_err(|e| format!("bind after drop: {e}"))?);
    let udp = UdpSocket::bind(any(5556)).map_err(|e| format!("udp bind: {e}"))?;
    match UdpSocket::bind(any(5556)) {
        Err(StackError::AddrInUse) => {}
        other => return Err(format!("second UDP bind: {:?}", other.map(|_| ()))),
    }
    drop(udp);
    for (what, result) in [
        ("port 0", TcpListener::bind(any(0)).map(|_| ())),
        (
            "IPv6",
            TcpListener::bind("[::]:80".parse().unwrap_or(any(0))).map(|_| ()),
        ),
        (
            "connect to port 0",
            TcpStream::connect("10.0.2.2:0".parse().unwrap_or(any(0))).map(|_| ()),
        ),
    ] {
        if result != Err(StackError::InvalidInput) {
            return Err(format!("{what}: {result:?}"));
        }
    }
    // Nobody listens at 10.0.2.100:9 (no guestfwd): slirp answers with a
    // reset, or not at all (the connection times out).
    let target: SocketAddr = "10.0.2.100:9".parse().map_err(|_| "address")?;
    let outcome = block_on(within(
        "a refused connection",
        TcpStream::connect_async(target),
    ))?;
    match outcome {
        Err(StackError::ConnectionRefused | StackError::ConnectionReset | StackError::TimedOut) => {
            println!("connect to {target}: {:?}", outcome.as_ref().map(|_| ()));
            Ok(())
        }
        other => Err(format!("connect to {target}: {:?}", other.map(|_| ()))),
    }
}

/// A socket used on another core than its own: `WrongCore`, on both kinds.
pub fn wrong_core(_: &Kernel) -> Result<(), String> {
    stack()?;
    if cpu::online_cores() < 2 {
        println!("one core: nothing to test");
        return Ok(());
    }
    let here = cpu::core_id();
    let far = CoreId(if here.0 == 0 { 1 } else { 0 });
    let mut listener = TcpListener::bind(any(5557)).map_err(|e| format!("bind: {e}"))?;
    let udp = UdpSocket::bind(any(5558)).map_err(|e| format!("udp bind: {e}"))?;
    // The sockets travel to the far core and back (dropped here, on theirs).
    let (listener_back, udp_back, accepted, sent) =
        block_on(spawn_on(far, priority(40), async move {
            let accepted = listener.accept().map(|_| ());
            let sent = udp.send_to(b"x", "10.0.2.2:9".parse().unwrap_or(any(9)));
            (listener, udp, accepted, sent)
        }));
    drop((listener_back, udp_back));
    let wrong = Err(StackError::WrongCore {
        owner: here,
        here: far,
    });
    if accepted != wrong || sent.map(|_| ()) != wrong {
        return Err(format!(
            "on core {far}: accept {accepted:?}, send_to {sent:?}"
        ));
    }
    Ok(())
}

/// Datagrams queued faster than the stack sends them (no yield between
/// sends): the buffer fills and the next one is `NoBufferSpace`, not lost
/// silently.
pub fn udp_full(_: &Kernel) -> Result<(), String> {
    stack()?;
    let udp = UdpSocket::bind(any(5559)).map_err(|e| format!("bind: {e}"))?;
    let target: SocketAddr = "10.0.2.2:9".parse().map_err(|_| "address")?;
    let datagram = [0x5au8; 1000];
    for sent in 0..1000 {
        match udp.send_to(&datagram, target) {
            Ok(_) => {}
            Err(StackError::NoBufferSpace) if sent > 0 => {
                println!("{sent} datagrams queued, then NoBufferSpace");
                return Ok(());
            }
            Err(error) => return Err(format!("datagram {sent}: {error}")),
        }
    }
    Err(String::from(
        "1000 datagrams queued without filling the buffer",
    ))
}

/// A socket registered with a `percore_poll::Poll` reports its readiness
/// as events under its token (a bound UDP socket: writable, not readable);
/// registering it from another core is refused.
pub fn readiness_events(_: &Kernel) -> Result<(), String> {
    stack()?;
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut events = Events::with_capacity(8);
    let mut udp = UdpSocket::bind(any(5560)).map_err(|e| format!("bind: {e}"))?;
    poll.registry()
        .register(
            &mut udp,
            Token(7),
            Interest::READABLE.add(Interest::WRITABLE),
        )
        .map_err(|e| format!("register: {e}"))?;
    // The net task reports readiness on its next turn: let it run.
    for _ in 0..1000 {
        block_on(sleep(Duration::from_millis(1)));
        poll.poll(&mut events, Some(Duration::ZERO))
            .map_err(|e| format!("poll: {e}"))?;
        if let Some(event) = events.iter().find(|e| e.token() == Token(7)) {
            if !event.is_writable() || event.is_readable() || event.is_error() {
                return Err(format!("event {:?}", event.readiness()));
            }
            return Ok(());
        }
    }
    Err(String::from("no event for the registered socket"))
}

/// The echo sample on every core, and connections to it from this core
/// at the guest's own address: every line comes back; the frames looped
/// back (the stack has no loopback device: the steering is the path).
pub fn exchange_with_itself(_: &Kernel) -> Result<(), String> {
    let target = serve_echo()?;
    let here = cpu::core_id();
    block_on(within("exchanges with itself", async {
        for i in 0..8 {
            let mut stream = match TcpStream::connect_async(target).await {
                Ok(stream) => stream,
                Err(e) => {
                    let listing = percore_kernel::shell::commands::execute("net").await;
                    println!("connect {i} from core {here} failed; `net`:\n{listing}");
                    return Err(format!("connect {i}: {e}"));
                }
            };
            echo_line(&mut stream, &format!("line {i} from core {here}\n"), i).await?;
        }
        Ok::<(), String>(())
    }))??;
    let looped: u64 = stack::shard::slots()
        .iter()
        .map(|s| s.stats.looped.load(core::sync::atomic::Ordering::Relaxed))
        .sum();
    let accepted: u64 = stack::shard::slots()
        .iter()
        .map(|s| s.stats.accepted.load(core::sync::atomic::Ordering::Relaxed))
        .sum();
    println!("8 exchanges; {looped} frames looped back; {accepted} connections accepted");
    if looped == 0 || accepted < 8 {
        return Err(format!("looped {looped}, accepted {accepted}"));
    }
    Ok(())
}

/// Idle connections held open at once.
const IDLE: usize = 32;

/// Bytes each idle echo connection (both ends in the guest: the client's
/// socket, the server's socket and its echo task) keeps on the heap: the
/// heap's growth over [`IDLE`] connections that each exchanged a line and
/// went quiet. Each end's socket holds its small receive buffer
/// (`buffers::IDLE_RECV`; no send buffer: the one lent for the line went
/// back once it was acknowledged) and smoltcp's state; the echo task holds
/// no read buffer while idle (it waits for readability without one). What
/// the cores' buffer pools gained meanwhile is not the connections'.
pub fn idle_connection_bytes(_: &Kernel) -> Result<(), String> {
    let target = serve_echo()?;
    let (per_connection, streams) = block_on(within("idle connections", async {
        let mut streams = alloc::vec::Vec::with_capacity(IDLE);
        // The first connection warms up what is allocated once (tables,
        // listeners' sockets, the echo task's spawn path).
        for _ in 0..2 {
            let mut warm = TcpStream::connect_async(target)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            echo_line(&mut warm, "idle line 0\n", 0).await?;
        }
        sleep(Duration::from_millis(50)).await;
        let before = percore_kernel::mem::heap::used_bytes() - pool_bytes();
        for i in 0..IDLE {
            let mut stream = TcpStream::connect_async(target)
                .await
                .map_err(|e| format!("connect {i}: {e}"))?;
            echo_line(&mut stream, &format!("idle line {i}\n"), i).await?;
            streams.push(stream);
        }
        // Let every echo task go back to waiting.
        sleep(Duration::from_millis(50)).await;
        let after = percore_kernel::mem::heap::used_bytes() - pool_bytes();
        Ok::<_, String>((after.saturating_sub(before) / IDLE, streams))
    }))??;
    drop(streams);
    let buffers = 2 * stack::buffers::IDLE_RECV;
    println!(
        "net: {per_connection} bytes per idle echo connection (both ends; {buffers} of them socket buffers)"
    );
    // Both ends' buffers and smoltcp state, the echo task, bookkeeping;
    // not a 4 KiB read buffer per idle echo task on top.
    if per_connection < buffers || per_connection > buffers + 4096 {
        return Err(format!(
            "{per_connection} bytes per idle connection (buffers {buffers})"
        ));
    }
    Ok(())
}

/// Bytes of free buffers the cores' pools keep (`buffers::Pool`).
fn pool_bytes() -> usize {
    stack::shard::slots()
        .iter()
        .map(|s| {
            s.stats
                .pool_bytes
                .load(core::sync::atomic::Ordering::Relaxed)
        })
        .sum()
}

/// Every core's `buffers_lent` and `buffers_returned`, summed.
fn buffer_counts() -> (u64, u64) {
    use core::sync::atomic::Ordering::Relaxed;
    stack::shard::slots().iter().fold((0, 0), |(l, r), s| {
        (
            l + s.stats.buffers_lent.load(Relaxed),
            r + s.stats.buffers_returned.load(Relaxed),
        )
    })
}

/// Connections that stream through the echo sample in rounds.
const STREAMED: usize = 16;
const ROUNDS: usize = 3;
/// Bytes each connection sends (and reads back) per round: more than
/// the small receive buffer holds, so full-size buffers are lent.
const ROUND_BYTES: usize = 12 * 1024;

/// [`STREAMED`] connections to the echo sample (both ends in the guest)
/// each stream [`ROUND_BYTES`] through it and back, checked byte for
/// byte, in [`ROUNDS`] rounds with a quiet spell of 3 × `QUIET_NS` after
/// each: full-size buffers are lent for each round (at least one per
/// connection and round) and all taken back after it, so the connections
/// are attached and detached again and again with data in flight. After
/// the last quiet spell the heap per connection (less what the pools
/// gained) must be that of an idle connection that never streamed: both
/// ends' small receive buffers plus at most 4 KiB of state and
/// bookkeeping (as `net_idle_echo_connection_bytes` bounds it).
pub fn streamed_connections_give_buffers_back(_: &Kernel) -> Result<(), String> {
    let target = serve_echo()?;
    let quiet = Duration::from_nanos(3 * stack::buffers::QUIET_NS);
    let (per_connection, lent, returned) = block_on(within("streamed connections", async {
        let mut warm = TcpStream::connect_async(target)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        echo_line(&mut warm, "idle line 0\n", 0).await?;
        drop(warm);
        sleep(quiet).await;
        let before = percore_kernel::mem::heap::used_bytes() - pool_bytes();
        let counts = buffer_counts();
        let mut streams = alloc::vec::Vec::with_capacity(STREAMED);
        for i in 0..STREAMED {
            streams.push(
                TcpStream::connect_async(target)
                    .await
                    .map_err(|e| format!("connect {i}: {e}"))?,
            );
        }
        for round in 0..ROUNDS {
            let lent_before = buffer_counts().0;
            for (i, stream) in streams.iter_mut().enumerate() {
                let data: alloc::vec::Vec<u8> = (0..ROUND_BYTES)
                    .map(|k| (k * 7 + i * 13 + round * 101) as u8)
                    .collect();
                stream
                    .write_all(&data)
                    .await
                    .map_err(|e| format!("round {round}, connection {i}: write: {e}"))?;
                let mut back = vec![0u8; ROUND_BYTES];
                stream
                    .read_exact(&mut back)
                    .await
                    .map_err(|e| format!("round {round}, connection {i}: read: {e:?}"))?;
                if let Some(at) = back.iter().zip(&data).position(|(x, y)| x != y) {
                    return Err(format!(
                        "round {round}, connection {i}: byte {at} came back as {}, sent {}",
                        back[at], data[at]
                    ));
                }
            }
            let lent = buffer_counts().0 - lent_before;
            if lent < STREAMED as u64 {
                return Err(format!(
                    "round {round}: {lent} buffers lent to {STREAMED} streaming connections"
                ));
            }
            sleep(quiet).await;
        }
        let after = percore_kernel::mem::heap::used_bytes() - pool_bytes();
        let (lent, returned) = buffer_counts();
        drop(streams);
        Ok::<_, String>((
            after.saturating_sub(before) / STREAMED,
            lent - counts.0,
            returned - counts.1,
        ))
    }))??;
    let buffers = 2 * stack::buffers::IDLE_RECV;
    println!(
        "net: {per_connection} bytes per quiet connection after {ROUNDS} rounds of {ROUND_BYTES} bytes each way; {lent} buffers lent, {returned} taken back"
    );
    if returned < lent {
        return Err(format!("{lent} buffers lent, {returned} taken back"));
    }
    if per_connection > buffers + 4096 {
        return Err(format!(
            "{per_connection} bytes per quiet connection (idle buffers {buffers})"
        ));
    }
    Ok(())
}

/// Starts the echo sample on every core (or finds it serving) and returns
/// its address at the guest's own IP, the echo port.
fn serve_echo() -> Result<SocketAddr, String> {
    let address = stack()?;
    match block_on(within("echo", samples::serve(Service::Echo)))? {
        Ok(_) | Err(samples::ServeError::AlreadyServing) => {}
        Err(error) => return Err(format!("serve echo: {error:?}")),
    }
    let [a, b, c, d] = address.ip;
    Ok(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(a, b, c, d),
        samples::echo::PORT,
    )))
}

/// Sends `line` on connection `i` (an echo) and reads it back.
async fn echo_line(stream: &mut TcpStream, line: &str, i: usize) -> Result<(), String> {
    stream
        .write_all(line.as_bytes())
        .await
        .map_err(|e| format!("write {i}: {e}"))?;
    let mut back = vec![0u8; line.len()];
    stream
        .read_exact(&mut back)
        .await
        .map_err(|e| format!("read {i}: {e:?}"))?;
    if back != line.as_bytes() {
        return Err(format!(
            "connection {i}: sent {line:?}, got {:?}",
            String::from_utf8_lossy(&back)
        ));
    }
    Ok(())
}

/// ARP requests sent while a core is busy (each reply is a broadcast for
/// the stack: lent to every core).
const BUSY_ARPS: usize = 160;
/// The busy core stops at this flag (or after [`HANG`]).
static BUSY_RELEASE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// One core takes no frames (a task spins on it) while the gateway answers
/// a stream of ARP requests (each reply is lent to every core, zero-copy):
/// the busy core holds at most its share of the receive buffers (the rest
/// of its replies are dropped and counted, `drop_held`), the driver's
/// reserve stays posted throughout, the owner core goes on taking frames,
/// and once the core is free again every buffer comes back.
pub fn flood_while_a_core_is_busy(_: &Kernel) -> Result<(), String> {
    use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    use percore_kernel::reactor::{SpawnOptions, spawn_with};
    use percore_kernel::time::Clock;
    stack()?;
    let nic = nic()?;
    let pair = &nic.pairs()[0];
    let owner = pair.owner;
    let here = cpu::core_id();
    let Some(busy) = (0..cpu::online_cores() as u16)
        .map(CoreId)
        .find(|&c| c != owner && c != here)
        .or_else(|| (here == owner && cpu::online_cores() > 1).then_some(CoreId(1)))
        .filter(|&c| c != here)
    else {
        println!("no core to keep busy besides this one and the owner: nothing to check");
        return Ok(());
    };
    let stats = |core: CoreId| stack::shard::slot(core).map(|s| &s.stats);
    let owner_stats = stats(owner).ok_or("no shard on the owner core")?;
    let (buffers, _) = pair.buffers();
    let reserve = net::pair::reserve(buffers);
    let held_before = owner_stats.drop_held.load(Relaxed);
    let owner_rx_before = owner_stats.rx_frames.load(Relaxed);
    BUSY_RELEASE.store(false, Release);
    let spinning = spawn_with(busy, SpawnOptions::new(priority(10)).pinned(), async move {
        let deadline = Clock::now().0 + HANG.as_nanos() as u64;
        while !BUSY_RELEASE.load(Acquire) && Clock::now().0 < deadline {
            core::hint::spin_loop();
        }
    });
    let mac = nic.mac();
    let request = arp_request(mac);
    let mut lowest_posted = buffers;
    let result = block_on(within("the flood", async {
        // Let the busy task start.
        sleep(Duration::from_millis(20)).await;
        for i in 0..BUSY_ARPS {
            nic.send(&request)
                .await
                .map_err(|e| format!("ARP request {i}: {e:?}"))?;
            sleep(Duration::from_millis(2)).await;
            let posted = buffers.saturating_sub(pair.lent() + pair.waiting());
            lowest_posted = lowest_posted.min(posted);
        }
        // Wait until the busy core's share is used up and refusals counted.
        while owner_stats.drop_held.load(Relaxed) == held_before {
            sleep(Duration::from_millis(10)).await;
        }
        Ok::<(), String>(())
    }));
    let lent_during = pair.lent();
    let owner_rx = owner_stats.rx_frames.load(Relaxed) - owner_rx_before;
    let refused = owner_stats.drop_held.load(Relaxed) - held_before;
    BUSY_RELEASE.store(true, Release);
    block_on(spinning);
    result??;
    // The busy core takes its frames and gives the buffers back.
    block_on(within("the buffers to come back", async {
        while pair.lent() > 4 {
            sleep(Duration::from_millis(10)).await;
        }
    }))?;
    let lent_after = pair.lent();
    println!(
        "net: core {busy} busy: {refused} replies refused to it, {lent_during} buffers lent at the end of the flood, {lent_after} after, fewest posted {lowest_posted} (reserve {reserve}); core {owner} took {owner_rx} frames meanwhile"
    );
    if lowest_posted < reserve || lent_during + reserve > buffers || owner_rx == 0 {
        return Err(format!(
            "fewest posted {lowest_posted} (reserve {reserve}), {lent_during} lent of {buffers}, owner took {owner_rx}"
        ));
    }
    Ok(())
}

/// The ring-3 `badptr` with a network (argument `net`): its socket cases
/// that need a stream and a bound UDP socket run too (bad pointers into
/// `sock_read`/`sock_write`/`udp_send_to`/`udp_recv_from`, flags,
/// registration); it exits with the number of wrong answers.
fn user_badptr_sockets(_: &Kernel) -> Result<(), String> {
    stack()?;
    for core in 0..crate::reactor::cores() {
        let core = percore_kernel::arch::CoreId(core);
        let exit = crate::user::run("badptr", core, "net")?;
        crate::user::expect_code("badptr net", exit, 0)?;
    }
    Ok(())
}
