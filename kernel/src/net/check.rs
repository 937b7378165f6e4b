//! Received IPv4 frames checked before they are steered, so that the
//! stack's counters show bad input (smoltcp drops it silently): an IPv4
//! header that does not parse (too short, a total length past the frame
//! or shorter than the header) or whose checksum is wrong; a TCP segment
//! cut short of its header, with a bad checksum, a zero port or a flag
//! combination no valid segment has (SYN with FIN or RST, FIN with RST);
//! a UDP datagram cut short or with a bad checksum. Such a frame is
//! dropped on the core that received it, before it is copied or steered.
//!
//! The checks are smoltcp's own (`wire::Ipv4Packet`, `TcpPacket`,
//! `UdpPacket`), so the interfaces skip verifying received IPv4, TCP and
//! UDP checksums a second time ([`super::wire`]'s capabilities). The TCP
//! and UDP checksums are not checked when the device says it validated
//! them (virtio-net `GUEST_CSUM`: `DATA_VALID`, or `NEEDS_CSUM` for a
//! frame a local sender left partial); a frame without either flag is
//! checked whatever was negotiated. Frames
//! that are not IPv4 pass unchecked, as do IPv4 fragments' payloads (only
//! a whole datagram has a transport header to check).

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet};
use smoltcp::wire::{TcpPacket, UdpPacket};

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// The IPv4 header: too short, lengths that lie, a bad checksum.
    Ip,
    /// The TCP header: cut short, a bad checksum, a zero port, odd flags.
    Tcp,
    /// The UDP header: cut short, lengths that lie, a bad checksum.
    Udp,
}

/// `Err` with the reason if `frame` (Ethernet) must be dropped;
/// `checksum_valid`: its TCP/UDP checksum needs no check (the device
/// validated it).
pub fn check(frame: &[u8], checksum_valid: bool) -> Result<(), Bad> {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return Ok(());
    };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return Ok(());
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).map_err(|_| Bad::Ip)?;
    if ip.version() != 4 || !ip.verify_checksum() {
        return Err(Bad::Ip);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Ok(());
    }
    let src = IpAddress::Ipv4(ip.src_addr());
    let dst = IpAddress::Ipv4(ip.dst_addr());
    match ip.next_header() {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(ip.payload()).map_err(|_| Bad::Tcp)?;
            let odd = (tcp.syn() && (tcp.fin() || tcp.rst())) || (tcp.fin() && tcp.rst());
            if odd || tcp.src_port() == 0 || tcp.dst_port() == 0 {
                return Err(Bad::Tcp);
            }
            if !checksum_valid && !tcp.verify_checksum(&src, &dst) {
                return Err(Bad::Tcp);
            }
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(ip.payload()).map_err(|_| Bad::Udp)?;
            if !checksum_valid && !udp.verify_checksum(&src, &dst) {
                return Err(Bad::Udp);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The destination port of `frame` if it is a TCP SYN without ACK (a
/// connection request); `frame` has passed [`check`].
pub fn syn_port(frame: &[u8]) -> Option<u16> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| tcp.dst_port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn fold(mut sum: u32) -> u16 {
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    fn sum16(bytes: &[u8]) -> u32 {
        bytes
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum()
    }

    /// A TCP segment 10.9.0.1:40000 -> 10.9.0.2:80 with `flags`.
    fn segment(protocol: u8, flags: u8) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = protocol;
        f[26..30].copy_from_slice(&[10, 9, 0, 1]);
        f[30..34].copy_from_slice(&[10, 9, 0, 2]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        if protocol == 6 {
            f[46] = 5 << 4;
            f[47] = flags;
        } else {
            f[38..40].copy_from_slice(&20u16.to_be_bytes());
        }
        let ip = !fold(sum16(&f[14..34]));
        f[24..26].copy_from_slice(&ip.to_be_bytes());
        let pseudo = sum16(&f[26..34]) + u32::from(protocol) + 20;
        let at = if protocol == 6 { 50 } else { 40 };
        let sum = !fold(pseudo + sum16(&f[34..]));
        f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        f
    }

    #[test]
    fn good_segments_pass() {
        assert_eq!(check(&segment(6, 0x02), false), Ok(()));
        assert_eq!(check(&segment(6, 0x10), false), Ok(()));
        assert_eq!(check(&segment(6, 0x00), false), Ok(()));
        assert_eq!(check(&segment(17, 0), false), Ok(()));
        // Not IPv4, or too short for Ethernet: not ours to judge.
        assert_eq!(check(&[0u8; 10], false), Ok(()));
        let mut arp = segment(6, 0x02);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(check(&arp, false), Ok(()));
    }

    #[test]
    fn syns_are_told_apart() {
        assert_eq!(syn_port(&segment(6, 0x02)), Some(80));
        assert_eq!(syn_port(&segment(6, 0x12)), None);
        assert_eq!(syn_port(&segment(6, 0x10)), None);
        assert_eq!(syn_port(&segment(17, 0)), None);
    }

    #[test]
    fn bad_ip_headers_are_caught() {
        let mut f = segment(6, 0x02);
        f[24] ^= 1;
        assert_eq!(check(&f, false), Err(Bad::Ip));
        assert_eq!(check(&segment(6, 0x02)[..30], false), Err(Bad::Ip));
        let mut long = segment(6, 0x02);
        long[16..18].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(check(&long, false), Err(Bad::Ip));
    }

    #[test]
    fn bad_tcp_is_caught() {
        for flags in [0x03, 0x06, 0x05, 0x3f] {
            assert_eq!(
                check(&segment(6, flags), false),
                Err(Bad::Tcp),
                "{flags:#x}"
            );
        }
        let mut f = segment(6, 0x02);
        f[50] ^= 1;
        assert_eq!(check(&f, false), Err(Bad::Tcp));
        let mut udp = segment(17, 0);
        udp[40] ^= 1;
        assert_eq!(check(&udp, false), Err(Bad::Udp));
    }

    #[test]
    fn device_validated_checksums_are_not_checked_again() {
        // A partial checksum (a local sender's, `NEEDS_CSUM`) or one the
        // device validated passes; the same frame unflagged is dropped.
        let mut f = segment(6, 0x10);
        f[50] ^= 1;
        assert_eq!(check(&f, true), Ok(()));
        assert_eq!(check(&f, false), Err(Bad::Tcp));
        let mut udp = segment(17, 0);
        udp[40] ^= 1;
        assert_eq!(check(&udp, true), Ok(()));
        // The IP header and the TCP flags are checked either way.
        let mut ip = segment(6, 0x10);
        ip[24] ^= 1;
        assert_eq!(check(&ip, true), Err(Bad::Ip));
        assert_eq!(check(&segment(6, 0x03), true), Err(Bad::Tcp));
    }
}
