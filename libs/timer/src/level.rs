//! Levels, slots, occupied-slot bitmaps and the intrusive slot lists.
//!
//! The wheel has [`LEVELS`] levels of 64 slots. A slot of level `l` spans
//! `64^l` ticks, so level `l` as a whole spans `64^(l+1)` ticks and the six
//! levels cover `2^36` ticks; anything further out waits on the overflow list.
//!
//! # Where a timer goes: level = f(deadline XOR now)
//!
//! Write ticks in base 64: digit `l` (bits `6l..6l+6`) is the slot index at
//! level `l`. A timer due at tick `d` while the wheel is at tick `now < d` is
//! filed at the level of the *highest base-64 digit in which `d` and `now`
//! differ*, in the slot given by that digit of `d`. `d ^ now` has its highest
//! set bit in that digit, so
//!
//! ```text
//! level = (63 - leading_zeros((d ^ now) | 63)) / 6
//! ```
//!
//! (the `| 63` maps "differs only in digit 0" to level 0). Two facts follow
//! and everything else relies on them:
//!
//! * Every timer at level `l` sits in a slot whose index is *greater* than
//!   `now`'s digit `l`, and all its higher digits equal `now`'s. So a level
//!   never wraps: the first occupied slot at or after `now`'s digit is the
//!   level's earliest, found with one shift and `trailing_zeros` on the
//!   level's 64-bit occupied bitmap.
//! * All timers on level `l` are due before the next slot of level `l + 1`
//!   begins (they are inside `now`'s current `64^(l+1)`-tick window, and any
//!   level-`l+1` slot starts at or after that window's end). So the earliest
//!   work is always on the *lowest* non-empty level, and finding it is a
//!   loop over at most six bitmaps, never a walk over ticks.
//!
//! When the wheel reaches the start of an occupied slot at level `l > 0`,
//! that slot's timers are refiled relative to the new `now`; each moves at
//! least one level down ("cascades") or becomes due.
//!
//! # Lists
//!
//! Each slot is an intrusive doubly-linked list of slab indices, so a timer
//! is unlinked in O(1) given only its index. Two more lists hang off the same
//! table: `DUE` (timers whose tick has already been reached, waiting for the
//! next `advance`), `OVERFLOW` (timers beyond the top level) and `PARKED`
//! (interval timers that ran past the end of time).

use crate::slab::Node;

/// Bits of a tick consumed per level: 64 slots per level.
pub(crate) const SLOT_BITS: u32 = 6;
/// Slots per level.
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;
/// Levels in the wheel; together they span `2^(6 * LEVELS)` ticks.
pub(crate) const LEVELS: usize = 6;
/// Ticks spanned by all levels, as a power of two.
pub(crate) const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// The null slab index.
pub(crate) const NIL: u32 = u32::MAX;

const SLOT_LISTS: usize = LEVELS * SLOTS;
const LIST_COUNT: usize = SLOT_LISTS + 3;

/// Which list a node is on: a wheel slot, `DUE`, `OVERFLOW`, or `FREE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListId(u16);

impl ListId {
    /// Timers whose tick the wheel has already reached.
    pub(crate) const DUE: Self = Self(SLOT_LISTS as u16);
    /// Timers beyond the top level.
    pub(crate) const OVERFLOW: Self = Self(SLOT_LISTS as u16 + 1);
    /// Interval timers whose next deadline would pass `u64::MAX` ns: live,
    /// but never examined again.
    pub(crate) const PARKED: Self = Self(SLOT_LISTS as u16 + 2);
    /// Not on any list: the slab entry is vacant.
    pub(crate) const FREE: Self = Self(u16::MAX);

    const fn slot(level: usize, slot: usize) -> Self {
        Self((level * SLOTS + slot) as u16)
    }

    /// The level of a wheel slot list, `None` for the other lists.
    pub(crate) const fn level(self) -> Option<usize> {
        if (self.0 as usize) < SLOT_LISTS {
            Some(self.0 as usize / SLOTS)
        } else {
            None
        }
    }
}

/// The list a timer due at tick `due` belongs on while the wheel is at `now`.
pub(crate) fn list_for(now: u64, due: u64) -> ListId {
    if due <= now {
        return ListId::DUE;
    }
    // Highest differing bit, with "only digit 0 differs" mapped to level 0.
    let significant = 63 - ((now ^ due) | (SLOTS as u64 - 1)).leading_zeros();
    let level = (significant / SLOT_BITS) as usize;
    if level >= LEVELS {
        return ListId::OVERFLOW;
    }
    let slot = (due >> (level as u32 * SLOT_BITS)) as usize & (SLOTS - 1);
    ListId::slot(level, slot)
}

/// The next piece of work: a list and the tick at which it comes due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expiration {
    pub(crate) list: ListId,
    pub(crate) tick: u64,
}

/// Heads and lengths of every list plus one occupied-slot bitmap per level.
pub(crate) struct Lists {
    heads: [u32; LIST_COUNT],
    lens: [u32; LIST_COUNT],
    occupied: [u64; LEVELS],
}

impl Lists {
    pub(crate) const fn new() -> Self {
        Self {
            heads: [NIL; LIST_COUNT],
            lens: [0; LIST_COUNT],
            occupied: [0; LEVELS],
        }
    }

    pub(crate) fn head(&self, list: ListId) -> u32 {
        self.heads[list.0 as usize]
    }

    /// Number of nodes on `list`.
    pub(crate) fn len(&self, list: ListId) -> u32 {
        self.lens[list.0 as usize]
    }

    /// Pushes `index` at the head of `list` (order within a list is
    /// irrelevant: batches are sorted when they fire).
    pub(crate) fn push<T>(&mut self, nodes: &mut [Node<T>], list: ListId, index: u32) {
        let head = self.heads[list.0 as usize];
        if head != NIL {
            nodes[head as usize].prev = index;
        }
        let node = &mut nodes[index as usize];
        node.prev = NIL;
        node.next = head;
        node.list = list;
        self.heads[list.0 as usize] = index;
        self.lens[list.0 as usize] += 1;
        if let Some(level) = list.level() {
            self.occupied[level] |= 1 << (list.0 as usize % SLOTS);
        }
    }

    /// Unlinks `index` from whatever list it is on, in O(1). Its `list`
    /// field is left as is; the caller relinks or frees the node.
    pub(crate) fn unlink<T>(&mut self, nodes: &mut [Node<T>], index: u32) {
        let Node {
            prev, next, list, ..
        } = nodes[index as usize];
        self.lens[list.0 as usize] -= 1;
        if next != NIL {
            nodes[next as usize].prev = prev;
        }
        if prev != NIL {
            nodes[prev as usize].next = next;
        } else {
            self.heads[list.0 as usize] = next;
            if next == NIL
                && let Some(level) = list.level()
            {
                self.occupied[level] &= !(1 << (list.0 as usize % SLOTS));
            }
        }
    }

    /// Empties `list` in O(1) and returns its old head; the detached chain
    /// is walked through `next` by the caller, who relinks every node.
    pub(crate) fn detach(&mut self, list: ListId) -> u32 {
        let head = core::mem::replace(&mut self.heads[list.0 as usize], NIL);
        self.lens[list.0 as usize] = 0;
        if let Some(level) = list.level() {
            self.occupied[level] &= !(1 << (list.0 as usize % SLOTS));
        }
        head
    }

    /// The earliest non-empty wheel slot, or the overflow list's next
    /// re-examination, for a wheel at tick `now`.
    pub(crate) fn next_expiration(&self, now: u64) -> Option<Expiration> {
        for (level, &occupied) in self.occupied.iter().enumerate() {
            let shift = level as u32 * SLOT_BITS;
            let now_slot = (now >> shift) as u32 & (SLOTS as u32 - 1);
            // Slots before `now`'s digit are empty (see the module doc), so
            // shifting them out leaves the first occupied slot at bit 0.
            let ahead = occupied >> now_slot;
            if ahead != 0 {
                let slot = u64::from(now_slot + ahead.trailing_zeros());
                // Keep `now`'s digits above this level, put `slot` in this
                // level's digit, zero the digits below: the slot's first tick.
                let window = !((1u64 << (shift + SLOT_BITS)) - 1);
                return Some(Expiration {
                    list: ListId::slot(level, slot as usize),
                    tick: (now & window) | (slot << shift),
                });
            }
        }
        if self.heads[ListId::OVERFLOW.0 as usize] == NIL {
            return None;
        }
        // Overflow timers are refiled when `now` enters the next top-level
        // window. One exists: an overflow timer is due beyond this window.
        let tick = ((now >> WHEEL_BITS) + 1).checked_mul(1 << WHEEL_BITS)?;
        Some(Expiration {
            list: ListId::OVERFLOW,
            tick,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_math() {
        assert_eq!(list_for(10, 10), ListId::DUE);
        assert_eq!(list_for(10, 3), ListId::DUE);
        assert_eq!(list_for(0, 1), ListId::slot(0, 1));
        assert_eq!(list_for(0, 63), ListId::slot(0, 63));
        assert_eq!(list_for(0, 64), ListId::slot(1, 1));
        assert_eq!(list_for(63, 64), ListId::slot(1, 1));
        assert_eq!(list_for(64, 127), ListId::slot(0, 63));
        assert_eq!(list_for(0, 64 * 64), ListId::slot(2, 1));
        assert_eq!(list_for(0, (1 << 36) - 1), ListId::slot(5, 63));
        assert_eq!(list_for(0, 1 << 36), ListId::OVERFLOW);
        assert_eq!(list_for(5, u64::MAX), ListId::OVERFLOW);
        assert_eq!(ListId::DUE.level(), None);
        assert_eq!(ListId::slot(3, 7).level(), Some(3));
    }

    #[test]
    fn next_expiration_is_slot_start() {
        let mut lists = Lists::new();
        let mut nodes: alloc::vec::Vec<Node<()>> = alloc::vec::Vec::new();
        assert_eq!(lists.next_expiration(0), None);
        // A timer at tick 200 seen from tick 70 lives at level 1, slot 3,
        // whose first tick is 192.
        let list = list_for(70, 200);
        assert_eq!(list, ListId::slot(1, 3));
        nodes.push(crate::slab::Node::vacant_for_tests());
        lists.push(&mut nodes, list, 0);
        assert_eq!(
            lists.next_expiration(70),
            Some(Expiration { list, tick: 192 })
        );
        lists.unlink(&mut nodes, 0);
        assert_eq!(lists.next_expiration(70), None);
        lists.push(&mut nodes, ListId::OVERFLOW, 0);
        assert_eq!(lists.next_expiration(70).map(|e| e.tick), Some(1 << 36));
    }
}
