//! The driver's private bookkeeping of descriptors: a free list and, per
//! request head, the chain it heads. Kept out of the shared descriptor
//! table on purpose: the device can write any memory it can reach, so the
//! driver trusts nothing it would read back from there (what Linux calls
//! `desc_extra`).

use alloc::vec::Vec;

use crate::error::ConfigError;

/// The chain a head descriptor starts, while its request is in flight.
#[derive(Clone, Copy, Debug, Default)]
struct Chain {
    /// Descriptors in the chain; 0 when this descriptor heads nothing.
    len: u16,
    /// The chain's last descriptor (to splice it onto the free list in O(1)).
    last: u16,
    /// Device-writable bytes, saturating at `u32::MAX` (a used length is a
    /// u32, so saturation never accepts a length the buffers cannot hold).
    writable: u32,
}

/// Free list plus in-flight chains: 8 + 2 = 10 bytes per descriptor,
/// allocated once at creation.
pub(crate) struct Descriptors {
    /// `next[i]`: the descriptor after `i`, on the free list or in its chain.
    next: Vec<u16>,
    chains: Vec<Chain>,
    free_head: u16,
    free: u16,
}

impl Descriptors {
    /// All `size` descriptors free, linked `0 -> 1 -> ... -> size - 1`.
    pub(crate) fn new(size: u16) -> Result<Self, ConfigError> {
        let n = usize::from(size);
        let mut next = Vec::new();
        let mut chains = Vec::new();
        next.try_reserve_exact(n)
            .and_then(|()| chains.try_reserve_exact(n))
            .map_err(|_| ConfigError::OutOfMemory)?;
        next.extend((1..=size).map(|i| i % size));
        chains.resize(n, Chain::default());
        Ok(Descriptors {
            next,
            chains,
            free_head: 0,
            free: size,
        })
    }

    /// Descriptors on the free list.
    pub(crate) fn free(&self) -> u16 {
        self.free
    }

    /// Takes `count` (`1..=free`) descriptors off the free list, calling
    /// `write(desc, next)` for each in chain order, with `next` the
    /// descriptor after it (`None` for the last), and records the chain
    /// under its head, which it returns.
    pub(crate) fn take(
        &mut self,
        count: u16,
        writable: u32,
        mut write: impl FnMut(u16, Option<u16>),
    ) -> u16 {
        debug_assert!(count >= 1 && count <= self.free);
        let head = self.free_head;
        let mut desc = head;
        for k in 1..=count {
            let next = self.next[usize::from(desc)];
            if k == count {
                write(desc, None);
                self.chains[usize::from(head)] = Chain {
                    len: count,
                    last: desc,
                    writable,
                };
                self.free_head = next;
            } else {
                write(desc, Some(next));
                desc = next;
            }
        }
        self.free -= count;
        head
    }

    /// The writable capacity of the request headed by `id`, if `id` heads
    /// one in flight; `None` for any other value (the device's to choose).
    pub(crate) fn in_flight(&self, id: u32) -> Option<u32> {
        let chain = self.chains.get(usize::try_from(id).ok()?)?;
        (chain.len != 0).then_some(chain.writable)
    }

    /// Returns the chain headed by `head` (in flight) to the free list.
    pub(crate) fn release(&mut self, head: u16) {
        let chain = core::mem::take(&mut self.chains[usize::from(head)]);
        debug_assert!(chain.len != 0);
        self.next[usize::from(chain.last)] = self.free_head;
        self.free_head = head;
        self.free += chain.len;
    }

    /// Calls `abandoned(head)` for every request in flight, then frees
    /// every descriptor (the state [`new`](Self::new) makes).
    pub(crate) fn abandon_all(&mut self, mut abandoned: impl FnMut(u16)) {
        let size = self.chains.len() as u16;
        for (head, chain) in (0..size).zip(self.chains.iter_mut()) {
            if core::mem::take(chain).len != 0 {
                abandoned(head);
            }
        }
        for (i, next) in (1..=size).zip(self.next.iter_mut()) {
            *next = i % size;
        }
        self.free_head = 0;
        self.free = size;
    }
}

#[cfg(test)]
mod tests {
    use super::Descriptors;
    use alloc::vec::Vec;

    fn take(d: &mut Descriptors, n: u16) -> (u16, Vec<(u16, Option<u16>)>) {
        let mut links = Vec::new();
        let head = d.take(n, 10, |desc, next| links.push((desc, next)));
        (head, links)
    }

    #[test]
    fn chains_link_through_free_descriptors() {
        let mut d = Descriptors::new(4).unwrap();
        let (head, links) = take(&mut d, 3);
        assert_eq!(head, 0);
        assert_eq!(links, [(0, Some(1)), (1, Some(2)), (2, None)]);
        assert_eq!(d.free(), 1);
        assert_eq!(d.in_flight(0), Some(10));
        assert_eq!(d.in_flight(1), None); // the middle of a chain heads nothing
        d.release(0);
        assert_eq!(d.free(), 4);
        // The released chain is reused first, then the never-used one.
        let (head, links) = take(&mut d, 4);
        assert_eq!(head, 0);
        assert_eq!(links, [(0, Some(1)), (1, Some(2)), (2, Some(3)), (3, None)]);
    }

    #[test]
    fn abandon_frees_everything() {
        let mut d = Descriptors::new(8).unwrap();
        let a = take(&mut d, 2).0;
        let b = take(&mut d, 3).0;
        let mut heads = Vec::new();
        d.abandon_all(|h| heads.push(h));
        assert_eq!(heads, [a, b]);
        assert_eq!((d.free(), d.in_flight(u32::from(a))), (8, None));
        assert_eq!(take(&mut d, 8).0, 0);
    }
}
