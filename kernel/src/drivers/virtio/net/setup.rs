//! Starting the device (virtio 1.2, 3.1.1 and 5.1.5): features, the
//! device configuration, the queue pairs with their MSI-X entries, the
//! control queue, DRIVER_OK, then the control commands that turn the pairs
//! on (`VQ_PAIRS_SET`) and steer flows (`RSS_CONFIG`).
//!
//! Fallbacks, each logged: a device that refuses `VQ_PAIRS_SET` (or whose
//! control queue does not answer) keeps its one default pair and the
//! driver uses pair 0 only (the other pairs' memory stays with the device
//! until it is reset); a device that refuses the RSS configuration keeps
//! every pair and steers by its own rules (for a tap backend, the host's
//! queue choice).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use virtio_spec::F;
use virtio_spec::net::F as NetF;

use super::ctrl::{self, Control, CtrlError};
use super::rss::{self, RssConfig};
use super::{InitError, Nic, Pair, on_interrupt, pair};
use crate::arch::irq;
use crate::arch::{CoreId, cpu};
use crate::drivers::pci;
use crate::drivers::virtio::feature_bit;
use crate::drivers::virtio::transport::{
    MODERN_DEVICE_BASE, NO_VECTOR, QueueConfig, Transport, TransportError, VIRTIO_VENDOR,
};
use crate::reactor::readiness;

/// virtio device id of a network device.
const NET_DEVICE: u16 = 1;
/// The transitional PCI id (it may offer the modern interface too).
const TRANSITIONAL_ID: u16 = 0x1000;
/// Device configuration offsets (5.1.4, `struct virtio_net_config`).
const CONFIG_MAC: u64 = 0;
pub(super) const CONFIG_STATUS: u64 = 6;
const CONFIG_MAX_PAIRS: u64 = 8;
const CONFIG_RSS_MAX_KEY: u64 = 17;
const CONFIG_RSS_MAX_TABLE: u64 = 18;
const CONFIG_HASH_TYPES: u64 = 20;
/// `VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX`.
const MAX_PAIRS: u16 = 0x8000;

pub(super) fn has(features: u64, flag: NetF) -> bool {
    features & feature_bit(flag.bits().to_ne()) != 0
}

fn net_bit(flag: NetF) -> u64 {
    feature_bit(flag.bits().to_ne())
}

/// The features asked for: `MQ` and `RSS` only with the control queue
/// they need; the checksum offloads `CSUM` and `GUEST_CSUM` (each taken
/// when offered, see [`pair::Offloads`]).
fn wanted_features(offered: u64) -> u64 {
    let mut wanted = feature_bit(F::VERSION_1.bits().to_ne())
        | feature_bit(F::EVENT_IDX.bits().to_ne())
        | net_bit(NetF::MAC)
        | net_bit(NetF::STATUS)
        | net_bit(NetF::CSUM)
        | net_bit(NetF::GUEST_CSUM);
    if has(offered, NetF::CTRL_VQ) {
        wanted |= net_bit(NetF::CTRL_VQ) | net_bit(NetF::MQ) | net_bit(NetF::RSS);
    }
    wanted
}

/// Finds the first virtio-net function and starts it.
pub(super) fn probe() -> Result<Nic, InitError> {
    let function = pci::functions()
        .iter()
        .find(|f| {
            f.vendor == VIRTIO_VENDOR
                && (f.device == MODERN_DEVICE_BASE + NET_DEVICE || f.device == TRANSITIONAL_ID)
        })
        .ok_or(InitError::NotFound)?;
    let transport = Transport::new(function).map_err(InitError::Transport)?;
    let mut vectors = Vec::new();
    let mut pairs = Vec::new();
    let mut control = None;
    match set_up(&transport, &mut vectors, &mut pairs, &mut control) {
        Ok(started) => {
            for pair in &pairs {
                pair.fill();
            }
            let mut nic = Nic {
                transport,
                mac: started.mac,
                status: has(started.features, NetF::STATUS),
                features: started.features,
                max_pairs: started.max_pairs,
                active: 1,
                pairs,
                control,
                rss: None,
                fallback: None,
                failure: spin::Once::new(),
            };
            configure(&mut nic);
            Ok(nic)
        }
        Err(error) => {
            // Reset before the pairs' DMA memory goes back to the pool.
            let _ = transport.reset();
            transport.msix().set_enabled(false);
            drop(pairs);
            drop(control);
            for (core, vector) in vectors {
                let _ = irq::free_vector(core, vector);
            }
            Err(error)
        }
    }
}

struct Started {
    mac: [u8; 6],
    features: u64,
    max_pairs: u16,
}

/// 3.1.1 and 5.1.5 on `transport`: features, MAC, the pairs, the control
/// queue, DRIVER_OK.
fn set_up(
    transport: &Transport,
    vectors: &mut Vec<(CoreId, u8)>,
    pairs: &mut Vec<Pair>,
    control: &mut Option<Control>,
) -> Result<Started, InitError> {
    transport.begin().map_err(InitError::Transport)?;
    let msix = *transport.msix();
    for entry in 0..msix.entries() {
        msix.mask(entry, true).map_err(InitError::Msix)?;
    }
    msix.set_enabled(true);
    let offered = transport.device_features();
    let features = transport
        .negotiate(
            wanted_features(offered),
            feature_bit(F::VERSION_1.bits().to_ne()),
        )
        .map_err(InitError::Transport)?;
    if !has(features, NetF::MAC) {
        return Err(InitError::NoMac);
    }
    let mac = read_mac(transport)?;
    // Without MQ the device has exactly one pair (virtqueues 0 and 1).
    let max_pairs = if has(features, NetF::MQ) {
        config::<u16>(transport, CONFIG_MAX_PAIRS)?.clamp(1, MAX_PAIRS)
    } else {
        1
    };
    let count = max_pairs
        .min(transport.num_queues() / 2)
        .min(cpu::online_cores() as u16)
        .min(msix.entries());
    if count == 0 {
        return Err(InitError::NoQueues);
    }
    let event_idx = features & feature_bit(F::EVENT_IDX.bits().to_ne()) != 0;
    let offloads = pair::Offloads {
        tx_csum: has(features, NetF::CSUM),
        rx_csum: has(features, NetF::GUEST_CSUM),
    };
    for index in 0..count {
        start_pair(transport, index, event_idx, offloads, vectors, pairs)?;
    }
    if has(features, NetF::CTRL_VQ) {
        let queue =
            Control::new(event_idx).map_err(|e| InitError::Pair(pair::PairError::Memory(e)))?;
        let notify = transport
            .setup_queue(&QueueConfig {
                index: 2 * max_pairs,
                size: ctrl::SIZE,
                addresses: queue.addresses(),
                msix_entry: NO_VECTOR,
            })
            .map_err(InitError::Transport)?;
        queue.attach(notify);
        *control = Some(queue);
    }
    transport.driver_ok().map_err(InitError::Transport)?;
    Ok(Started {
        mac,
        features,
        max_pairs,
    })
}

/// After DRIVER_OK: every pair on (`VQ_PAIRS_SET`), then RSS; each step
/// that fails falls back (see the module docs) and says so.
fn configure(nic: &mut Nic) {
    let count = nic.pairs.len() as u16;
    let rss = has(nic.features, NetF::RSS);
    let settled = settle(
        count,
        |n| nic.command(ctrl::CLASS_MQ, ctrl::MQ_VQ_PAIRS_SET, &n.to_le_bytes()),
        rss,
        |n| program_rss(nic, n),
    );
    match settled.fallback {
        Some(error) if settled.active == 1 && count > 1 => log::warn!(
            "virtio-net: the device refused {count} queue pairs ({error:?}); falling back to one pair"
        ),
        Some(error) => log::warn!(
            "virtio-net: RSS not programmed ({error:?}); the device steers flows by its own rules"
        ),
        None => {}
    }
    nic.active = settled.active;
    nic.rss = settled.rss;
    nic.fallback = settled.fallback;
}

/// What the control commands left the driver with.
#[derive(Debug, PartialEq, Eq)]
struct Settled {
    active: u16,
    rss: Option<RssConfig>,
    fallback: Option<CtrlError>,
}

/// Turns `count` pairs on with `set_pairs` (one pair needs no command; a
/// refusal leaves one), then, with more than one pair and the `RSS`
/// feature, programs RSS with `program` (a refusal leaves the pairs
/// without it).
fn settle(
    count: u16,
    set_pairs: impl FnOnce(u16) -> Result<(), CtrlError>,
    rss: bool,
    program: impl FnOnce(u16) -> Result<RssConfig, CtrlError>,
) -> Settled {
    let mut settled = Settled {
        active: 1,
        rss: None,
        fallback: None,
    };
    if count > 1 {
        if let Err(error) = set_pairs(count) {
            settled.fallback = Some(error);
            return settled;
        }
        settled.active = count;
    }
    if settled.active > 1 && rss {
        match program(settled.active) {
            Ok(config) => settled.rss = Some(config),
            Err(error) => settled.fallback = Some(error),
        }
    }
    settled
}

/// The device's RSS limits, the table, `RSS_CONFIG`.
fn program_rss(nic: &Nic, pairs: u16) -> Result<RssConfig, CtrlError> {
    let limits = (|| {
        Some((
            config::<u8>(&nic.transport, CONFIG_RSS_MAX_KEY).ok()?,
            config::<u16>(&nic.transport, CONFIG_RSS_MAX_TABLE).ok()?,
            config::<u32>(&nic.transport, CONFIG_HASH_TYPES).ok()?,
        ))
    })();
    let Some((max_key, max_table, hashes)) = limits else {
        return Err(CtrlError::Unsupported);
    };
    if usize::from(max_key) < rss::KEY_LEN {
        return Err(CtrlError::Unsupported);
    }
    let config = RssConfig::new(pairs, max_table, hashes).ok_or(CtrlError::Unsupported)?;
    nic.command(ctrl::CLASS_MQ, ctrl::MQ_RSS_CONFIG, &config.to_bytes())?;
    Ok(config)
}

/// A field of the device configuration, read with its natural width.
fn config<T: Copy + Default>(transport: &Transport, offset: u64) -> Result<T, InitError> {
    let size = core::mem::size_of::<T>() as u64;
    let value = transport
        .read_config(|base, len| {
            if offset + size > len {
                return None;
            }
            // SAFETY: the device configuration block is mapped uncached at
            // `base` and holds `offset + size` bytes (checked); the offsets
            // used are naturally aligned for `T`.
            Some(unsafe { ((base + offset) as *const T).read_volatile() })
        })
        .map_err(InitError::Transport)?;
    value.ok_or(InitError::Transport(TransportError::MissingCapability(
        "device configuration (too short)",
    )))
}

fn read_mac(transport: &Transport) -> Result<[u8; 6], InitError> {
    let mut mac = [0u8; 6];
    for (i, byte) in mac.iter_mut().enumerate() {
        *byte = config::<u8>(transport, CONFIG_MAC + i as u64)?;
    }
    // The status field after it must exist too (the driver reads it).
    config::<u16>(transport, CONFIG_STATUS)?;
    Ok(mac)
}

/// Pair `index`: DMA memory (pushed onto `pairs` at once, so that the
/// caller resets the device before it is freed), a vector on core `index`,
/// MSI-X entry `index` for both virtqueues, the transport's set-up, then
/// the entry unmasked.
fn start_pair(
    transport: &Transport,
    index: u16,
    event_idx: bool,
    offloads: pair::Offloads,
    vectors: &mut Vec<(CoreId, u8)>,
    pairs: &mut Vec<Pair>,
) -> Result<(), InitError> {
    let msix = transport.msix();
    let owner = CoreId(index);
    let (rx, tx) = (2 * index, 2 * index + 1);
    let max = transport
        .max_queue_size(rx)
        .min(transport.max_queue_size(tx))
        .min(pair::QUEUE_SIZE);
    let size = largest_power_of_two(max);
    let source = readiness::define_source(owner).map_err(InitError::Readiness)?;
    pairs
        .push(Pair::new(index, owner, size, event_idx, source, offloads).map_err(InitError::Pair)?);
    let pair = &pairs[usize::from(index)];
    let vector =
        irq::allocate_vector(owner, on_interrupt, usize::from(index)).map_err(InitError::Irq)?;
    vectors.push((owner, vector));
    pair.vector.store(vector, Ordering::Relaxed);
    let message = irq::msi_message(owner, vector).map_err(InitError::Irq)?;
    msix.program(index, message).map_err(InitError::Msix)?;
    let (rx_rings, tx_rings) = pair.ring_addresses();
    let mut notify = [None, None];
    for (slot, (queue, addresses)) in [(rx, rx_rings), (tx, tx_rings)].into_iter().enumerate() {
        notify[slot] = Some(
            transport
                .setup_queue(&QueueConfig {
                    index: queue,
                    size,
                    addresses,
                    msix_entry: index,
                })
                .map_err(InitError::Transport)?,
        );
    }
    if let [Some(rx), Some(tx)] = notify {
        pair.attach(rx, tx);
    }
    msix.mask(index, false).map_err(InitError::Msix)
}

fn largest_power_of_two(n: u16) -> u16 {
    match n {
        0 => 0,
        n => 1 << (15 - n.leading_zeros()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: u16) -> Result<RssConfig, CtrlError> {
        RssConfig::new(pairs, 128, rss::WANTED_HASHES).ok_or(CtrlError::Unsupported)
    }

    #[test]
    fn every_pair_and_rss_when_the_device_agrees() {
        let settled = settle(4, |_| Ok(()), true, table);
        assert_eq!(settled.active, 4);
        assert_eq!(settled.rss, table(4).ok());
        assert_eq!(settled.fallback, None);
    }

    #[test]
    fn a_refused_pair_count_falls_back_to_one_pair_without_rss() {
        let refused = CtrlError::Refused(1);
        let settled = settle(4, |_| Err(refused), true, |_| panic!("no RSS on one pair"));
        assert_eq!(
            settled,
            Settled {
                active: 1,
                rss: None,
                fallback: Some(refused)
            }
        );
    }

    #[test]
    fn a_refused_rss_keeps_the_pairs() {
        let settled = settle(4, |_| Ok(()), true, |_| Err(CtrlError::NoAnswer));
        assert_eq!((settled.active, settled.rss), (4, None));
        assert_eq!(settled.fallback, Some(CtrlError::NoAnswer));
    }

    #[test]
    fn one_pair_sends_no_command() {
        let settled = settle(1, |_| panic!("no command"), true, |_| panic!("no RSS"));
        assert_eq!((settled.active, settled.fallback), (1, None));
        let settled = settle(2, |_| Ok(()), false, |_| panic!("RSS not negotiated"));
        assert_eq!((settled.active, settled.rss), (2, None));
    }
}
