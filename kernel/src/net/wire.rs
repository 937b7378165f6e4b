//! One core's view of the network device for its smoltcp interface.
//!
//! Receive: the frames steered to this core wait in the shard's queue
//! (copied out of the device's DMA buffer by the queue pair's owner core
//! into pool buffers, see [`super::pool`]); smoltcp reads them in place
//! and their buffers go back to the pool.
//!
//! Transmit: every core sends directly on the device's queue pair (its
//! transmit slots are shared; the pair's lock orders the ring). A frame
//! smoltcp builds goes into a free transmit slot at once; when every slot
//! is taken it waits in the shard's small backlog (the net task is woken
//! when a slot frees, and sends the backlog first), and while the backlog
//! is full smoltcp is told there is no transmit room, which keeps the data
//! in the sockets' buffers: backpressure, nothing dropped. Frames are
//! dropped (and counted) only when the device is out of service.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll, Waker};

use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::pool::Buffer;
use super::shard::Stats;
use crate::drivers::virtio::net::{MAX_FRAME, Pair};

/// Frames that may wait for a transmit slot on one core.
pub const BACKLOG: usize = 64;

/// The device as one core's smoltcp interface sees it.
pub struct Wire<'a> {
    pub rx: &'a mut VecDeque<Buffer>,
    /// Where read frames' buffers go (back to their pool after the poll).
    pub spent: &'a mut Vec<Buffer>,
    pub backlog: &'a mut VecDeque<Vec<u8>>,
    /// The queue pair this core sends on (`None`: no device, frames dropped).
    pub pair: Option<&'static Pair>,
    /// The net task's waker: woken when a transmit slot frees.
    pub waker: &'a Waker,
    pub stats: &'a Stats,
    /// This interface's addresses, and the frames to them (see [`loops`]).
    pub mac: [u8; 6],
    pub ip: Option<[u8; 4]>,
    pub looped: &'a mut Vec<Vec<u8>>,
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

/// Room to send one frame.
pub struct Tx<'a> {
    backlog: &'a mut VecDeque<Vec<u8>>,
    pair: Option<&'static Pair>,
    waker: &'a Waker,
    stats: &'a Stats,
    mac: [u8; 6],
    ip: Option<[u8; 4]>,
    looped: &'a mut Vec<Vec<u8>>,
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
        let frame = self.rx.pop_front()?;
        Some((
            Rx {
                frame: Some(frame),
                spent: self.spent,
            },
            Tx {
                backlog: self.backlog,
                pair: self.pair,
                waker: self.waker,
                stats: self.stats,
                mac: self.mac,
                ip: self.ip,
                looped: self.looped,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        if self.backlog.len() >= BACKLOG {
            return None;
        }
        Some(Tx {
            backlog: self.backlog,
            pair: self.pair,
            waker: self.waker,
            stats: self.stats,
            mac: self.mac,
            ip: self.ip,
            looped: self.looped,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        // Received IPv4, TCP and UDP checksums were verified before the
        // frame was steered (`check`); smoltcp only computes them.
        caps.checksum.ipv4 = Checksum::Tx;
        caps.checksum.tcp = Checksum::Tx;
        caps.checksum.udp = Checksum::Tx;
        caps
    }
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame.as_ref().map_or(&[][..], |b| &b.data))
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = [0u8; MAX_FRAME];
        let len = len.min(MAX_FRAME);
        let result = f(&mut frame[..len]);
        let frame = &frame[..len];
        if loops(frame, self.mac, self.ip) {
            self.stats.looped.fetch_add(1, Ordering::Relaxed);
            self.looped.push(frame.to_vec());
            return result;
        }
        if self.backlog.is_empty() {
            match send_now(self.pair, frame, self.waker, self.stats) {
                Sent::Yes | Sent::Dropped => return result,
                Sent::NoSlot => {}
            }
        }
        self.backlog.push_back(frame.to_vec());
        self.stats.tx_backlogged.fetch_add(1, Ordering::Relaxed);
        result
    }
}

/// What became of a frame handed to [`send_now`].
enum Sent {
    Yes,
    /// Every slot is taken; the waker hears when one frees.
    NoSlot,
    /// The device is out of service (counted).
    Dropped,
}

fn send_now(pair: Option<&'static Pair>, frame: &[u8], waker: &Waker, stats: &Stats) -> Sent {
    let Some(pair) = pair else {
        stats.drop_tx_dead.fetch_add(1, Ordering::Relaxed);
        return Sent::Dropped;
    };
    match pair.poll_slot(&mut Context::from_waker(waker)) {
        Poll::Ready(Some(slot)) => match pair.transmit(slot, frame) {
            Ok(()) => {
                stats.tx_frames.fetch_add(1, Ordering::Relaxed);
                stats
                    .tx_bytes
                    .fetch_add(frame.len() as u64, Ordering::Relaxed);
                Sent::Yes
            }
            Err(_) => {
                stats.drop_tx_dead.fetch_add(1, Ordering::Relaxed);
                Sent::Dropped
            }
        },
        Poll::Ready(None) => {
            stats.drop_tx_dead.fetch_add(1, Ordering::Relaxed);
            Sent::Dropped
        }
        Poll::Pending => Sent::NoSlot,
    }
}

/// Sends the backlog in order while slots are free; `true` once it is empty.
pub fn flush(
    backlog: &mut VecDeque<Vec<u8>>,
    pair: Option<&'static Pair>,
    waker: &Waker,
    stats: &Stats,
) -> bool {
    while let Some(frame) = backlog.front() {
        match send_now(pair, frame, waker, stats) {
            Sent::Yes | Sent::Dropped => {
                backlog.pop_front();
            }
            Sent::NoSlot => return false,
        }
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
