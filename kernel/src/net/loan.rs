//! Received frames lent across cores in their DMA buffers, transmit
//! requests to a queue pair's owner, and the per-core limit on lent
//! buffers.
//!
//! The core that owns a queue pair takes each received frame off the
//! device as a [`Loan`] of its receive buffer (nothing is copied) and
//! passes it ([`Buffer::Lent`]) to the core that owns its flow over that
//! core's intercore ring; a broadcast goes to every core as shared loans
//! of the one buffer. The target core's smoltcp reads the frame in place;
//! the spent loan goes back to the owner over the target's up ring to
//! that owner ([`Up::Returned`]; one ring per core and owner, sized for
//! every loan and transmit slot at once, so it is never full), and the
//! owner posts the buffer again once its last loan is back.
//!
//! A core that does not take its frames (busy, or its ring filling) could
//! hold every buffer and starve the device. The owner counts the loans
//! out per core ([`Held`]) and refuses a core more than its share of the
//! buffers beyond the driver's reserve (the frame is given back at once:
//! dropped and counted as `drop_held`; TCP sends it again). The driver
//! itself never lends out its reserve (a quarter of the buffers), so
//! the receive ring never runs dry.
//!
//! Transmit ([`super::wire`]): a core writes its frame straight into a
//! free transmit slot of its pair (the slots are a lock-free set shared by
//! the cores on the pair). The owner core puts the slot on the ring
//! itself; another core sends [`Up::Transmit`] over its up ring and the
//! owner puts it on the ring on its next turn. Only the owner takes the
//! pair's ring locks, so none is contended.

use alloc::vec::Vec;

use crate::drivers::virtio::net::Pair;
use crate::drivers::virtio::net::pair::{Loan, TxSlot, over_reserve};

/// A received frame for a core's smoltcp.
pub enum Buffer {
    /// Lent out of a receive buffer of `pair` (goes back to its owner).
    Lent { pair: &'static Pair, loan: Loan },
    /// A frame the stack sent to itself (from the heap; freed when spent).
    Heap(Vec<u8>),
}

impl Buffer {
    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        match self {
            Buffer::Lent { pair, loan } => pair.frame(loan),
            Buffer::Heap(frame) => frame,
        }
    }

    /// Whether the frame's TCP/UDP checksum needs no check: the device
    /// validated it (or a local sender left it partial, `GUEST_CSUM`), or
    /// the stack made the frame itself.
    pub fn checksum_valid(&self) -> bool {
        match self {
            Buffer::Lent { loan, .. } => loan.checksum_valid(),
            Buffer::Heap(_) => true,
        }
    }
}

/// What a core sends the owner of its queue pair.
pub enum Up {
    /// A spent loan, to be given back to the pair.
    Returned(Loan),
    /// A frame of this many bytes written in a transmit slot: to put on
    /// the transmit ring.
    Transmit(TxSlot, u16),
}

/// Up ring capacity for a pair of `rx` receive buffers and `tx` transmit
/// slots: a core holds at most one loan per buffer and one request per
/// slot, so the ring is never full.
pub fn up_capacity(rx: usize, tx: usize) -> usize {
    rx + tx
}

/// The loans an owner core has out to each other core, and each core's
/// limit.
pub struct Held {
    held: Vec<usize>,
    quota: usize,
}

impl Held {
    /// For `cores` cores sharing a pair of `buffers` receive buffers: each
    /// may hold its share of the buffers the driver lends out (all but its
    /// reserve).
    pub fn new(cores: usize, buffers: usize) -> Held {
        let lendable = (0..=buffers)
            .rev()
            .find(|&lent| !over_reserve(0, lent, buffers))
            .unwrap_or(0);
        Held {
            held: alloc::vec![0; cores],
            quota: (lendable / cores.max(1)).max(1),
        }
    }

    /// Whether core `core` may take one more loan (counted if so).
    pub fn admit(&mut self, core: usize) -> bool {
        match self.held.get_mut(core) {
            Some(held) if *held < self.quota => {
                *held += 1;
                true
            }
            _ => false,
        }
    }

    /// Core `core` gave a loan back.
    pub fn returned(&mut self, core: usize) {
        if let Some(held) = self.held.get_mut(core) {
            *held = held.saturating_sub(1);
        }
    }

    /// Loans out to core `core`.
    pub fn of(&self, core: usize) -> usize {
        self.held.get(core).copied().unwrap_or(0)
    }

    /// The most loans a core may hold.
    pub fn quota(&self) -> usize {
        self.quota
    }
}

/// Whether `frame` carries payload: an IPv4 TCP segment with data or a
/// UDP datagram with data (copies of these are what `copied_bytes`
/// counts; a bare ACK, ARP or ICMP is a control frame).
pub fn carries_payload(frame: &[u8]) -> bool {
    if frame.get(12..14) != Some(&[0x08, 0x00]) {
        return false;
    }
    let Some(ip) = frame.get(14..) else {
        return false;
    };
    if ip.len() < 20 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    match ip[9] {
        6 => {
            let Some(&offset) = ip.get(ihl + 12) else {
                return false;
            };
            total > ihl + usize::from(offset >> 4) * 4
        }
        17 => total > ihl + 8,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::virtio::net::pair::reserve;

    /// A flood while one core takes nothing: that core ends at its quota,
    /// the others keep getting frames, and the loans never eat into the
    /// driver's reserve.
    #[test]
    fn a_core_that_takes_nothing_holds_its_share_only() {
        let buffers = 128;
        let cores = 2;
        let mut held = Held::new(cores, buffers);
        let (mut admitted, mut refused) = (0, 0);
        for frame in 0..10_000 {
            // Core 1 never gives anything back; core 0 gives back at once.
            let core = frame % cores;
            if held.admit(core) {
                admitted += 1;
                if core == 0 {
                    held.returned(0);
                }
            } else {
                refused += 1;
            }
            assert!(!over_reserve(0, held.of(0) + held.of(1), buffers));
        }
        assert_eq!(held.of(1), held.quota());
        assert_eq!(held.quota(), (buffers - reserve(buffers)) / cores);
        assert_eq!(refused, 5_000 - held.quota());
        assert_eq!(admitted, 5_000 + held.quota());
        for _ in 0..held.quota() {
            held.returned(1);
        }
        assert_eq!(held.of(1), 0);
        assert!(held.admit(1));
        assert!(!held.admit(7), "no such core");
    }

    #[test]
    fn payload_frames_are_told_from_control_frames() {
        let mut tcp = [0u8; 14 + 20 + 20 + 5];
        tcp[12..14].copy_from_slice(&[0x08, 0x00]);
        tcp[14] = 0x45;
        tcp[16..18].copy_from_slice(&(45u16).to_be_bytes());
        tcp[23] = 6;
        tcp[14 + 20 + 12] = 5 << 4;
        assert!(carries_payload(&tcp));
        tcp[16..18].copy_from_slice(&(40u16).to_be_bytes());
        assert!(!carries_payload(&tcp), "a bare ACK");
        let mut udp = tcp;
        udp[23] = 17;
        udp[16..18].copy_from_slice(&(29u16).to_be_bytes());
        assert!(carries_payload(&udp));
        let mut arp = [0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!carries_payload(&arp));
        assert!(!carries_payload(&tcp[..20]));
    }
}
