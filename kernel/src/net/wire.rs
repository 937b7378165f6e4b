//! One core's view of the network device for its smoltcp interface.
//!
//! Receive: the frames steered to this core wait in the shard's queue,
//! lent in the device's receive buffers by the queue pair's owner core (or
//! from the heap, for frames the stack sent to itself; see
//! [`super::loan`]); smoltcp reads them in place and the spent buffers go
//! back to the owner.
//!
//! Transmit: smoltcp writes each frame straight into a free transmit slot
//! of this core's pair (the slots are a lock-free set the cores on the
//! pair share). On the pair's owner core the slot goes on the ring at
//! once; on another core it goes to the owner as a request over the up
//! ring ([`super::loan::Up::Transmit`]), which the owner puts on the ring
//! on its next turn: only the owner takes the ring's lock. With no free
//! slot, `transmit` says there is no room (smoltcp keeps the data in the
//! socket: backpressure, counted once per blocked send as the pair's
//! `tx_waits`) and the net task is woken when a slot frees. A reply
//! smoltcp makes while receiving (an ACK, an ARP reply) cannot wait: with
//! no free slot it is built on the heap and waits in the shard's small
//! backlog (sent first on the next turn; copied into a slot then, counted
//! as `copied_bytes` if it carries payload). Frames are dropped (and
//! counted) only when the device is out of service.
//!
//! Checksums: with the device's `CSUM` offload, smoltcp leaves TCP and UDP
//! checksums out and each frame's virtio-net header asks the device to
//! finish them ([`offload_header`] writes the pseudo-header's sum, a few
//! words instead of a pass over the payload); without it smoltcp computes
//! them. Received checksums are checked before steering
//! ([`super::check`], skipped for frames the device validated), so
//! smoltcp never checks them again.
//!
//! Injected loss ([`super::loss`], for tests, off by default): one TCP
//! segment in `N` each way is dropped here, a received one before smoltcp
//! sees it, a sent one after smoltcp made it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::task::{Context, Waker};

use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::loan::{Buffer, Up, carries_payload};
use super::loss::Dice;
use super::shard::Stats;
use crate::drivers::virtio::net::pair::{TxSlot, offload_header};
use crate::drivers::virtio::net::{MAX_FRAME, Pair};
use crate::ipc::channel::Sender;

/// Frames that may wait for a transmit slot on one core.
pub const BACKLOG: usize = 64;

/// The device as one core's smoltcp interface sees it.
pub struct Wire<'a> {
    pub rx: &'a mut VecDeque<Buffer>,
    /// Where read frames' buffers go (back to their owner after the poll).
    pub spent: &'a mut Vec<Buffer>,
    pub backlog: &'a mut VecDeque<Vec<u8>>,
    pub pair: Option<&'static Pair>,
    /// The up ring to the pair's owner (`None` on the owner itself).
    pub up: Option<&'a mut Sender<Up>>,
    /// The net task's waker: woken when a transmit slot frees.
    pub waker: &'a Waker,
    /// Whether the blocked send was counted as a wait already.
    pub waited: &'a mut bool,
    /// Set when a send found no free slot this turn (the slot's release
    /// wakes the net task).
    pub blocked: &'a mut bool,
    pub stats: &'a Stats,
    /// This interface's addresses, and the frames to them (see [`loops`]).
    pub mac: [u8; 6],
    pub ip: Option<[u8; 4]>,
    pub looped: &'a mut Vec<Vec<u8>>,
    /// Injected loss (off unless configured, see [`super::loss`]).
    pub loss: &'a mut Dice,
}

/// A received frame for smoltcp; its buffer goes to `spent` afterwards.
pub struct Rx<'a> {
    frame: Option<Buffer>,
    spent: &'a mut Vec<Buffer>,
}

impl Drop for Rx<'_> {
    fn drop(&mut self) {
        if let Some(frame) = self.frame.take() {
            self.spent.push(frame);
        }
    }
}

/// Room to send one frame: a transmit slot taken already (`transmit`), or
/// one to take when the frame is made (a reply to a received frame).
pub struct Tx<'a> {
    slot: Option<TxSlot>,
    backlog: &'a mut VecDeque<Vec<u8>>,
    pair: Option<&'static Pair>,
    up: Option<&'a mut Sender<Up>>,
    stats: &'a Stats,
    mac: [u8; 6],
    ip: Option<[u8; 4]>,
    looped: &'a mut Vec<Vec<u8>>,
    loss: &'a mut Dice,
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if let (Some(slot), Some(pair)) = (self.slot.take(), self.pair) {
            pair.put_back(slot);
        }
    }
}

/// Whether a frame this interface sends is for itself: to its own MAC,
/// or an ARP request for its own address (smoltcp has no loopback; it
/// resolves its own address like any other, and the device would never
/// answer). Such frames go back to the stack instead of the wire, so two
/// sockets of the guest can talk (through the cores their flows hash to).
pub fn loops(frame: &[u8], mac: [u8; 6], ip: Option<[u8; 4]>) -> bool {
    if frame.len() < 14 {
        return false;
    }
    if frame[..6] == mac {
        return true;
    }
    let arp_request = frame[12..14] == [0x08, 0x06] && frame.get(20..22) == Some(&[0, 1]);
    arp_request && ip.is_some_and(|ip| frame.get(38..42) == Some(&ip))
}

impl Wire<'_> {
    fn tx(&mut self, slot: Option<TxSlot>) -> Tx<'_> {
        Tx {
            slot,
            backlog: self.backlog,
            pair: self.pair,
            up: self.up.as_deref_mut(),
            stats: self.stats,
            mac: self.mac,
            ip: self.ip,
            looped: self.looped,
            loss: self.loss,
        }
    }
}

impl phy::Device for Wire<'_> {
    type RxToken<'a>
        = Rx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let frame = loop {
            let frame = self.rx.pop_front()?;
            if !self.loss.drop_rx(frame.data()) {
                break frame;
            }
            self.stats.drop_injected.fetch_add(1, Ordering::Relaxed);
            self.spent.push(frame);
        };
        let tx = Tx {
            slot: None,
            backlog: self.backlog,
            pair: self.pair,
            up: self.up.as_deref_mut(),
            stats: self.stats,
            mac: self.mac,
            ip: self.ip,
            looped: self.looped,
            loss: self.loss,
        };
        Some((
            Rx {
                frame: Some(frame),
                spent: self.spent,
            },
            tx,
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        if !self.backlog.is_empty() {
            // Replies wait for a slot: they go first.
            return None;
        }
        let Some(pair) = self.pair else {
            // No device: the frame is made and dropped (counted).
            return Some(self.tx(None));
        };
        if pair.is_dead() {
            return Some(self.tx(None));
        }
        let mut cx = Context::from_waker(self.waker);
        match pair.poll_take_slot(&mut cx, self.waited) {
            Some(slot) => Some(self.tx(Some(slot))),
            None => {
                // The slot's release wakes the net task.
                *self.blocked = true;
                None
            }
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        // Received IPv4, TCP and UDP checksums were verified before the
        // frame was steered (`check`); smoltcp only computes them, and not
        // TCP's and UDP's when the device finishes them (`CSUM`).
        let l4 = if self.pair.is_some_and(|p| p.offloads.tx_csum) {
            Checksum::None
        } else {
            Checksum::Tx
        };
        caps.checksum.ipv4 = Checksum::Tx;
        caps.checksum.tcp = l4;
        caps.checksum.udp = l4;
        caps
    }
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame.as_ref().map_or(&[][..], |b| b.data()))
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F>(mut self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let len = len.min(MAX_FRAME);
        let Some(pair) = self.pair.filter(|p| !p.is_dead()) else {
            let mut frame = [0u8; MAX_FRAME];
            let result = f(&mut frame[..len]);
            if loops(&frame[..len], self.mac, self.ip) {
                self.stats.looped.fetch_add(1, Ordering::Relaxed);
                self.looped.push(frame[..len].to_vec());
            } else {
                self.stats.drop_tx_dead.fetch_add(1, Ordering::Relaxed);
            }
            return result;
        };
        let slot = self.slot.take().or_else(|| pair.take_slot());
        let Some(mut slot) = slot else {
            // A reply with every slot taken: it waits on the heap.
            let mut frame = alloc::vec![0u8; len];
            let result = f(&mut frame);
            if loops(&frame, self.mac, self.ip) {
                self.stats.looped.fetch_add(1, Ordering::Relaxed);
                self.looped.push(frame);
            } else if self.loss.drop_tx(&frame) {
                self.stats.drop_injected.fetch_add(1, Ordering::Relaxed);
            } else {
                self.backlog.push_back(frame);
                self.stats.tx_backlogged.fetch_add(1, Ordering::Relaxed);
            }
            return result;
        };
        let frame = &mut pair.slot_frame(&mut slot)[..len];
        let result = f(frame);
        if loops(frame, self.mac, self.ip) {
            self.stats.looped.fetch_add(1, Ordering::Relaxed);
            self.looped.push(frame.to_vec());
            pair.put_back(slot);
            return result;
        }
        if self.loss.drop_tx(frame) {
            self.stats.drop_injected.fetch_add(1, Ordering::Relaxed);
            pair.put_back(slot);
            return result;
        }
        offload(pair, &mut slot, len);
        deliver(pair, self.up.as_deref_mut(), slot, len, self.stats);
        result
    }
}

/// With the `CSUM` offload, asks the device to finish the checksum of the
/// frame written in `slot` (smoltcp left it out).
fn offload(pair: &'static Pair, slot: &mut TxSlot, len: usize) {
    if !pair.offloads.tx_csum {
        return;
    }
    if let Some(header) = offload_header(&mut pair.slot_frame(slot)[..len]) {
        pair.set_slot_header(slot, &header);
        pair.stats.tx_csum_offloaded.fetch_add(1, Ordering::Relaxed);
    }
}

/// Puts a written slot on the ring: directly on the pair's owner core,
/// else as a request over the up ring to the owner.
fn deliver(
    pair: &'static Pair,
    up: Option<&mut Sender<Up>>,
    slot: TxSlot,
    len: usize,
    stats: &Stats,
) {
    let sent = match up {
        None => pair.submit(slot, len).is_ok(),
        Some(up) => match up.try_send(Up::Transmit(slot, len as u16)) {
            Ok(()) => {
                stats.tx_handed.fetch_add(1, Ordering::Relaxed);
                true
            }
            // Cannot happen (the ring has room for every slot); the slot
            // is lost to the pair rather than the frame reordered.
            Err(_) => {
                log::warn!("net: the up ring to the pair's owner is full");
                false
            }
        },
    };
    if sent {
        stats.tx_frames.fetch_add(1, Ordering::Relaxed);
        stats.tx_bytes.fetch_add(len as u64, Ordering::Relaxed);
    } else {
        stats.drop_tx_dead.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends the backlog in order while slots are free (each frame copied
/// into its slot); `true` once it is empty.
pub fn flush(
    backlog: &mut VecDeque<Vec<u8>>,
    pair: Option<&'static Pair>,
    mut up: Option<&mut Sender<Up>>,
    cx: &mut Context<'_>,
    waited: &mut bool,
    stats: &Stats,
) -> bool {
    while let Some(frame) = backlog.front() {
        let Some(pair) = pair.filter(|p| !p.is_dead()) else {
            stats.drop_tx_dead.fetch_add(1, Ordering::Relaxed);
            backlog.pop_front();
            continue;
        };
        let Some(mut slot) = pair.poll_take_slot(cx, waited) else {
            return false;
        };
        let len = frame.len().min(MAX_FRAME);
        pair.slot_frame(&mut slot)[..len].copy_from_slice(&frame[..len]);
        if carries_payload(frame) {
            stats.copied_bytes.fetch_add(len as u64, Ordering::Relaxed);
        }
        offload(pair, &mut slot, len);
        deliver(pair, up.as_deref_mut(), slot, len, stats);
        backlog.pop_front();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_to_ourselves_loop() {
        let mac = [0x52, 0x54, 0, 0xc0, 0xff, 0xee];
        let ip = Some([10, 0, 2, 15]);
        let mut to_us = [0u8; 60];
        to_us[..6].copy_from_slice(&mac);
        assert!(loops(&to_us, mac, ip));
        let mut arp = [0u8; 42];
        arp[..6].fill(0xff);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp[20..22].copy_from_slice(&[0, 1]);
        arp[38..42].copy_from_slice(&[10, 0, 2, 15]);
        assert!(loops(&arp, mac, ip));
        assert!(!loops(&arp, mac, None));
        arp[38..42].copy_from_slice(&[10, 0, 2, 2]);
        assert!(
            !loops(&arp, mac, ip),
            "an ARP request for the gateway goes out"
        );
        assert!(!loops(&[0u8; 10], mac, ip));
    }
}
