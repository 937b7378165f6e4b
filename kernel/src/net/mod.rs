//! TCP/IP on smoltcp, sharded per core, with mio-style sockets.
//!
//! **Sharding.** Every core runs its own smoltcp `Interface` and
//! `SocketSet` ([`shard`]) in a pinned net task, polled when frames or
//! socket calls arrive and when smoltcp's `poll_at` is due (a reactor
//! timer). Nothing on the packet path takes a global lock: a core's shard
//! is touched only by that core.
//!
//! - *Receive.* Bad IPv4/TCP/UDP headers are dropped and counted first
//!   ([`check`]). The device has one queue pair under QEMU's user network;
//!   the core that owns it takes every received frame and steers it
//!   ([`steer`]): IPv4 TCP and UDP by a hash of the flow (addresses and
//!   ports) to the core that owns the flow; ARP replies and link
//!   broadcasts to every core (each core's neighbour cache must learn the
//!   gateway: each core ARPs for it itself when it first sends); ARP
//!   requests for us, ICMP, DHCP and IP fragments to the owner core.
//!   Nothing is copied ([`loan`]): the owner lends each frame out in the
//!   device's receive buffer and passes the loan to the target core over
//!   that core's intercore ring (`ipc::channel`, one per core); a
//!   broadcast goes to every core as shared loans of the one buffer.
//!   The target's smoltcp reads the frame in place; the spent loan goes
//!   back to the owner over the target's up ring to it (one per core and
//!   owner, with room for every loan, so never full), and the owner posts
//!   the buffer to the device again once its last loan is back. Receive
//!   never runs dry: the driver keeps a quarter of the buffers posted
//!   (it lends no more; with every other buffer waiting, the oldest frame
//!   is dropped, counted `nobuf`), and the owner lends a core at most its
//!   share of the rest (a core that does not take its frames cannot hold
//!   more: the frame is dropped, counted `drop_held`). A full ring drops
//!   the frame, counted (`drop_ring_full`): TCP retransmits.
//! - *Transmit* ([`wire`]). smoltcp writes each frame straight into a
//!   free transmit slot of the core's pair (a lock-free set shared by the
//!   cores on the pair). The pair's owner puts it on the ring itself;
//!   another core hands the slot to the owner over its up ring
//!   (`tx_handed`), and the owner puts it on the ring on its next turn
//!   (`tx_for_others`): only the owner takes the ring's lock, so no lock
//!   is contended on the packet path. No free slot is backpressure: smoltcp
//!   keeps the data (`WouldBlock` to writers once the socket's buffer is
//!   full), and the net task is woken when a slot frees (the pair's
//!   `tx_waits` counts each blocked send once). `copied_bytes` counts the
//!   payload bytes copied on the packet path: 0 but for a reply carrying
//!   payload that smoltcp makes while every slot is taken (it waits on the
//!   heap and is copied into a slot later).
//! - *One pair per core* (a tap backend with `queues=N`): the device's RSS
//!   steers each flow to its core's pair, the core takes its own frames
//!   and sends on its own pair; nothing crosses cores but the rare frame
//!   RSS and the flow hash disagree on, and broadcasts.
//! - *Listening.* A [`TcpListener`] listens on one core; a server opens
//!   one per core on the same port (like `SO_REUSEPORT`), because each
//!   incoming connection goes to the core its flow hashes to. A port with
//!   no listener on that core answers with a reset.
//! - *Connecting.* [`TcpStream::connect`] picks a local port whose reply
//!   flow hashes back to the connecting core (Seastar's trick), so the
//!   connection's frames reach it without any table of flows.
//! - *Addresses.* DHCP runs on the owner core ([`config`]); the address it
//!   gets (or the static one) is published to every core, which applies it
//!   to its interface on its next turn.
//!
//! **Injected loss** ([`loss`]): for testing, a boot configuration file
//! makes every core drop one TCP segment in `N` each way.
//!
//! **Buffers** ([`buffers`]): an idle TCP connection holds a 1 KiB
//! receive buffer and no send buffer; full-size ones are lent from its
//! core's pool while data is in flight and taken back when it is quiet.
//!
//! **Sockets** ([`tcp`], [`udp`]): mio's names and semantics, `embedded-io`
//! byte I/O, `percore_poll::Source` registration, async wrappers. A socket
//! belongs to the core that created it; using it on another core is
//! [`Error::WrongCore`] (it is not forwarded).

pub mod buffers;
pub mod check;
pub mod config;
pub mod error;
pub mod loan;
pub mod loss;
pub mod meta;
pub mod samples;
pub mod shard;
pub mod steer;
pub mod tcp;
pub mod udp;
pub mod wire;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::Poll;

use percore_wake::WaitList;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

pub use config::{Address, Source};
pub use error::{Error, Result};
pub use tcp::{Options, Shutdown, TcpListener, TcpStream};
pub use udp::UdpSocket;

use crate::arch::{CoreId, cpu};
use crate::drivers::fw_cfg;
use crate::drivers::virtio::net as nic;
use crate::ipc::channel;
use crate::reactor::{self, SpawnOptions};
use crate::time::Clock;

/// Frames (and messages) each core's inbound ring holds.
pub const RING: usize = 1024;
/// The net tasks' priority (above applications, below device completions).
const NET_PRIORITY: u8 = 50;

static ADDRESS: spin::RwLock<Option<(Address, Source)>> = spin::RwLock::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static CONFIGURED: WaitList = WaitList::new();
static STARTED: spin::Once<core::result::Result<(), Error>> = spin::Once::new();

/// Starts the stack on every core (once; later calls return the first
/// outcome): one shard and net task per core, the address from
/// [`config::NET_FILE`] (DHCP by default). [`Error::NoNetwork`] without a
/// network device.
pub fn init() -> Result<()> {
    *STARTED.call_once(start)
}

/// Whether the stack runs (without starting it).
pub fn running() -> bool {
    matches!(STARTED.get(), Some(Ok(())))
}

fn start() -> Result<()> {
    let nic = nic::device().ok_or(Error::NoNetwork)?;
    let cores = cpu::online_cores();
    let owner = nic.pairs().first().map_or(CoreId(0), |p| p.owner);
    let mode = configured_mode();
    configure_loss();
    let mut rings = Vec::new();
    for _ in 0..cores {
        rings.push(channel::channel::<shard::Inbound>(RING).map_err(|_| Error::NoNetwork)?);
    }
    let senders: Vec<_> = rings.iter().map(|(tx, _)| tx.clone()).collect();
    let mut owners: Vec<usize> = nic.pairs().iter().map(|p| p.owner.index()).collect();
    owners.sort_unstable();
    owners.dedup();
    // Up rings: from every core to every other core that owns a pair.
    let mut ups: Vec<Vec<Option<channel::Sender<loan::Up>>>> = (0..cores)
        .map(|_| (0..cores).map(|_| None).collect())
        .collect();
    let mut downs: Vec<Vec<(usize, channel::Receiver<loan::Up>)>> =
        (0..cores).map(|_| Vec::new()).collect();
    for pair in nic.pairs() {
        let o = pair.owner.index();
        let (rx_buffers, tx_slots) = pair.buffers();
        for (c, ups_of_core) in ups.iter_mut().enumerate().filter(|&(c, _)| c != o) {
            if ups_of_core[o].is_some() {
                continue;
            }
            let (tx, rx) = channel::channel::<loan::Up>(loan::up_capacity(rx_buffers, tx_slots))
                .map_err(|_| Error::NoNetwork)?;
            ups_of_core[o] = Some(tx);
            downs[o].push((c, rx));
        }
    }
    let mut shards = Vec::new();
    for (index, (((inbox, inbound), ups), downs)) in
        rings.into_iter().zip(ups).zip(downs).enumerate()
    {
        let core = CoreId(index as u16);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(nic.mac())));
        config.random_seed = Clock::now().0 ^ ((index as u64 + 1) << 48);
        let (mut rx, mut backlog) = (VecDeque::new(), VecDeque::new());
        let stats = shard::Stats::default();
        let (mut spent, mut looped) = (Vec::new(), Vec::new());
        let mut device = wire::Wire {
            rx: &mut rx,
            spent: &mut spent,
            backlog: &mut backlog,
            pair: None,
            up: None,
            waker: core::task::Waker::noop(),
            waited: &mut false,
            blocked: &mut false,
            stats: &stats,
            mac: nic.mac(),
            ip: None,
            looped: &mut looped,
            loss: &mut loss::Dice::default(),
        };
        let iface = Interface::new(config, &mut device, shard::now());
        let mut sockets = SocketSet::new(Vec::new());
        let wants_dhcp = matches!(mode, config::Mode::Dhcp | config::Mode::DhcpOr(_));
        let dhcp = (core == owner && wants_dhcp).then(|| sockets.add(dhcpv4::Socket::new()));
        let shard = shard::Shard {
            core,
            iface,
            sockets,
            rx,
            backlog,
            inbound,
            peers: senders.clone(),
            ups,
            pair_owner: nic.pairs()[nic.pair_of(core)].owner.index(),
            held: owners
                .contains(&index)
                .then(|| loan::Held::new(cores, nic.pairs()[nic.pair_of(core)].buffers().0)),
            downs,
            tx_waited: false,
            tx_blocked: false,
            spent,
            looped,
            metas: BTreeMap::new(),
            listeners: BTreeMap::new(),
            dhcp,
            applied: 0,
            next_port: *steer::EPHEMERAL.start() + (Clock::now().0 % 4096) as u16,
            dirty: false,
            syns: Vec::new(),
            pool: buffers::Pool::default(),
            buffers_due: None,
            loss: loss::Dice::default(),
        };
        shards.push((shard, inbox));
    }
    shard::install(shards);
    match mode {
        config::Mode::Static(address) => publish(address, Source::Static),
        config::Mode::DhcpOr(address) => {
            let options = SpawnOptions::new(reactor::priority(NET_PRIORITY));
            drop(reactor::spawn_with(owner, options, async move {
                reactor::sleep(config::FALLBACK_AFTER).await;
                if self::address().is_none() {
                    log::warn!(
                        "net: no DHCP lease after {:?}; using the fallback",
                        config::FALLBACK_AFTER
                    );
                    publish(address, Source::Static);
                }
            }));
        }
        config::Mode::Dhcp => {}
    }
    for index in 0..cores {
        let core = CoreId(index as u16);
        let options = SpawnOptions::new(reactor::priority(NET_PRIORITY)).pinned();
        drop(reactor::spawn_with(core, options, shard::run(core, nic)));
    }
    Ok(())
}

/// Turns injected loss on if the boot configuration asks for it
/// ([`loss::LOSS_FILE`]); a bad value is logged and leaves it off.
fn configure_loss() {
    let mut buffer = [0u8; 16];
    let Ok(text) = fw_cfg::read_text(loss::LOSS_FILE, &mut buffer) else {
        return;
    };
    match loss::parse(text) {
        Ok(every) => {
            loss::set(every);
            log::warn!("net: injected loss: one TCP segment in {every} dropped each way");
        }
        Err(_) => log::warn!(
            "net: {} = `{}`: not a number from 2 to 1000000; no loss injected",
            loss::LOSS_FILE,
            text.trim()
        ),
    }
}

/// The mode the boot configuration asks for (DHCP when absent or bad,
/// which is logged).
fn configured_mode() -> config::Mode {
    let mut buffer = [0u8; 128];
    match fw_cfg::read_text(config::NET_FILE, &mut buffer) {
        Ok(text) => config::parse(text).unwrap_or_else(|error| {
            log::warn!(
                "net: {} = `{text}`: {error:?}; using DHCP",
                config::NET_FILE
            );
            config::Mode::Dhcp
        }),
        Err(_) => config::Mode::Dhcp,
    }
}

/// Sets the address every core uses, prints it, and wakes every net task.
pub fn publish(address: Address, source: Source) {
    {
        let mut current = ADDRESS.write();
        if *current == Some((address, source)) {
            return;
        }
        *current = Some((address, source));
    }
    GENERATION.fetch_add(1, Ordering::AcqRel);
    crate::println!("net: {address} via {source}");
    CONFIGURED.wake_all();
    for index in 0..shard::slots().len() {
        shard::kick(CoreId(index as u16));
    }
}

/// The address in use and where it came from, once configured.
pub fn address() -> Option<(Address, Source)> {
    *ADDRESS.read()
}

/// The configuration generation (bumped by every [`publish`]).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Waits until the interface has an address ([`Error::NoNetwork`] if the
/// stack is not running).
pub async fn configured() -> Result<Address> {
    init()?;
    poll_fn(|cx| {
        if let Some((address, _)) = address() {
            return Poll::Ready(address);
        }
        CONFIGURED.register(cx.waker());
        match address() {
            Some((address, _)) => Poll::Ready(address),
            None => Poll::Pending,
        }
    })
    .await;
    // Every core applies it on its next turn; let them.
    reactor::yield_now().await;
    address().map(|(a, _)| a).ok_or(Error::NoNetwork)
}
