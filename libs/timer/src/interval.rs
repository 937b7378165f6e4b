//! The fixed table of interval (periodic) timers.
//!
//! Interval timers occupy the slab entries `[0, capacity)`, reserved at
//! creation; this table holds their periods and a stack of unused entries.
//! Both are allocated once, so adding and removing intervals never allocates.
//!
//! Re-arming is drift-free: the next deadline is computed from the previous
//! *deadline*, not from the time `advance` happened to run. When `advance`
//! runs late enough that several periods are due, they are coalesced into
//! one firing that reports how many were skipped (`missed`), and the timer
//! keeps its phase: `next = deadline + (missed + 1) * period`.

use alloc::vec::Vec;

pub(crate) struct Intervals {
    periods: Vec<u64>,
    /// Unused interval entries; never holds more than `periods.len()`.
    unused: Vec<u32>,
}

impl Intervals {
    pub(crate) fn new(capacity: u32) -> Self {
        let periods = alloc::vec![0; capacity as usize];
        // Reversed so that entry 0 is handed out first.
        Self {
            periods,
            unused: (0..capacity).rev().collect(),
        }
    }

    /// Claims an unused entry for an interval of `period` ns.
    pub(crate) fn claim(&mut self, period: u64) -> Option<u32> {
        let index = self.unused.pop()?;
        self.periods[index as usize] = period;
        Some(index)
    }

    /// Returns an entry claimed earlier. Cannot allocate: at most
    /// `capacity` entries are ever unused.
    pub(crate) fn release(&mut self, index: u32) {
        self.unused.push(index);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.periods.len()
    }

    /// Where interval `index`, due at `deadline`, goes after firing at an
    /// `advance` whose (tick-floored) time is `limit` ns: returns
    /// `(missed, next)`.
    ///
    /// A deadline `x` is due at `limit` iff `x <= limit` (`limit` is a tick
    /// boundary, and deadlines fire at the first boundary at or after them),
    /// so the periods also due are the `k >= 1` with
    /// `deadline + k * period <= limit`: `missed = (limit - deadline) / period`.
    /// The arithmetic saturates at `u64::MAX`.
    pub(crate) fn rearm(&self, index: u32, deadline: u64, limit: u64) -> (u64, u64) {
        let period = self.periods[index as usize];
        let missed = limit.saturating_sub(deadline) / period;
        let next = deadline.saturating_add((missed + 1).saturating_mul(period));
        (missed, next)
    }
}

#[cfg(test)]
mod tests {
    use super::Intervals;

    #[test]
    fn rearm_keeps_phase() {
        let mut table = Intervals::new(2);
        assert_eq!(table.claim(10), Some(0));
        assert_eq!(table.claim(3), Some(1));
        assert_eq!(table.claim(3), None);
        // On time: no misses, next = deadline + period.
        assert_eq!(table.rearm(0, 100, 100), (0, 110));
        // Late by 25: periods at 110 and 120 were due too.
        assert_eq!(table.rearm(0, 100, 125), (2, 130));
        // Saturates instead of wrapping.
        assert_eq!(table.rearm(1, u64::MAX - 1, u64::MAX), (0, u64::MAX));
        table.release(1);
        assert_eq!(table.claim(4), Some(1));
        assert_eq!(table.capacity(), 2);
    }
}
