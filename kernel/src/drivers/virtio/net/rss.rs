//! Receive-side scaling (virtio 1.2, 5.1.6.5.7): the Toeplitz hash the
//! device computes over a received packet's addresses and ports, and the
//! indirection table that maps the hash to a receive queue.
//!
//! The driver programs one table for the whole device
//! (`VIRTIO_NET_CTRL_MQ_RSS_CONFIG`): entry *i* is pair *i mod pairs*, so
//! the table spreads flows evenly over the pairs, and pair *k* belongs to
//! core *k*: a flow's packets reach the core its hash names. Frames the
//! device cannot hash (ARP, anything not IPv4/IPv6) go to the
//! "unclassified" queue, pair 0.
//!
//! The key is the symmetric one (`0x6d5a` repeated, Woo and Park): the hash
//! of `(a, b, pa, pb)` equals that of `(b, a, pb, pa)`, so both directions
//! of a connection name the same pair. [`queue_of`] is what the layer above
//! uses to pick a local port whose replies come back to the connecting core.

use alloc::vec::Vec;

/// Bytes of the Toeplitz key (the most virtio lets a device ask for).
pub const KEY_LEN: usize = 40;
/// The key: `0x6d, 0x5a` repeated (symmetric for IPv4 and IPv6 4-tuples).
pub const KEY: [u8; KEY_LEN] = {
    let mut key = [0u8; KEY_LEN];
    let mut i = 0;
    while i < KEY_LEN {
        key[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    key
};
/// Entries of the indirection table the driver asks for (fewer if the
/// device allows fewer; a power of two).
pub const TABLE_LEN: u16 = 128;

/// `VIRTIO_NET_RSS_HASH_TYPE_*`: the hash inputs the driver asks for.
pub const HASH_IPV4: u32 = 1 << 0;
pub const HASH_TCPV4: u32 = 1 << 1;
pub const HASH_UDPV4: u32 = 1 << 2;
pub const HASH_IPV6: u32 = 1 << 3;
pub const HASH_TCPV6: u32 = 1 << 4;
pub const HASH_UDPV6: u32 = 1 << 5;
/// Every hash type this driver wants (no IPv6 extension headers).
pub const WANTED_HASHES: u32 =
    HASH_IPV4 | HASH_TCPV4 | HASH_UDPV4 | HASH_IPV6 | HASH_TCPV6 | HASH_UDPV6;

/// The Toeplitz hash of `input` under `key` (Microsoft's RSS
/// specification): for every set bit *i* of the input (most significant
/// first), XOR in the 32 key bits starting at bit *i*. `key` must be 4
/// bytes longer than `input`.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    // `window` holds key bits i..i+32 in its top half, the next 32 below.
    let mut window = u64::from(u32::from_be_bytes([key[0], key[1], key[2], key[3]])) << 32;
    for (byte_index, &byte) in input.iter().enumerate() {
        let next = key.get(byte_index + 4).copied().unwrap_or(0);
        window |= u64::from(next) << 24;
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= (window >> 32) as u32;
            }
            window <<= 1;
        }
    }
    hash
}

/// The settings the driver sends: hash types, table, key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssConfig {
    pub hash_types: u32,
    /// Pair index of each entry.
    pub table: Vec<u16>,
    /// Where frames the device does not hash go.
    pub unclassified: u16,
    pub pairs: u16,
}

impl RssConfig {
    /// The table for `pairs` pairs on a device that allows `max_table`
    /// entries and hashes `supported` types: entry *i* is pair *i mod
    /// pairs*. `None` if the device's limits leave nothing to program.
    pub fn new(pairs: u16, max_table: u16, supported: u32) -> Option<RssConfig> {
        let len = TABLE_LEN.min(max_table);
        let hash_types = supported & WANTED_HASHES;
        if pairs == 0 || len == 0 || hash_types == 0 {
            return None;
        }
        // The table's length must be a power of two (its index is a mask).
        let len = 1u16 << (15 - len.leading_zeros());
        Some(RssConfig {
            hash_types,
            table: (0..len).map(|i| i % pairs).collect(),
            unclassified: 0,
            pairs,
        })
    }

    /// `struct virtio_net_rss_config` (5.1.6.5.7.1), little-endian: hash
    /// types, table mask, unclassified queue, the table, `max_tx_vq`, key
    /// length, key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + 2 * self.table.len() + KEY_LEN);
        out.extend_from_slice(&self.hash_types.to_le_bytes());
        out.extend_from_slice(&(self.table.len() as u16 - 1).to_le_bytes());
        out.extend_from_slice(&self.unclassified.to_le_bytes());
        for entry in &self.table {
            out.extend_from_slice(&entry.to_le_bytes());
        }
        out.extend_from_slice(&self.pairs.to_le_bytes());
        out.push(KEY_LEN as u8);
        out.extend_from_slice(&KEY);
        out
    }

    /// The pair the device sends a packet of the given 4-tuple to (the
    /// port-level hash when TCP or UDP hashing is on, else addresses only).
    pub fn queue_of(&self, flow: &Flow) -> u16 {
        let hash = flow.hash(self.hash_types);
        self.table[hash as usize & (self.table.len() - 1)]
    }
}

/// A flow as the device hashes it: IPv4 addresses and ports, as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub source: [u8; 4],
    pub destination: [u8; 4],
    pub source_port: u16,
    pub destination_port: u16,
    /// The IP protocol (6 TCP, 17 UDP, else no ports).
    pub protocol: u8,
}

impl Flow {
    /// The Toeplitz hash the device computes for this flow under `types`.
    pub fn hash(&self, types: u32) -> u32 {
        let mut input = [0u8; 12];
        input[..4].copy_from_slice(&self.source);
        input[4..8].copy_from_slice(&self.destination);
        input[8..10].copy_from_slice(&self.source_port.to_be_bytes());
        input[10..12].copy_from_slice(&self.destination_port.to_be_bytes());
        let ports = match self.protocol {
            6 => types & HASH_TCPV4 != 0,
            17 => types & HASH_UDPV4 != 0,
            _ => false,
        };
        if ports {
            toeplitz(&KEY, &input)
        } else {
            toeplitz(&KEY, &input[..8])
        }
    }

    /// The flow of an Ethernet frame carrying IPv4 (TCP or UDP ports read
    /// when the header is whole and the packet is not a fragment).
    pub fn of_frame(frame: &[u8]) -> Option<Flow> {
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
            return None;
        }
        let ip = &frame[14..];
        let header = usize::from(ip[0] & 0x0f) * 4;
        if ip[0] >> 4 != 4 || header < 20 || ip.len() < header {
            return None;
        }
        let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
        let protocol = ip[9];
        let mut flow = Flow {
            source: ip[12..16].try_into().ok()?,
            destination: ip[16..20].try_into().ok()?,
            source_port: 0,
            destination_port: 0,
            protocol,
        };
        match ip.get(header..header + 4) {
            Some(ports) if !fragment && matches!(protocol, 6 | 17) => {
                flow.source_port = u16::from_be_bytes([ports[0], ports[1]]);
                flow.destination_port = u16::from_be_bytes([ports[2], ports[3]]);
            }
            _ => flow.protocol = 0,
        }
        Some(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's verification key and its published IPv4 results.
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    #[test]
    fn toeplitz_matches_the_published_vectors() {
        // 66.9.149.187:2794 -> 161.142.100.80:1766
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz(&MS_KEY, &input[..8]), 0x323e_8fc2);
        assert_eq!(toeplitz(&MS_KEY, &input), 0x51cc_c178);
        // 199.92.111.2:14230 -> 65.69.140.83:4739
        let input = [199, 92, 111, 2, 65, 69, 140, 83, 0x37, 0x96, 0x12, 0x83];
        assert_eq!(toeplitz(&MS_KEY, &input[..8]), 0xd718_262a);
        assert_eq!(toeplitz(&MS_KEY, &input), 0xc626_b0ea);
    }

    #[test]
    fn the_key_is_symmetric() {
        let flow = Flow {
            source: [10, 9, 0, 1],
            destination: [10, 9, 0, 2],
            source_port: 40_001,
            destination_port: 7,
            protocol: 6,
        };
        let reverse = Flow {
            source: flow.destination,
            destination: flow.source,
            source_port: flow.destination_port,
            destination_port: flow.source_port,
            protocol: 6,
        };
        assert_eq!(flow.hash(WANTED_HASHES), reverse.hash(WANTED_HASHES));
    }

    #[test]
    fn the_table_spreads_pairs_and_serialises() {
        let config = RssConfig::new(4, 128, WANTED_HASHES | (1 << 6)).unwrap();
        assert_eq!(config.hash_types, WANTED_HASHES);
        assert_eq!(&config.table[..6], &[0, 1, 2, 3, 0, 1]);
        let bytes = config.to_bytes();
        assert_eq!(bytes.len(), 4 + 2 + 2 + 256 + 2 + 1 + 40);
        assert_eq!(&bytes[4..6], &127u16.to_le_bytes());
        assert_eq!(bytes[8 + 256..8 + 256 + 3], [4, 0, 40]);
        // A device with a 100-entry limit gets 64; one without hashes, none.
        assert_eq!(RssConfig::new(4, 100, HASH_IPV4).unwrap().table.len(), 64);
        assert_eq!(RssConfig::new(4, 128, 1 << 7), None);
        assert_eq!(RssConfig::new(0, 128, HASH_IPV4), None);
    }

    #[test]
    fn flows_are_read_from_frames() {
        let mut frame = [0u8; 42];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[23] = 17;
        frame[26..30].copy_from_slice(&[10, 9, 0, 1]);
        frame[30..34].copy_from_slice(&[10, 9, 0, 2]);
        frame[34..38].copy_from_slice(&[0x9c, 0x41, 0, 9]);
        let flow = Flow::of_frame(&frame).unwrap();
        assert_eq!((flow.source_port, flow.destination_port), (40_001, 9));
        assert_eq!(flow.protocol, 17);
        // Cut short of the ports: addresses only. Not IPv4: none.
        assert_eq!(Flow::of_frame(&frame[..36]).unwrap().protocol, 0);
        frame[12] = 0x86;
        assert_eq!(Flow::of_frame(&frame), None);
        assert_eq!(Flow::of_frame(&frame[..20]), None);
    }
}
