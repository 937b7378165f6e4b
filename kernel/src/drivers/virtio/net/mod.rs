//! virtio-net (virtio 1.2, section 5.1): Ethernet frames in and out
//! through receive/transmit queue pairs, for the TCP/IP layer above.
//!
//! Features: `VERSION_1` (required), `MAC` (else the driver has no address
//! and gives up), `STATUS` (link state from the configuration; without it
//! the link counts as up), `EVENT_IDX`, and with the control queue
//! (`CTRL_VQ`, see [`ctrl`]) `MQ` and `RSS`. Not negotiated: `MRG_RXBUF`
//! (each receive buffer is 2 KiB, room for the header and the largest
//! frame, so a frame never spans buffers; a larger frame is dropped by the
//! device, or by the driver as too long), segmentation offloads (TSO/GSO:
//! smoltcp never makes a segment longer than the peer's MSS), `HASH_REPORT`, `CTRL_RX` (the
//! device delivers every frame), guest announcements.
//!
//! Checksum offloads, each when the device offers it ([`Offloads`]; QEMU
//! offers them with a tap backend, not with its user network): `CSUM`,
//! the device finishes the TCP/UDP checksum of each frame the stack sends
//! (the header says `NEEDS_CSUM` and where; the stack writes only the
//! pseudo-header's sum: [`pair::offload_header`]); `GUEST_CSUM`, a received
//! frame whose header says `DATA_VALID` (or `NEEDS_CSUM`: a local sender
//! left it partial) is not checked again, while one with neither flag is
//! checked by the stack as without the feature (a corrupt frame is still
//! dropped and counted). Counted per pair as `rx_csum_valid` and
//! `tx_csum_offloaded`.
//!
//! Queue pairs ([`setup`]): with `MQ`, as many pairs as the device offers,
//! cores there are and MSI-X entries allow; pair *k* belongs to core *k*:
//! both its virtqueues raise MSI-X entry *k*, whose message targets core
//! *k* (read back in [`PairInfo`]); the handler only raises the pair's
//! readiness, and a pinned completion task there drains both rings (see
//! [`pair`]). After DRIVER_OK the control queue turns the pairs on
//! (`VQ_PAIRS_SET`) and, with `RSS`, programs the Toeplitz key and the
//! indirection table so that the flows of pair *k* reach core *k* ([`rss`];
//! frames the device cannot hash, such as ARP, go to pair 0). A device
//! that refuses the pair count leaves the driver on one pair; one that
//! refuses RSS leaves the pairs steered by its own rules (both logged,
//! and [`Nic::fallback`] says why). With fewer pairs than cores, core *c*
//! uses pair *c mod pairs*: cores beyond the pair count share a pair with
//! its owner (they send on it and take frames off it; its interrupts and
//! completions stay on the owner). QEMU's user network offers one pair;
//! a tap backend with `queues=N` and `mq=on,rss=on` offers N, with RSS
//! computed in software under TCG.
//!
//! The API for the layer above: [`Nic::send`] (async: waits for a free
//! transmit slot, which is the backpressure, counted as `tx_waits`) and
//! [`Nic::recv`] (async, into the caller's buffer), [`Nic::try_recv`] for
//! a poll-driven stack, all on the calling core's pair; [`Nic::recv_on`]
//! and [`Nic::try_recv_on`] on a given pair, returning which pair the frame
//! came in on ([`Received`]); [`Nic::pair_of_flow`] for the pair a flow's
//! packets arrive on. Received frames the driver drops are counted per
//! pair by reason ([`DropReason`]). Errors are values ([`NetError`],
//! [`CtrlError`] for control commands); a device that misbehaves (a
//! [`DeviceError`] from a virtqueue, e.g. a used length beyond the buffer)
//! is reset and taken out of service, and the kernel goes on.

pub mod ctrl;
pub mod pair;
pub mod rss;
mod setup;

use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::Ordering;

use percore_poll::{Interest, Ready};
use percore_virtqueue::DeviceError;

use super::COMPLETION_PRIORITY;
use super::transport::{Transport, TransportError};
use crate::arch::irq::MsiError;
use crate::arch::{CoreId, cpu};
use crate::drivers::pci::{self, Bdf, MsixError};
use crate::reactor::readiness::{self, Readiness, ReadinessError};
use crate::reactor::{self, SpawnOptions};
pub use ctrl::CtrlError;
pub use pair::{DropReason, ETHERNET_HEADER, MAX_FRAME, Offloads, Pair, PairError, PairStats};
pub use rss::{Flow, RssConfig};
use setup::CONFIG_STATUS;

/// `VIRTIO_NET_S_LINK_UP`.
const LINK_UP: u16 = 1;

/// Why a frame could not be sent or received. Nothing is retried behind
/// the caller's back; a frame refused by `send` was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// There is no network device (none found, or it failed to start).
    NoDevice,
    /// A frame to send is shorter than an Ethernet header or longer than
    /// [`MAX_FRAME`].
    BadLength(usize),
    /// A frame to send is not Ethernet: a multicast source address, or a
    /// type/length field that is neither a type (0x0600 or more) nor a
    /// length that fits the frame.
    Malformed,
    /// The received frame is longer than the caller's buffer (it stays
    /// queued: call again with room for this many bytes).
    BufferTooSmall(usize),
    /// The device misbehaved and was taken out of service.
    Device(DeviceError),
}

/// Why the device could not be started (it has been reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No virtio-net function on the PCI bus.
    NotFound,
    Transport(TransportError),
    Msix(MsixError),
    Irq(MsiError),
    Readiness(ReadinessError),
    Pair(PairError),
    /// The device has no MAC address for us (`VIRTIO_NET_F_MAC` missing).
    NoMac,
    /// The device offers no queue pair (or no MSI-X entry for one).
    NoQueues,
}

/// What the device reads back about one pair (for `net` and the tests).
#[derive(Clone, Copy, Debug)]
pub struct PairInfo {
    pub index: u16,
    pub owner: CoreId,
    /// The vector allocated on the owner core.
    pub vector: u8,
    /// The MSI-X entries the device says the receive and transmit queues raise.
    pub msix_entries: (u16, u16),
    /// The core and vector the pair's entry targets (read back from the
    /// table; `None` if masked or unreadable).
    pub target: Option<(CoreId, u8)>,
    pub size: u16,
    /// Receive buffers and transmit slots.
    pub buffers: (usize, usize),
    pub dma_bytes: usize,
}

/// Totals over every pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub tx_rejected: u64,
    pub tx_waits: u64,
    pub interrupts: u64,
    pub foreign_interrupts: u64,
    /// Received frames dropped, by [`DropReason`] (in `DropReason::ALL` order).
    pub drops: [u64; DropReason::COUNT],
}

/// A frame [`Nic::recv_on`] received: its length and the pair it came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub pair: usize,
}

/// The network device.
pub struct Nic {
    transport: Transport,
    mac: [u8; 6],
    status: bool,
    features: u64,
    /// Pairs the device offers (`max_virtqueue_pairs`; 1 without `MQ`).
    max_pairs: u16,
    /// Pairs in use (the first `active` of `pairs`): all that were set up,
    /// or 1 after a fallback.
    active: u16,
    /// Every pair set up (their memory stays while the device may use it).
    pairs: Vec<Pair>,
    control: Option<ctrl::Control>,
    /// The RSS configuration the device took, if any.
    rss: Option<RssConfig>,
    /// Why the driver runs with fewer pairs or without RSS, if it does.
    fallback: Option<CtrlError>,
    failure: spin::Once<DeviceError>,
}

static NIC: spin::Once<Result<Nic, InitError>> = spin::Once::new();
static TASKS: spin::Once<()> = spin::Once::new();

/// Finds the first virtio-net device and starts it (once; later calls
/// return the same outcome). Needs the reactors: each pair's completion
/// task is spawned on its core.
pub fn init() -> Result<&'static Nic, InitError> {
    let nic = NIC
        .call_once(|| {
            let result = setup::probe();
            match &result {
                Ok(nic) => log::info!(
                    "virtio-net {}: MAC {}, link {}, {} of {} queue pair(s), RSS {}, features {:#x}",
                    nic.bdf(),
                    Mac(nic.mac),
                    if nic.link_up() { "up" } else { "down" },
                    nic.pairs().len(),
                    nic.max_pairs,
                    if nic.rss.is_some() { "on" } else { "off" },
                    nic.features
                ),
                Err(InitError::NotFound) => {}
                Err(error) => log::error!("virtio-net: not started: {error:?}"),
            }
            result
        })
        .as_ref()
        .map_err(|e| *e)?;
    TASKS.call_once(|| {
        for (index, pair) in nic.pairs().iter().enumerate() {
            let options = SpawnOptions::new(reactor::priority(COMPLETION_PRIORITY)).pinned();
            drop(reactor::spawn_with(pair.owner, options, completions(index)));
        }
    });
    Ok(nic)
}

/// The network device, once [`init`] started it.
pub fn device() -> Option<&'static Nic> {
    NIC.get()?.as_ref().ok()
}

/// A MAC address printed `52:54:00:12:34:56`.
pub struct Mac(pub [u8; 6]);

impl core::fmt::Display for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A pair's MSI-X handler (on its owner core, interrupts masked): counts
/// and raises the pair's readiness; the completion task does the rest.
fn on_interrupt(index: usize) {
    let Some(pair) = device().and_then(|d| d.pairs.get(index)) else {
        return;
    };
    pair.stats.interrupts.fetch_add(1, Ordering::Relaxed);
    if cpu::core_id() != pair.owner {
        pair.stats
            .foreign_interrupts
            .fetch_add(1, Ordering::Relaxed);
    }
    readiness::raise(pair.source, Ready::READABLE);
}

/// A pair's completion task, pinned to its owner core.
async fn completions(index: usize) {
    let Some(nic) = device() else { return };
    let pair = &nic.pairs[index];
    let mut ready = match Readiness::register(pair.source, Interest::READABLE) {
        Ok(ready) => ready,
        Err(error) => {
            log::error!("virtio-net pair {index}: no completions: {error:?}");
            return;
        }
    };
    loop {
        if let Err(error) = pair.drain() {
            nic.fail(error);
            return;
        }
        ready.ready().await;
    }
}

/// Checks that `frame` is an Ethernet frame this driver may send.
pub fn check_frame(frame: &[u8]) -> Result<(), NetError> {
    if !(ETHERNET_HEADER..=MAX_FRAME).contains(&frame.len()) {
        return Err(NetError::BadLength(frame.len()));
    }
    // The source address's I/G bit: a group address never sends.
    if frame[6] & 1 != 0 {
        return Err(NetError::Malformed);
    }
    let kind = usize::from(u16::from_be_bytes([frame[12], frame[13]]));
    let payload = frame.len() - ETHERNET_HEADER;
    if kind < 0x0600 && kind > payload {
        return Err(NetError::Malformed);
    }
    Ok(())
}

impl Nic {
    /// The PCI function.
    pub fn bdf(&self) -> Bdf {
        self.transport.function().bdf
    }

    /// The device's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Whether the link is up (read from the device now; always true
    /// without `VIRTIO_NET_F_STATUS`).
    pub fn link_up(&self) -> bool {
        if !self.status {
            return true;
        }
        let status = self.transport.read_config(|base, len| {
            if len < CONFIG_STATUS + 2 {
                return 0;
            }
            // SAFETY: mapped uncached and long enough (checked).
            unsafe { ((base + CONFIG_STATUS) as *const u16).read_volatile() }
        });
        status.is_ok_and(|s| s & LINK_UP != 0)
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The queue pairs, by index.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs[..usize::from(self.active)]
    }

    /// Queue pairs the device offers (`max_virtqueue_pairs`).
    pub fn max_pairs(&self) -> u16 {
        self.max_pairs
    }

    /// The RSS configuration the device took (`None`: one pair, no `RSS`
    /// feature, or the device refused it).
    pub fn rss(&self) -> Option<&RssConfig> {
        self.rss.as_ref()
    }

    /// Why the driver runs with one pair or without RSS, if it does.
    pub fn fallback(&self) -> Option<CtrlError> {
        self.fallback
    }

    /// The pair the device delivers `flow`'s packets to: known with RSS
    /// (the table's entry for its hash) or with one pair; `None` when the
    /// device steers by its own rules.
    pub fn pair_of_flow(&self, flow: &Flow) -> Option<usize> {
        match &self.rss {
            Some(config) => Some(usize::from(config.queue_of(flow))),
            None if self.active == 1 => Some(0),
            None => None,
        }
    }

    /// Sends a control command (class, command, data) and returns the
    /// device's verdict; [`CtrlError::Unsupported`] without a control
    /// queue. Commands that change the pairs or RSS change what the driver
    /// relies on: [`reprogram`](Self::reprogram) puts them back.
    pub fn command(&self, class: u8, command: u8, data: &[u8]) -> Result<(), CtrlError> {
        self.control
            .as_ref()
            .ok_or(CtrlError::Unsupported)?
            .command(class, command, data)
    }

    /// Sends the pair count and the RSS configuration the driver started
    /// with again (after a command that changed them).
    pub fn reprogram(&self) -> Result<(), CtrlError> {
        if self.active > 1 {
            self.command(
                ctrl::CLASS_MQ,
                ctrl::MQ_VQ_PAIRS_SET,
                &self.active.to_le_bytes(),
            )?;
        }
        if let Some(config) = &self.rss {
            self.command(ctrl::CLASS_MQ, ctrl::MQ_RSS_CONFIG, &config.to_bytes())?;
        }
        Ok(())
    }

    /// The pair core `core` sends and receives on.
    pub fn pair_of(&self, core: CoreId) -> usize {
        core.index() % self.pairs().len()
    }

    fn pair_here(&self) -> &Pair {
        &self.pairs()[self.pair_of(cpu::core_id())]
    }

    /// The device error that took the device out of service, if one did.
    pub fn failure(&self) -> Option<DeviceError> {
        self.failure.get().copied()
    }

    /// Counters summed over every pair.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for pair in &self.pairs {
            let s = &pair.stats;
            let load = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            t.rx_frames += load(&s.rx_frames);
            t.rx_bytes += load(&s.rx_bytes);
            t.rx_errors += load(&s.rx_errors);
            t.tx_frames += load(&s.tx_frames);
            t.tx_bytes += load(&s.tx_bytes);
            t.tx_rejected += load(&s.tx_rejected);
            t.tx_waits += load(&s.tx_waits);
            t.interrupts += load(&s.interrupts);
            t.foreign_interrupts += load(&s.foreign_interrupts);
            for (sum, count) in t.drops.iter_mut().zip(&s.drops) {
                *sum += load(count);
            }
        }
        t
    }

    /// What the device and its MSI-X table say about pair `index`.
    pub fn pair_info(&self, index: usize) -> Option<PairInfo> {
        let pair = self.pairs().get(index)?;
        let entries = (
            self.transport.queue_vector(pair.rx_queue()),
            self.transport.queue_vector(pair.tx_queue()),
        );
        Some(PairInfo {
            index: pair.index,
            owner: pair.owner,
            vector: pair.vector.load(Ordering::Relaxed),
            msix_entries: entries,
            target: pci::msix_route(self.transport.msix(), entries.0),
            size: pair.size(),
            buffers: pair.buffers(),
            dma_bytes: pair.dma_bytes(),
        })
    }

    /// Sends one Ethernet frame (destination, source, type, payload; no
    /// FCS) on this core's pair. Waits while every transmit slot is taken;
    /// returns once the frame is on the ring.
    pub async fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        let pair = self.pair_here();
        if let Err(error) = check_frame(frame) {
            pair.stats.tx_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(error);
        }
        let mut waited = false;
        let Some(slot) = poll_fn(|cx| pair.poll_slot(cx, &mut waited)).await else {
            return Err(self.out_of_service());
        };
        pair.transmit(slot, frame)
            .map_err(|_| self.out_of_service())
    }

    /// Receives the next frame on this core's pair into `buf` (its length
    /// returned; Ethernet header on, FCS off).
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        let pair = self.pair_here();
        match poll_fn(|cx| pair.poll_recv(buf, cx)).await {
            Ok(Some(len)) => Ok(len),
            Ok(None) => Err(self.out_of_service()),
            Err(needed) => Err(NetError::BufferTooSmall(needed)),
        }
    }

    /// The next frame on this core's pair if one is waiting (`Ok(None)`
    /// if none is).
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        let pair = self.pair_here();
        match pair.try_recv(buf) {
            Some(Ok(len)) => Ok(Some(len)),
            Some(Err(needed)) => Err(NetError::BufferTooSmall(needed)),
            None if pair.is_dead() => Err(self.out_of_service()),
            None => Ok(None),
        }
    }

    /// Receives the next frame on pair `pair` (the calling core's is
    /// `pair_of(core_id())`; a stack that runs one instance per core calls
    /// it with its own). [`NetError::NoDevice`] if there is no such pair.
    pub async fn recv_on(&self, pair: usize, buf: &mut [u8]) -> Result<Received, NetError> {
        let queue = self.pairs().get(pair).ok_or(NetError::NoDevice)?;
        match poll_fn(|cx| queue.poll_recv(buf, cx)).await {
            Ok(Some(len)) => Ok(Received { len, pair }),
            Ok(None) => Err(self.out_of_service()),
            Err(needed) => Err(NetError::BufferTooSmall(needed)),
        }
    }

    /// The next frame on pair `pair` if one is waiting.
    pub fn try_recv_on(&self, pair: usize, buf: &mut [u8]) -> Result<Option<Received>, NetError> {
        let queue = self.pairs().get(pair).ok_or(NetError::NoDevice)?;
        match queue.try_recv(buf) {
            Some(Ok(len)) => Ok(Some(Received { len, pair })),
            Some(Err(needed)) => Err(NetError::BufferTooSmall(needed)),
            None if queue.is_dead() => Err(self.out_of_service()),
            None => Ok(None),
        }
    }

    fn out_of_service(&self) -> NetError {
        self.failure().map_or(NetError::NoDevice, NetError::Device)
    }

    /// The device misbehaved: reset it and take every pair out of service.
    fn fail(&self, error: DeviceError) {
        if !self
            .transport
            .take_out_of_service(&self.failure, error, "virtio-net")
        {
            return;
        }
        for pair in &self.pairs {
            pair.fail_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize, kind: u16) -> alloc::vec::Vec<u8> {
        let mut frame = alloc::vec![0u8; len];
        frame[6] = 0x52;
        frame[12..14].copy_from_slice(&kind.to_be_bytes());
        frame
    }

    #[test]
    fn send_checks_length_source_and_type() {
        assert_eq!(check_frame(&frame(60, 0x0806)), Ok(()));
        assert_eq!(check_frame(&frame(MAX_FRAME, 0x0800)), Ok(()));
        assert_eq!(check_frame(&[]), Err(NetError::BadLength(0)));
        assert_eq!(check_frame(&[0x02; 13]), Err(NetError::BadLength(13)));
        assert_eq!(
            check_frame(&frame(MAX_FRAME + 1, 0x0800)),
            Err(NetError::BadLength(MAX_FRAME + 1))
        );
        let mut group = frame(60, 0x0806);
        group[6] = 0x01;
        assert_eq!(check_frame(&group), Err(NetError::Malformed));
        // An 802.3 length field: fits the 46-byte payload, or does not.
        assert_eq!(check_frame(&frame(60, 46)), Ok(()));
        assert_eq!(check_frame(&frame(60, 47)), Err(NetError::Malformed));
        assert_eq!(check_frame(&frame(60, 0x0600)), Ok(()));
    }

    #[test]
    fn mac_prints_in_colon_hex() {
        let mac = Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(alloc::format!("{mac}"), "52:54:00:12:34:56");
    }
}
