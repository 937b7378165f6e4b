//! Levels, slots, and where a timer goes.
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
//! Each slot is a list of entries (`lists.rs`). Three more lists hang off
//! the same table: `DUE` (timers whose tick has already been reached,
//! waiting for the next `advance`), `OVERFLOW` (timers beyond the top level)
//! and `PARKED` (interval timers that ran past the end of time).

/// Bits of a tick consumed per level: 64 slots per level.
pub(crate) const SLOT_BITS: u32 = 6;
/// Slots per level.
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;
/// Levels in the wheel; together they span `2^(6 * LEVELS)` ticks.
pub(crate) const LEVELS: usize = 6;
/// Ticks spanned by all levels, as a power of two.
pub(crate) const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;
pub(crate) use crate::slab::NIL;

pub(crate) const SLOT_LISTS: usize = LEVELS * SLOTS;
pub(crate) const LIST_COUNT: usize = SLOT_LISTS + 3;

/// A list: a wheel slot, `DUE`, `OVERFLOW` or `PARKED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListId(pub(crate) u16);

impl ListId {
    /// Timers whose tick the wheel has already reached.
    pub(crate) const DUE: Self = Self(SLOT_LISTS as u16);
    /// Timers beyond the top level.
    pub(crate) const OVERFLOW: Self = Self(SLOT_LISTS as u16 + 1);
    /// Interval timers whose next deadline would pass `u64::MAX` ns: live,
    /// but never examined again.
    pub(crate) const PARKED: Self = Self(SLOT_LISTS as u16 + 2);

    pub(crate) const fn slot(level: usize, slot: usize) -> Self {
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
}
