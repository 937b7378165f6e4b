//! The wheel: arming, cancelling, and advancing time.
//!
//! See the crate documentation for the guarantees and `level.rs` for the
//! placement math. The parts here: `insert`/`cancel` are a slab operation
//! plus an O(1) list push/unlink; `advance` repeatedly takes the earliest
//! piece of work (found from the occupied bitmaps in O(levels)), either
//! cascading a coarse slot down or firing a level-0 slot; timers fired by
//! one call are sorted per tick so they come out in exact deadline order.

use alloc::vec::Vec;

use crate::config::Config;
use crate::error::{CancelError, ConfigError, InsertError, IntervalError};
use crate::expired::Expired;
use crate::handle::{IntervalHandle, TimerHandle};
use crate::interval::Intervals;
use crate::level::{ListId, Lists, NIL, SLOT_BITS, list_for};
use crate::pending::Pending;
use crate::slab::Slab;
use crate::time::TickShift;

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
    /// One-shot timers armed.
    timers: usize,
    /// Reused buffer for sorting a batch that fires in the same tick.
    batch: Vec<(u64, u32)>,
    /// Cancelled (hollow) timers still linked, unlinked in batches.
    pending: Pending,
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
        Ok(Self {
            slab: Slab::new(sizes.intervals, sizes.capacity, sizes.max_timers),
            lists: Lists::new(),
            now: 0,
            tick: config.tick,
            intervals: Intervals::new(sizes.intervals),
            timers: 0,
            batch: Vec::with_capacity(64),
            pending: Pending::new(),
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
        self.timers + self.intervals.active()
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
    /// fires at the next `advance`. O(1); allocates only while the slab
    /// grows towards its high-water mark.
    ///
    /// ```
    /// use percore_timer::{Config, TickShift, Wheel};
    /// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// let handle = wheel.insert(3_000, 42u32).unwrap();
    /// assert_eq!(wheel.cancel(handle), Ok(42));
    /// ```
    pub fn insert(&mut self, deadline: u64, payload: T) -> Result<TimerHandle, InsertError<T>> {
        let index = match self.slab.insert(deadline, payload) {
            Ok(index) => index,
            // Hollow (cancelled) timers may be holding the last entries.
            Err(payload) if !self.pending.is_empty() => {
                self.pending.flush(&mut self.lists, &mut self.slab);
                self.slab
                    .insert(deadline, payload)
                    .map_err(InsertError::Full)?
            }
            Err(payload) => return Err(InsertError::Full(payload)),
        };
        self.link(index);
        self.timers += 1;
        Ok(TimerHandle {
            index,
            generation: self.slab.nodes[index as usize].generation,
        })
    }

    /// Disarms a one-shot timer and returns its payload, in O(1). A handle
    /// whose timer already fired or was cancelled gives
    /// [`CancelError::Inactive`] and changes nothing.
    ///
    /// ```
    /// use percore_timer::{CancelError, Config, TickShift, Wheel};
    /// let mut wheel = Wheel::new(Config::new(TickShift::new(10).unwrap())).unwrap();
    /// let handle = wheel.insert(3_000, "x").unwrap();
    /// wheel.advance(4_096, |_| {});
    /// assert_eq!(wheel.cancel(handle), Err(CancelError::Inactive));
    /// ```
    pub fn cancel(&mut self, handle: TimerHandle) -> Result<T, CancelError> {
        let TimerHandle { index, generation } = handle;
        if index < self.slab.reserved() {
            return Err(CancelError::Inactive);
        }
        let payload = self
            .slab
            .take_live(index, generation)
            .ok_or(CancelError::Inactive)?;
        self.timers -= 1;
        self.pending.push(index, &mut self.lists, &mut self.slab);
        Ok(payload)
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
        self.slab.fill(index, first, payload);
        self.link(index);
        Ok(IntervalHandle {
            index,
            generation: self.slab.nodes[index as usize].generation,
        })
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
        if index >= self.slab.reserved() || !self.slab.is_live(index, generation) {
            return Err(CancelError::Inactive);
        }
        self.lists.unlink(&mut self.slab.nodes, index);
        let payload = self.slab.remove(index).ok_or(CancelError::Inactive)?;
        self.intervals.release(index);
        Ok(payload)
    }

    /// When to call [`advance`](Self::advance) next (ns), or `None` if no
    /// timer is armed: the value to program a one-shot deadline timer with.
    ///
    /// It is never later than the earliest timer's fire instant (its deadline
    /// rounded up to a tick); it is [`now`](Self::now) when timers are
    /// already due. It is earlier than any fire instant only when a coarse
    /// slot must first be cascaded (or the overflow list re-examined) at
    /// that instant, or when a slot holds only timers cancelled since the
    /// last `advance` (they are unlinked in batches); advancing to it then
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
        if self.lists.head(ListId::DUE) != NIL {
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
    /// slot passed plus O(1) per timer cascaded or fired (and a sort of each
    /// same-tick batch). A `now` earlier than [`Wheel::now`] moves nothing
    /// back; timers already due still fire.
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
        // Lists are walked below: none may hold a hollow (cancelled) node.
        self.pending.flush(&mut self.lists, &mut self.slab);
        let target = self.tick.floor(now);
        let limit = self.tick.to_nanos(target.max(self.now));
        let mut fired = 0;
        loop {
            if self.lists.head(ListId::DUE) != NIL {
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
        fired
    }

    /// The earliest due tick on the overflow list (`u64::MAX` if empty).
    fn earliest_overflow_tick(&self) -> u64 {
        let mut earliest = u64::MAX;
        let mut index = self.lists.head(ListId::OVERFLOW);
        while index != NIL {
            let node = &self.slab.nodes[index as usize];
            earliest = earliest.min(self.tick.ceil(node.deadline));
            index = node.next;
        }
        earliest
    }

    /// Files node `index` on the list its deadline calls for.
    fn link(&mut self, index: u32) {
        let due = self.tick.ceil(self.slab.nodes[index as usize].deadline);
        let list = list_for(self.now, due);
        self.lists.push(&mut self.slab.nodes, list, index);
    }

    /// Refiles every timer of `list` relative to the current tick; each
    /// moves to a finer level or onto `DUE`.
    fn cascade(&mut self, list: ListId) {
        let batch = self.gather(list);
        for &(_, index) in &batch {
            self.link(index);
        }
        self.batch = batch;
    }

    /// Detaches `list` and returns its timers as `(deadline, index)` in the
    /// reusable batch buffer (the caller puts the buffer back).
    ///
    /// Walking a list is a chain of dependent loads, each likely a cache
    /// miss (~100 ns) once the slab outgrows the cache. When the list holds
    /// more than 1/16 of the slab, a sequential scan of the whole slab for
    /// nodes tagged with this list is cheaper (a few ns per node, prefetched).
    fn gather(&mut self, list: ListId) -> Vec<(u64, u32)> {
        let mut batch = core::mem::take(&mut self.batch);
        batch.clear();
        let scan = self.lists.len(list) as usize > self.slab.nodes.len() / 16;
        let mut index = self.lists.detach(list);
        if scan {
            for (i, node) in self.slab.nodes.iter().enumerate() {
                if node.list == list {
                    // Slab indices fit in u32 (checked by `Config`).
                    batch.push((node.deadline, i as u32));
                }
            }
        } else {
            while index != NIL {
                let node = &self.slab.nodes[index as usize];
                batch.push((node.deadline, index));
                index = node.next;
            }
        }
        batch
    }

    /// Fires every timer on `list` (all due by `limit` ns) in deadline order.
    fn fire_list<F>(&mut self, list: ListId, limit: u64, expired: &mut F) -> usize
    where
        F: FnMut(Expired<'_, T>),
    {
        let head = self.lists.head(list);
        if self.slab.nodes[head as usize].next == NIL {
            self.lists.detach(list);
            self.fire(head, limit, expired);
            return 1;
        }
        let mut batch = self.gather(list);
        batch.sort_unstable();
        let mut rest = Refile {
            wheel: self,
            batch,
            fired: 0,
        };
        while let Some(&(_, index)) = rest.batch.get(rest.fired) {
            rest.fired += 1;
            rest.wheel.fire(index, limit, expired);
        }
        rest.fired
    }

    /// Fires one detached timer: frees a one-shot, re-arms an interval.
    fn fire<F>(&mut self, index: u32, limit: u64, expired: &mut F)
    where
        F: FnMut(Expired<'_, T>),
    {
        let node = &self.slab.nodes[index as usize];
        let (deadline, generation) = (node.deadline, node.generation);
        if index >= self.slab.reserved() {
            if let Some(payload) = self.slab.remove(index) {
                self.timers -= 1;
                expired(Expired::Oneshot { deadline, payload });
            }
            return;
        }
        let (missed, next) = self.intervals.rearm(index, deadline, limit);
        self.slab.nodes[index as usize].deadline = next;
        if next > limit {
            self.link(index);
        } else {
            // `next` saturated at u64::MAX and is still due: park it rather
            // than fire it again in this same call, forever.
            self.lists.push(&mut self.slab.nodes, ListId::PARKED, index);
        }
        if let Some(payload) = self.slab.payload_mut(index) {
            let handle = IntervalHandle { index, generation };
            expired(Expired::Interval {
                handle,
                deadline,
                missed,
                payload,
            });
        }
    }
}

/// A sorted batch being fired. Its timers are off every list, so if the
/// callback unwinds part-way, dropping this puts the unfired rest on `DUE`
/// (they fire at the next `advance`) and the wheel stays consistent.
struct Refile<'a, T> {
    wheel: &'a mut Wheel<T>,
    batch: Vec<(u64, u32)>,
    fired: usize,
}

impl<T> Drop for Refile<'_, T> {
    fn drop(&mut self) {
        let wheel = &mut *self.wheel;
        for &(_, index) in &self.batch[self.fired..] {
            wheel.lists.push(&mut wheel.slab.nodes, ListId::DUE, index);
        }
        wheel.batch = core::mem::take(&mut self.batch);
    }
}
