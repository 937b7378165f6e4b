//! The wheel: arming, cancelling, and advancing time.
//!
//! See the crate documentation for the guarantees, `level.rs` for the
//! placement math and `lists.rs` for the slot lists. The parts here:
//! `insert` takes a node and appends an entry to a slot; `cancel` frees the
//! node in one look and leaves the entry as a tombstone; `advance`
//! repeatedly takes the earliest piece of work (found from the occupied
//! bitmaps in O(levels)), either cascading a coarse slot down or firing a
//! slot sorted by exact deadline, dropping tombstones on the way.
//!
//! **Bounded memory.** Only `insert` (and `add_interval`) add entries, so
//! that is where compaction keeps pace: whenever tombstones outnumber live
//! timers by more than [`SLACK`](crate::lists::SLACK), each `insert`
//! compacts [`INSERT_STEP`] chunks, and each `advance` `2 + fired / 4`
//! chunks plus 2 per 15 tombstones in excess (the work owed by the
//! cancels since the last call). So after every `insert` and `advance`,
//! entries stay below about `2 * live + SLACK` plus the work in flight (a
//! pass over `c` chunks takes `c / INSERT_STEP` inserts); `cancel` adds no
//! entry and does not compact, which keeps it to one look at the node
//! (measured: 21 ns instead of 27 per cancel with the check in `cancel`).
//! `tests` below check the bounds.

use alloc::vec::Vec;

use crate::config::Config;
use crate::error::{CancelError, ConfigError, InsertError, IntervalError};
use crate::expired::Expired;
use crate::handle::{IntervalHandle, TimerHandle};
use crate::interval::Intervals;
use crate::level::{ListId, NIL, SLOT_BITS, list_for};
use crate::lists::{CHUNK_ENTRIES, Entry, Lists, chunks_for};
use crate::slab::{Slab, WRAPPED, is_interval, prefetch};
use crate::time::TickShift;

/// Chunks compacted per `insert` while compaction is due.
const INSERT_STEP: usize = 2;
/// How far ahead of the timer being fired its batch's nodes are requested.
const FIRE_PREFETCH: usize = 4;
/// How far ahead of the tombstone check a batch's nodes are requested.
const FILTER_PREFETCH: usize = 8;

/// A hierarchical timer wheel holding payloads of type `T`.
///
/// Time is given and reported in nanoseconds (`u64`, any epoch, e.g. the
/// kernel's `Clock::now()`); inside, the wheel counts ticks of
/// [`TickShift`] nanoseconds.
///
/// ```
/// use percore_timer::{Config, Expired, TickShift, Wheel};
/// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
/// let late = wheel.insert(2_000_000, "late").unwrap();
/// wheel.insert(1_000_000, "early").unwrap();
/// wheel.cancel(late).unwrap();
///
/// // Program the one-shot hardware timer, sleep, then fire what is due.
/// let wake_at = wheel.next_deadline().unwrap();
/// assert!(wake_at <= 1_000_448); // 1 ms rounded up to a 1024 ns tick
/// let mut fired = Vec::new();
/// wheel.advance(1_000_448, |e| {
///     if let Expired::Oneshot { payload, .. } = e {
///         fired.push(payload);
///     }
/// });
/// assert_eq!(fired, ["early"]);
/// assert!(wheel.is_empty());
/// ```
pub struct Wheel<T> {
    slab: Slab<T>,
    lists: Lists,
    /// The current tick: every timer due at or before it has been fired or
    /// sits on the `DUE` list.
    now: u64,
    tick: TickShift,
    intervals: Intervals,
    /// Reused buffer for sorting a slot that fires.
    batch: Vec<Entry>,
}

impl<T> Wheel<T> {
    /// Creates a wheel at time 0, sized by `config`.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let wheel: Wheel<u64> = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// assert_eq!(wheel.now(), 0);
    /// assert_eq!(wheel.next_deadline(), None);
    /// ```
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let sizes = config.sizes()?;
        let most = sizes.intervals as usize + sizes.max_timers as usize;
        let prealloc = match sizes.capacity + sizes.intervals {
            0 => 0,
            n => chunks_for(n as usize),
        };
        Ok(Self {
            slab: Slab::new(sizes.intervals, sizes.capacity, sizes.max_timers),
            lists: Lists::new(prealloc, chunks_for(most)),
            now: 0,
            tick: config.tick,
            intervals: Intervals::new(sizes.intervals),
            batch: Vec::with_capacity(64),
        })
    }

    /// The tick length.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let tick = TickShift::new(20).unwrap();
    /// assert_eq!(Wheel::<()>::new(Config::new(tick)).unwrap().tick(), tick);
    /// ```
    pub fn tick(&self) -> TickShift {
        self.tick
    }

    /// The wheel's time (ns): the latest tick boundary it has advanced to.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let mut wheel: Wheel<()> = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// wheel.advance(5_000, |_| {});
    /// assert_eq!(wheel.now(), 4_096); // 5000 ns rounded down to a 1024 ns tick
    /// ```
    pub fn now(&self) -> u64 {
        self.tick.to_nanos(self.now)
    }

    /// Timers armed: one-shot timers plus active interval timers.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// wheel.insert(1, ()).unwrap();
    /// assert_eq!(wheel.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        // Every armed timer has one live entry; the rest are tombstones.
        self.lists.live()
    }

    /// How many interval timers the wheel can hold (fixed at creation).
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let config = Config::new(TickShift::new(10).unwrap()).with_intervals(3);
    /// assert_eq!(Wheel::<()>::new(config).unwrap().interval_capacity(), 3);
    /// ```
    pub fn interval_capacity(&self) -> usize {
        self.intervals.capacity()
    }

    /// Whether no timer is armed.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let wheel: Wheel<()> = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// assert!(wheel.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Arms a one-shot timer that fires at the first `advance(now)` with
    /// `now >= deadline` rounded up to a tick. A deadline already passed
    /// fires at the next `advance`. O(1); allocates only while the slab or
    /// the chunk pool grows towards its high-water mark. Two rare
    /// exceptions do one full compaction pass, O(entries): the chunk pool
    /// at the size `with_max_timers` needs with no chunk free, and a node
    /// whose generation wraps (once per 2^30 reuses of that node).
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// let handle = wheel.insert(3_000, 42u32).unwrap();
    /// assert_eq!(wheel.cancel(handle), Ok(42));
    /// ```
    pub fn insert(&mut self, deadline: u64, payload: T) -> Result<TimerHandle, InsertError<T>> {
        let (index, generation) = self.slab.insert(payload).map_err(InsertError::Full)?;
        self.arm(Entry {
            deadline,
            index,
            generation,
        });
        Ok(TimerHandle { index, generation })
    }

    /// Disarms a one-shot timer and returns its payload, in O(1): one look
    /// at the timer's node, which is free again at once (its slot entry is
    /// left as a tombstone, dropped by a later `advance` or `insert`, see
    /// the module doc). A handle whose timer already fired or was
    /// cancelled gives [`CancelError::Inactive`] and changes nothing.
    ///
    /// ```
    /// use percore_timer::{CancelError, Config, TickShift, Wheel};
    /// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// let handle = wheel.insert(3_000, "x").unwrap();
    /// wheel.advance(4_096, |_| {});
    /// assert_eq!(wheel.cancel(handle), Err(CancelError::Inactive));
    /// ```
    pub fn cancel(&mut self, handle: TimerHandle) -> Result<T, CancelError> {
        // A handle's generation can only match a live one-shot node (see
        // `slab.rs`): no range check of the index against the intervals'.
        let TimerHandle { index, generation } = handle;
        let payload = self
            .slab
            .take_oneshot(index, generation)
            .ok_or(CancelError::Inactive)?;
        // Its entry is a tombstone now; compaction is left to `insert` and
        // `advance` (see the module doc).
        self.lists.buried();
        Ok(payload)
    }

    /// Files the entry of a timer just armed. If its node's generation
    /// wrapped, first drops every tombstone, one of which could otherwise
    /// match the node again.
    #[inline]
    fn arm(&mut self, entry: Entry) {
        if entry.generation < WRAPPED {
            self.lists.compact_all(&self.slab.nodes);
        }
        self.lists.armed();
        if self.lists.compaction_due() {
            // One more entry while tombstones outnumber live timers by
            // more than SLACK: compact a little (see the module doc).
            self.compact_some(INSERT_STEP);
        }
        self.file(entry);
    }

    /// Compacts about `chunks` chunks (out of line: `insert` stays small).
    #[cold]
    #[inline(never)]
    fn compact_some(&mut self, chunks: usize) {
        self.lists.compact(&self.slab.nodes, chunks);
    }

    /// Arms an interval timer: it fires at `first`, then every `period` ns
    /// after that *deadline* (no drift). Uses one of the slots fixed by
    /// [`Config::with_intervals`]; never allocates.
    ///
    /// ```
    /// use percore_timer::{Config, Expired, TickShift, Wheel};
    /// let config = Config::new(TickShift::new(0).unwrap()).with_intervals(1);
    /// let mut wheel = Wheel::new(config).unwrap();
    /// wheel.add_interval(100, 100, ()).unwrap();
    /// let mut at = Vec::new();
    /// for now in [100, 150, 230, 300] {
    ///     wheel.advance(now, |e| at.push(e.deadline()));
    /// }
    /// assert_eq!(at, [100, 200, 300]);
    /// ```
    pub fn add_interval(
        &mut self,
        first: u64,
        period: u64,
        payload: T,
    ) -> Result<IntervalHandle, IntervalError<T>> {
        if period == 0 {
            return Err(IntervalError::ZeroPeriod(payload));
        }
        let Some(index) = self.intervals.claim(period) else {
            return Err(IntervalError::Full(payload));
        };
        let generation = self.slab.fill(index, payload);
        self.arm(Entry {
            deadline: first,
            index,
            generation,
        });
        Ok(IntervalHandle { index, generation })
    }

    /// Removes an interval timer, returning its payload and freeing its
    /// slot. A stale handle gives [`CancelError::Inactive`].
    ///
    /// ```
    /// use percore_timer::{CancelError, Config, TickShift, Wheel};
    /// let config = Config::new(TickShift::new(10).unwrap()).with_intervals(1);
    /// let mut wheel = Wheel::new(config).unwrap();
    /// let h = wheel.add_interval(0, 1_000, 5u8).unwrap();
    /// assert_eq!(wheel.remove_interval(h), Ok(5));
    /// assert_eq!(wheel.remove_interval(h), Err(CancelError::Inactive));
    /// ```
    pub fn remove_interval(&mut self, handle: IntervalHandle) -> Result<T, CancelError> {
        let IntervalHandle { index, generation } = handle;
        let payload = self
            .slab
            .take_interval(index, generation)
            .ok_or(CancelError::Inactive)?;
        self.intervals.release(index);
        self.lists.buried();
        Ok(payload)
    }

    /// When to call [`advance`](Self::advance) next (ns), or `None` if no
    /// timer is armed: the value to program a one-shot deadline timer with.
    ///
    /// It is never later than the earliest timer's fire instant (its deadline
    /// rounded up to a tick); it is [`now`](Self::now) when timers are
    /// already due. It is earlier than any fire instant only when a coarse
    /// slot must first be cascaded (or the overflow list re-examined) at
    /// that instant, or when a slot holds only cancelled timers (their
    /// entries are dropped when the slot is walked or compacted); advancing
    /// to it then
    /// does that work, and the next call returns a later value. O(levels),
    /// no list walks.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let mut wheel = Wheel::new(Config::new(TickShift::new(0).unwrap())).unwrap();
    /// wheel.insert(40, ()).unwrap();
    /// assert_eq!(wheel.next_deadline(), Some(40));
    /// wheel.insert(200, ()).unwrap();
    /// wheel.advance(50, |_| {});
    /// // 200 is on level 1 (slots of 64 ticks); its slot begins at 192.
    /// assert_eq!(wheel.next_deadline(), Some(192));
    /// wheel.advance(192, |_| {});
    /// assert_eq!(wheel.next_deadline(), Some(200));
    /// ```
    pub fn next_deadline(&self) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        if !self.lists.is_empty(ListId::DUE) {
            return Some(self.now());
        }
        let expiration = self.lists.next_expiration(self.now)?;
        Some(self.tick.to_nanos(expiration.tick))
    }

    /// Advances the wheel to `now` (ns) and calls `expired` for every timer
    /// due, returning how many fired.
    ///
    /// A timer is due when `now` has reached its deadline rounded up to a
    /// tick. Timers fired by one call come out in non-decreasing order of
    /// their exact deadline; equal deadlines fire in unspecified order.
    /// Only occupied slots are visited: the cost is O(levels) per occupied
    /// slot passed plus O(1) per entry cascaded, fired or dropped as a
    /// tombstone (and a sort of each batch fired together), plus, when
    /// tombstones are due for compaction, `2 + fired / 4` chunks of it and
    /// two per 15 excess tombstones (the work the cancels since the last
    /// call left, amortized O(1) per cancel). A `now` earlier than
    /// [`Wheel::now`] moves nothing back; timers already due still fire.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let mut wheel = Wheel::new(Config::new(TickShift::new(0).unwrap())).unwrap();
    /// for d in [300, 100, 200, 5_000] {
    ///     wheel.insert(d, d).unwrap();
    /// }
    /// let mut order = Vec::new();
    /// assert_eq!(wheel.advance(1_000, |e| order.push(e.deadline())), 3);
    /// assert_eq!(order, [100, 200, 300]);
    /// ```
    pub fn advance<F>(&mut self, now: u64, mut expired: F) -> usize
    where
        F: FnMut(Expired<'_, T>),
    {
        let target = self.tick.floor(now);
        let limit = self.tick.to_nanos(target.max(self.now));
        let mut fired = 0;
        loop {
            if !self.lists.is_empty(ListId::DUE) {
                fired += self.fire_list(ListId::DUE, limit, &mut expired);
            }
            let Some(work) = self.lists.next_expiration(self.now) else {
                break;
            };
            if work.tick > target {
                break;
            }
            let Some(level) = work.list.level() else {
                // Overflow, with the whole wheel empty: nothing is due before
                // the earliest overflow timer, so jump straight to it (or to
                // `target`) instead of one 2^36-tick window at a time.
                let earliest = self.earliest_overflow_tick();
                self.now = self.now.max(work.tick.max(earliest.min(target)));
                self.cascade(work.list);
                continue;
            };
            // The slot's last tick.
            let last = work.tick + ((1u64 << (level as u32 * SLOT_BITS)) - 1);
            if last <= target {
                // The whole slot is due, and nothing else pending is due
                // before it (lower levels are empty, see `level.rs`): fire
                // it in one sorted batch rather than cascade it down.
                self.now = self.now.max(last);
                fired += self.fire_list(work.list, limit, &mut expired);
            } else {
                self.now = self.now.max(work.tick);
                self.cascade(work.list);
            }
        }
        self.now = self.now.max(target);
        if self.lists.compaction_due() {
            // Work owed by the cancels since the last call, and by the
            // live timers that fired.
            let owed = 2 * self.lists.excess() / CHUNK_ENTRIES;
            self.compact_some(2 + fired / 4 + owed);
        }
        fired
    }

    /// The earliest due tick on the overflow list (`u64::MAX` if empty;
    /// tombstones count, which can only make it early).
    fn earliest_overflow_tick(&self) -> u64 {
        self.lists
            .iter(ListId::OVERFLOW)
            .map(|e| self.tick.ceil(e.deadline))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Files `entry` on the list its deadline calls for.
    #[inline]
    fn file(&mut self, entry: Entry) {
        let due = self.tick.ceil(entry.deadline);
        let list = list_for(self.now, due);
        self.lists.push(&self.slab.nodes, list, entry);
    }

    /// Refiles every entry of `list` relative to the current tick; each
    /// moves to a finer level or onto `DUE`. Tombstones are dropped on the
    /// way: each chunk's nodes are requested one chunk ahead of their
    /// generation checks, so the node misses overlap (measured: copying
    /// tombstones down instead, without looking at nodes, made
    /// `expire_stepped` 3.5x slower and `lifecycle` 10% slower, since
    /// every cancelled timer was then copied at each level and sorted).
    fn cascade(&mut self, list: ListId) {
        let mut chunk = self.lists.detach(list);
        let mut bufs = [[Entry::EMPTY; CHUNK_ENTRIES]; 2];
        let mut lens = [0usize; 2];
        if chunk == NIL {
            return;
        }
        (lens[0], chunk) = self.lists.pop_chunk(chunk, &mut bufs[0]);
        for e in &bufs[0][..lens[0]] {
            prefetch(&self.slab.nodes, e.index);
        }
        let mut k = 0;
        loop {
            let more = chunk != NIL;
            if more {
                (lens[k ^ 1], chunk) = self.lists.pop_chunk(chunk, &mut bufs[k ^ 1]);
                for e in &bufs[k ^ 1][..lens[k ^ 1]] {
                    prefetch(&self.slab.nodes, e.index);
                }
            }
            let mut dropped = 0;
            for &entry in &bufs[k][..lens[k]] {
                if entry.is_live(&self.slab.nodes) {
                    self.file(entry);
                } else {
                    dropped += 1;
                }
            }
            self.lists.dropped(dropped);
            if !more {
                break;
            }
            k ^= 1;
        }
    }

    /// Fires every live timer on `list` (all due by `limit` ns) in deadline
    /// order, skipping tombstones; returns how many fired.
    fn fire_list<F>(&mut self, list: ListId, limit: u64, expired: &mut F) -> usize
    where
        F: FnMut(Expired<'_, T>),
    {
        let mut batch = core::mem::take(&mut self.batch);
        batch.clear();
        self.lists.drain(list, &mut batch);
        // Drop the tombstones first (their nodes requested a few entries
        // ahead), so that only live timers are sorted.
        let nodes = &self.slab.nodes;
        let mut kept = 0;
        for i in 0..batch.len() {
            if let Some(ahead) = batch.get(i + FILTER_PREFETCH) {
                prefetch(nodes, ahead.index);
            }
            let entry = batch[i];
            if entry.is_live(nodes) {
                batch[kept] = entry;
                kept += 1;
            }
        }
        self.lists.dropped(batch.len() - kept);
        batch.truncate(kept);
        batch.sort_unstable_by_key(|e| e.deadline);
        for e in batch.iter().take(FIRE_PREFETCH) {
            prefetch(&self.slab.nodes, e.index);
        }
        let mut rest = Refile {
            wheel: self,
            batch,
            next: 0,
        };
        let mut fired = 0;
        while let Some(&entry) = rest.batch.get(rest.next) {
            if let Some(ahead) = rest.batch.get(rest.next + FIRE_PREFETCH) {
                prefetch(&rest.wheel.slab.nodes, ahead.index);
            }
            rest.next += 1;
            fired += usize::from(rest.wheel.fire(entry, limit, expired));
        }
        fired
    }

    /// Fires one detached entry: frees a one-shot, re-arms an interval,
    /// drops a tombstone. Returns whether a timer fired.
    fn fire<F>(&mut self, entry: Entry, limit: u64, expired: &mut F) -> bool
    where
        F: FnMut(Expired<'_, T>),
    {
        let Entry {
            deadline,
            index,
            generation,
        } = entry;
        if !is_interval(generation) {
            let Some(payload) = self.slab.take_oneshot(index, generation) else {
                self.lists.dropped(1);
                return false;
            };
            self.lists.fired();
            expired(Expired::Oneshot { deadline, payload });
            return true;
        }
        if !self.slab.is_live(index, generation) {
            self.lists.dropped(1);
            return false;
        }
        let (missed, next) = self.intervals.rearm(index, deadline, limit);
        let rearmed = Entry {
            deadline: next,
            index,
            generation,
        };
        if next > limit {
            self.file(rearmed);
        } else {
            // `next` saturated at u64::MAX and is still due: park it rather
            // than fire it again in this same call, forever.
            self.lists.push(&self.slab.nodes, ListId::PARKED, rearmed);
        }
        let Some(payload) = self.slab.payload_mut(index, generation) else {
            return false;
        };
        let handle = IntervalHandle { index, generation };
        expired(Expired::Interval {
            handle,
            deadline,
            missed,
            payload,
        });
        true
    }
}

/// A sorted batch being fired. Its entries are off every list, so if the
/// callback unwinds part-way, dropping this puts the unfired rest on `DUE`
/// (they fire at the next `advance`) and the wheel stays consistent.
struct Refile<'a, T> {
    wheel: &'a mut Wheel<T>,
    batch: Vec<Entry>,
    /// The first entry not yet fired.
    next: usize,
}

impl<T> Drop for Refile<'_, T> {
    fn drop(&mut self) {
        let wheel = &mut *self.wheel;
        for &entry in &self.batch[self.next..] {
            wheel.lists.push(&wheel.slab.nodes, ListId::DUE, entry);
        }
        wheel.batch = core::mem::take(&mut self.batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::SLACK;
    use crate::time::TickShift;

    /// xorshift64 from `seed` (non-zero): the same sequence on every run.
    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// The counters agree with the lists, and `len` with the tombstones.
    fn check_counts<T>(w: &Wheel<T>) {
        assert_eq!(w.lists.entry_count(), w.lists.entries());
        assert_eq!(w.lists.entries() - w.lists.tombstones(), w.len());
        let (in_use, pool) = w.lists.chunk_counts();
        assert!(in_use <= pool);
    }

    /// The bound the docs state: entries below `2 * live + SLACK`, plus
    /// what one compaction pass lets through while it runs.
    fn entry_bound(live: usize) -> usize {
        2 * live + SLACK + (live + SLACK) / 8 + 2 * CHUNK_ENTRIES
    }

    #[test]
    fn far_insert_cancel_loop_keeps_entries_bounded() {
        let mut w = Wheel::new(Config::new(TickShift::new(0).unwrap())).unwrap();
        // 1000 live timers spread over every level, which compaction has
        // to walk past.
        let live = 1000u64;
        for i in 0..live {
            w.insert(1 + (i * 7_919_993) % (1 << 40), i).unwrap();
        }
        let mut peak = (0, 0);
        for k in 0..100_000u64 {
            // Far deadlines: the overflow list, the top level, one slot.
            let deadline = [1 << 40, 1 << 33, 5_000 + k % 64][k as usize % 3];
            let h = w.insert(deadline, k).unwrap();
            assert_eq!(w.cancel(h), Ok(k));
            // Each insert compacts a little while tombstones are due.
            let entries = w.lists.entries();
            assert!(
                entries <= entry_bound(live as usize),
                "{entries} entries at {k}"
            );
            let (in_use, pool) = w.lists.chunk_counts();
            peak = (peak.0.max(entries), peak.1.max(pool));
            assert!(in_use <= chunks_for(entry_bound(live as usize)));
            if k % 9_973 == 0 {
                check_counts(&w);
            }
        }
        check_counts(&w);
        assert_eq!(w.len(), live as usize);
        // The pool never grew past what the bound needs.
        assert!(peak.1 <= chunks_for(entry_bound(live as usize)), "{peak:?}");
        // Everything left still fires, once.
        assert_eq!(w.advance(u64::MAX, |_| {}), live as usize);
        check_counts(&w);
        assert!(w.is_empty());
    }

    #[test]
    fn cancelling_everything_then_advancing_gives_the_entries_back() {
        let mut w = Wheel::new(Config::new(TickShift::new(0).unwrap())).unwrap();
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| w.insert(1_000 + i * 1_000, i).unwrap())
            .collect();
        for h in handles {
            w.cancel(h).unwrap();
        }
        // Cancels only turn entries into tombstones (no memory is added);
        // the next advance, even one that moves no time, compacts what
        // they left: entries are back within the bound of an empty wheel.
        assert_eq!(w.lists.entries(), 10_000);
        check_counts(&w);
        assert_eq!(w.advance(w.now(), |_| unreachable!()), 0);
        assert!(w.lists.entries() <= entry_bound(0), "{}", w.lists.entries());
        check_counts(&w);
        w.advance(u64::MAX, |_| unreachable!());
        assert_eq!(w.lists.entries(), 0);
        assert_eq!(w.lists.chunk_counts().0, 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn compaction_keeps_counts_through_cascades_and_expiry() {
        // 1 ns ticks; timers at every level, most cancelled, with time
        // moving in steps that cascade and fire slots while a compaction
        // pass is half-way through the lists.
        let mut w = Wheel::new(Config::new(TickShift::new(0).unwrap()).with_intervals(2)).unwrap();
        w.add_interval(50, 4_099, u64::MAX).unwrap();
        let mut rand = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut now = 0;
        let mut armed = Vec::new();
        let mut fired = 0;
        for _ in 0..200 {
            for _ in 0..100 {
                let d = now + 1 + rand() % [100, 10_000, 1 << 20, 1 << 30][rand() as usize % 4];
                armed.push(w.insert(d, d).unwrap());
            }
            for _ in 0..90 {
                let i = rand() as usize % armed.len();
                let _ = w.cancel(armed.swap_remove(i));
            }
            now += rand() % 5_000;
            fired += w.advance(now, |e| {
                if let Expired::Oneshot { deadline, payload } = e {
                    assert_eq!(deadline, payload);
                    assert!(deadline <= now);
                }
            });
            check_counts(&w);
            assert!(w.lists.entries() <= entry_bound(w.len()));
        }
        assert!(fired > 0);
        w.advance(u64::MAX - 1, |_| {});
        check_counts(&w);
    }

    #[test]
    fn a_wrapped_generation_drops_old_tombstones_first() {
        let mut w = Wheel::new(Config::new(TickShift::new(0).unwrap())).unwrap();
        let a = w.insert(100, 'a').unwrap();
        assert_eq!(w.cancel(a), Ok('a'));
        // A tombstone at 100 names node 0 with a's generation. Move the node
        // to the end of its generations, as if reused 2^30 times.
        assert_eq!(a.generation, 5);
        w.slab.nodes[0].generation = u32::MAX - 1;
        let b = w.insert(500, 'b').unwrap();
        assert!(b.generation < WRAPPED);
        // The wrap dropped every tombstone before b was filed.
        assert_eq!(w.lists.tombstones(), 0);
        check_counts(&w);
        assert_eq!(w.cancel(b), Ok('b'));
        // c gets a's old generation back; a's tombstone must not fire it.
        let c = w.insert(1_000, 'c').unwrap();
        assert_eq!(c.generation, a.generation);
        assert_eq!(w.advance(999, |_| unreachable!()), 0);
        let mut got = Vec::new();
        w.advance(1_000, |e| {
            if let Expired::Oneshot { payload, .. } = e {
                got.push(payload);
            }
        });
        assert_eq!(got, ['c']);
        check_counts(&w);
    }

    #[test]
    fn churn_at_max_timers_does_not_allocate() {
        let config = Config::new(TickShift::new(0).unwrap())
            .with_capacity(1_000)
            .with_max_timers(1_000)
            .with_intervals(1);
        let mut w = Wheel::new(config).unwrap();
        let pool = w.lists.pool_capacity();
        let nodes = w.slab.nodes.capacity();
        w.add_interval(10, 777, 0).unwrap();
        let mut handles: Vec<_> = (0..1_000u64)
            .map(|i| w.insert(i * 1_000_003 % (1 << 34), i).unwrap())
            .collect();
        assert!(w.insert(5, 0).is_err());
        let mut rand = xorshift(12345);
        for k in 0..50_000u64 {
            let x = rand();
            let i = x as usize % handles.len();
            w.cancel(handles[i]).unwrap();
            handles[i] = w.insert(k * 7 + x % (1 << 36), k).unwrap();
            if k % 1_000 == 0 {
                w.advance(k * 5, |_| {});
                handles.retain(|h| w.slab.is_live(h.index, h.generation));
                while handles.len() < 1_000 {
                    handles.push(w.insert((1 << 35) + k, k).unwrap());
                }
            }
        }
        check_counts(&w);
        assert_eq!(w.lists.pool_capacity(), pool);
        assert_eq!(w.slab.nodes.capacity(), nodes);
    }
}
