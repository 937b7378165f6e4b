//! Injected loss, for testing TCP's recovery on a link that loses
//! segments: with the boot configuration file [`LOSS_FILE`] set to `N`
//! (2 to 1 000 000), every core's stack drops each TCP segment it receives
//! or sends with probability 1/`N`, counted as `drop_injected`. The choice
//! is a fixed pseudo-random sequence per core and direction (xorshift), so
//! a run loses segments at the same rate every time but never in step with
//! TCP's own rhythm (dropping exactly every `N`th segment can hit the same
//! retransmission again and again). Only TCP: ARP, DHCP and UDP pass
//! untouched, so the machine still gets its address and the loss is what
//! TCP must repair (retransmission on timeout, fast retransmission,
//! out-of-order reassembly, window probes). Off (the default) costs one
//! relaxed load per frame.
//!
//! QEMU's user network loses a segment now and then on its own, too rarely
//! for a test to rely on; this makes the loss certain and repeatable.

use core::sync::atomic::{AtomicU32, Ordering};

/// The boot configuration file (fw_cfg) that turns loss on.
pub const LOSS_FILE: &str = "opt/percore/netloss";

/// The largest `N` accepted.
const MAX_EVERY: u32 = 1_000_000;

/// `N`, or 0 when off.
static EVERY: AtomicU32 = AtomicU32::new(0);

/// Why [`parse`] refused the text of [`LOSS_FILE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadLoss;

/// Parses the text of [`LOSS_FILE`] (surrounding blanks ignored): `N`, from
/// 2 to 1 000 000. (1 would drop every segment: nothing could connect.)
pub fn parse(text: &str) -> Result<u32, BadLoss> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (2..=MAX_EVERY).contains(n))
        .ok_or(BadLoss)
}

/// Turns loss on for every core (`every` from [`parse`]), or off with 0.
pub fn set(every: u32) {
    EVERY.store(every, Ordering::Relaxed);
}

/// The `N` in force, 0 when off.
pub fn every() -> u32 {
    EVERY.load(Ordering::Relaxed)
}

/// One core's pseudo-random state for each direction.
#[derive(Debug)]
pub struct Dice {
    rx: u64,
    tx: u64,
}

impl Default for Dice {
    fn default() -> Dice {
        // Any two non-zero seeds (xorshift never leaves zero).
        Dice {
            rx: 0x9e37_79b9_7f4a_7c15,
            tx: 0xd1b5_4a32_d192_ed03,
        }
    }
}

impl Dice {
    /// Whether to drop `frame`, a frame this core's stack received.
    pub fn drop_rx(&mut self, frame: &[u8]) -> bool {
        roll(&mut self.rx, frame)
    }

    /// Whether to drop `frame`, a frame this core's stack just made.
    pub fn drop_tx(&mut self, frame: &[u8]) -> bool {
        roll(&mut self.tx, frame)
    }
}

fn roll(state: &mut u64, frame: &[u8]) -> bool {
    let every = every();
    if every == 0 || !is_tcp(frame) {
        return false;
    }
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x.is_multiple_of(u64::from(every))
}

/// Whether `frame` is an Ethernet frame carrying IPv4 and TCP.
fn is_tcp(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x00]) && frame.get(23) == Some(&6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A minimal Ethernet + IPv4 frame with protocol `proto`.
    fn frame(proto: u8) -> [u8; 34] {
        let mut f = [0u8; 34];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = proto;
        f
    }

    #[test]
    fn parse_takes_two_to_a_million() {
        assert_eq!(parse(" 50\n"), Ok(50));
        assert_eq!(parse("2"), Ok(2));
        assert_eq!(parse("1000000"), Ok(1_000_000));
        for bad in ["", "0", "1", "1000001", "-3", "5%", "every 5"] {
            assert_eq!(parse(bad), Err(BadLoss), "{bad:?}");
        }
    }

    /// One test for the global switch (tests run in parallel).
    #[test]
    fn drops_tcp_segments_at_the_rate_asked_and_nothing_else() {
        let (tcp, udp) = (frame(6), frame(17));
        let mut arp = frame(6);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut dice = Dice::default();
        set(0);
        assert!((0..1000).all(|_| !dice.drop_rx(&tcp) && !dice.drop_tx(&tcp)));
        set(10);
        let rx = (0..10_000).filter(|_| dice.drop_rx(&tcp)).count();
        let tx = (0..10_000).filter(|_| dice.drop_tx(&tcp)).count();
        assert!((800..1200).contains(&rx), "{rx}");
        assert!((800..1200).contains(&tx), "{tx}");
        // Never two runs of the same length in a row for long: not periodic.
        let gaps: Vec<usize> = {
            let mut gaps = Vec::new();
            let mut gap = 0;
            for _ in 0..1000 {
                gap += 1;
                if dice.drop_tx(&tcp) {
                    gaps.push(gap);
                    gap = 0;
                }
            }
            gaps
        };
        assert!(gaps.windows(2).any(|w| w[0] != w[1]), "{gaps:?}");
        // Other frames never drop.
        assert!((0..1000).all(|_| !dice.drop_tx(&udp) && !dice.drop_rx(&arp)));
        assert!((0..1000).all(|_| !dice.drop_rx(&[0u8; 10])));
        set(0);
        assert!((0..1000).all(|_| !dice.drop_tx(&tcp)));
    }
}
