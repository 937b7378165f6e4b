//! Which core a received frame belongs to, and which local port makes an
//! outgoing connection's replies come back to the core that opened it.
//!
//! A flow (IPv4 TCP or UDP) belongs to the core its RSS hash names
//! ([`flow_core`]: the device's Toeplitz hash of remote address, local
//! address, remote port, local port, through the indirection table, mod
//! cores), computed on the frame as it arrives (source = remote,
//! destination = local). With one queue pair per core (tap, RSS) the
//! device already delivers each frame to that core; with one pair (slirp)
//! its owner forwards it there. Every core
//! answers its own flows, so the same function picks, for an outgoing
//! connection, a local port whose replies hash back to the connecting core
//! ([`port_for`], Seastar's trick). The rest is classified by what it
//! needs: ARP replies reach every core (each core's neighbour cache must
//! learn the gateway), as do link broadcasts; ARP requests for us, ICMP,
//! DHCP and fragments go to the core that owns the queue pair.

use crate::drivers::virtio::net::rss;

/// Where one received frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// The core that owns this flow.
    Core(usize),
    /// Every core.
    All,
    /// The core that owns the queue pair (and runs DHCP).
    Owner,
}

const ETHERNET: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const TCP: u8 = 6;
const UDP: u8 = 17;
const DHCP_CLIENT_PORT: u16 = 68;
/// Ports [`port_for`] picks from (IANA's dynamic range).
pub const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

/// The flow hash of a received frame's four-tuple (remote is the
/// source): the Toeplitz hash the device's RSS computes
/// ([`rss`](crate::drivers::virtio::net::rss), symmetric key), so that
/// with one queue pair per core a frame already arrives on the core this
/// names and is not steered again.
pub fn flow_hash(remote: [u8; 4], local: [u8; 4], remote_port: u16, local_port: u16) -> u32 {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&remote);
    input[4..8].copy_from_slice(&local);
    input[8..10].copy_from_slice(&remote_port.to_be_bytes());
    input[10..12].copy_from_slice(&local_port.to_be_bytes());
    rss::toeplitz(&rss::KEY, &input)
}

/// The core that owns the flow, out of `cores`: the entry of the RSS
/// indirection table the hash selects ([`rss::TABLE_LEN`] entries; entry
/// *i* is pair *i mod pairs*), taken *mod cores*. With as many pairs as
/// cores this is the pair the device delivers the flow to; with fewer,
/// the pair's owner forwards the frame to this core.
pub fn flow_core(
    remote: [u8; 4],
    local: [u8; 4],
    remote_port: u16,
    local_port: u16,
    cores: usize,
) -> usize {
    let entry = flow_hash(remote, local, remote_port, local_port) as usize
        & (usize::from(rss::TABLE_LEN) - 1);
    entry % cores.max(1)
}

/// Where `frame` (Ethernet, no FCS) goes, with `cores` cores.
pub fn steer(frame: &[u8], cores: usize) -> Steer {
    if frame.len() < ETHERNET {
        return Steer::Owner;
    }
    let kind = [frame[12], frame[13]];
    let broadcast = frame[0] & 1 != 0;
    if kind == ETHERTYPE_ARP {
        // Operation 2 is a reply: every core learns the sender.
        return match frame.get(ETHERNET + 6..ETHERNET + 8) {
            Some([0, 2]) => Steer::All,
            _ => Steer::Owner,
        };
    }
    if kind != ETHERTYPE_IPV4 {
        return if broadcast { Steer::All } else { Steer::Owner };
    }
    let ip = &frame[ETHERNET..];
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Steer::Owner;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let protocol = ip[9];
    if header < 20 || fragment || !(protocol == TCP || protocol == UDP) || ip.len() < header + 4 {
        return if broadcast { Steer::All } else { Steer::Owner };
    }
    let ports = &ip[header..];
    let remote_port = u16::from_be_bytes([ports[0], ports[1]]);
    let local_port = u16::from_be_bytes([ports[2], ports[3]]);
    if protocol == UDP && local_port == DHCP_CLIENT_PORT {
        return Steer::Owner;
    }
    if broadcast {
        return Steer::All;
    }
    let remote = [ip[12], ip[13], ip[14], ip[15]];
    let local = [ip[16], ip[17], ip[18], ip[19]];
    Steer::Core(flow_core(remote, local, remote_port, local_port, cores))
}

/// A local port from [`EPHEMERAL`], searched from `start`, whose replies
/// from `remote:remote_port` to `local` hash to core `core` of `cores` and
/// that `in_use` does not reject; `None` if every port is taken.
pub fn port_for(
    remote: [u8; 4],
    remote_port: u16,
    local: [u8; 4],
    core: usize,
    cores: usize,
    start: u16,
    in_use: impl Fn(u16) -> bool,
) -> Option<u16> {
    let first = *EPHEMERAL.start();
    let span = u32::from(*EPHEMERAL.end() - first) + 1;
    let offset = u32::from(start.saturating_sub(first)) % span;
    (0..span)
        .map(|i| first + ((offset + i) % span) as u16)
        .find(|&port| flow_core(remote, local, remote_port, port, cores) == core && !in_use(port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ipv4(protocol: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 54];
        f[..6].copy_from_slice(&[0x52, 0x54, 0, 0xc0, 0xff, 0xee]);
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        f[14] = 0x45;
        f[23] = protocol;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    const GW: [u8; 4] = [10, 0, 2, 2];
    const US: [u8; 4] = [10, 0, 2, 15];

    #[test]
    fn a_flow_goes_to_its_hash_core() {
        let f = ipv4(TCP, GW, US, 40000, 80);
        assert_eq!(steer(&f, 4), Steer::Core(flow_core(GW, US, 40000, 80, 4)));
        let u = ipv4(UDP, GW, US, 40000, 7);
        assert_eq!(steer(&u, 4), Steer::Core(flow_core(GW, US, 40000, 7, 4)));
    }

    #[test]
    fn steering_agrees_with_the_device_rss() {
        // With one pair per core, the core a frame is steered to is the
        // pair the device's RSS delivers it to: no frame is forwarded.
        for cores in [1u16, 2, 4, 8] {
            let config =
                rss::RssConfig::new(cores, rss::TABLE_LEN, rss::WANTED_HASHES).expect("a table");
            for i in 0..500u16 {
                let remote = [10, 9, (i >> 8) as u8, i as u8];
                let f = ipv4(TCP, remote, US, 1024 + i * 7, 80);
                let flow = rss::Flow::of_frame(&f).expect("a flow");
                assert_eq!(
                    steer(&f, usize::from(cores)),
                    Steer::Core(usize::from(config.queue_of(&flow))),
                    "flow {i} with {cores} cores"
                );
            }
        }
    }

    #[test]
    fn flows_spread_over_cores() {
        let mut seen = [0usize; 4];
        for port in 40000..40400 {
            seen[flow_core(GW, US, port, 80, 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn arp_replies_and_broadcasts_reach_every_core() {
        let mut arp = alloc::vec![0u8; 42];
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP);
        arp[20..22].copy_from_slice(&[0, 2]);
        assert_eq!(steer(&arp, 4), Steer::All);
        arp[20..22].copy_from_slice(&[0, 1]);
        assert_eq!(steer(&arp, 4), Steer::Owner);
        let mut b = ipv4(UDP, GW, [255; 4], 1000, 2000);
        b[..6].fill(0xff);
        assert_eq!(steer(&b, 4), Steer::All);
    }

    #[test]
    fn dhcp_icmp_fragments_and_junk_go_to_the_owner() {
        let mut dhcp = ipv4(UDP, GW, [255; 4], 67, 68);
        dhcp[..6].fill(0xff);
        assert_eq!(steer(&dhcp, 4), Steer::Owner);
        assert_eq!(steer(&ipv4(1, GW, US, 0, 0), 4), Steer::Owner);
        let mut frag = ipv4(TCP, GW, US, 1, 2);
        frag[20] = 0x20; // more fragments
        assert_eq!(steer(&frag, 4), Steer::Owner);
        assert_eq!(steer(&[0u8; 10], 4), Steer::Owner);
        let mut short = ipv4(TCP, GW, US, 1, 2);
        short.truncate(36);
        assert_eq!(steer(&short, 4), Steer::Owner);
        let mut bad_ihl = ipv4(TCP, GW, US, 1, 2);
        bad_ihl[14] = 0x4f; // 60-byte header, frame too short for ports
        assert_eq!(steer(&bad_ihl, 4), Steer::Owner);
    }

    #[test]
    fn a_chosen_port_hashes_back_to_its_core() {
        for core in 0..4 {
            let port = port_for(GW, 8080, US, core, 4, 50000, |_| false).unwrap();
            assert!(EPHEMERAL.contains(&port));
            assert_eq!(flow_core(GW, US, 8080, port, 4), core);
            let f = ipv4(TCP, GW, US, 8080, port);
            assert_eq!(steer(&f, 4), Steer::Core(core));
        }
        // Ports in use are skipped; none free is None.
        let first = port_for(GW, 1, US, 0, 1, 0, |_| false).unwrap();
        let second = port_for(GW, 1, US, 0, 1, 0, |p| p == first).unwrap();
        assert_ne!(first, second);
        assert_eq!(port_for(GW, 1, US, 0, 1, 0, |_| true), None);
    }
}
