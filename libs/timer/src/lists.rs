//! Slot lists: 16-byte entries in chunks from one shared pool, with
//! tombstones and their incremental compaction.
//!
//! A timer's place in the wheel is an [`Entry`] `{deadline, index,
//! generation}` on one list (a wheel slot, `DUE`, `OVERFLOW` or `PARKED`);
//! the node it names (`slab.rs`) holds only a generation and the payload.
//! Each list is a singly linked chain of [`Chunk`]s (256 bytes: a header and
//! [`CHUNK_ENTRIES`] entries) with a head and a tail; entries are appended
//! at the tail, and chunks come from one pool with a free list.
//!
//! **Tombstones.** Cancelling a timer frees its node at once and leaves its
//! entry where it is: the entry's generation no longer matches the node's,
//! so it is a *tombstone*, skipped when its list fires and dropped by
//! compaction. [`Lists::tombstones`] counts them exactly (+1 at cancel, -1
//! whenever a walk finds one). Firing and cascading a list drop its
//! tombstones (`wheel.rs`).
//!
//! **Compaction** ([`Lists::compact`]) walks the lists chunk by chunk with a
//! cursor that survives between calls: it drops the tombstones of one chunk
//! (the chunk's nodes prefetched first, so their misses overlap), then
//! merges the chunk into its predecessor if both fit in one, freeing it.
//! After a pass, two neighbouring chunks of a list hold at least 16 entries
//! together, so a list of `n` entries has at most `n / 8 + 1` chunks. The
//! wheel calls it with a small budget whenever tombstones exceed live timers
//! by a slack (see `wheel.rs`), so no single call does more than a few
//! chunks of work; a full pass ([`Lists::compact_all`]) runs only when the
//! pool is at its limit or a node's generation wraps.

use alloc::vec::Vec;

use crate::level::{LEVELS, LIST_COUNT, ListId, NIL, SLOT_BITS, SLOTS, WHEEL_BITS};
use crate::slab::{Node, prefetch};

/// Tombstones tolerated beyond the number of live timers before
/// compaction starts.
pub(crate) const SLACK: usize = 256;

/// Entries per chunk: 15 entries and an 8-byte header fill 256 bytes.
pub(crate) const CHUNK_ENTRIES: usize = 15;

/// Where a timer sits: its exact deadline and the node it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Entry {
    /// Exact deadline in nanoseconds (not rounded to a tick).
    pub(crate) deadline: u64,
    pub(crate) index: u32,
    /// The node's (odd) generation when the timer was armed.
    pub(crate) generation: u32,
}

impl Entry {
    /// Overwrites `self` field by field: the stores match how `entry` was
    /// built, so nothing waits on a store-to-load forward of a wider read.
    #[inline(always)]
    fn set(&mut self, entry: Entry) {
        self.deadline = entry.deadline;
        self.index = entry.index;
        self.generation = entry.generation;
    }

    pub(crate) const EMPTY: Self = Self {
        deadline: 0,
        index: NIL,
        generation: 0,
    };

    /// Whether the node still holds the timer this entry was made for
    /// (entries carry odd generations, so a match means a live node).
    #[inline(always)]
    pub(crate) fn is_live<T>(&self, nodes: &[Node<T>]) -> bool {
        nodes
            .get(self.index as usize)
            .is_some_and(|n| n.generation == self.generation)
    }
}

/// A piece of a list, aligned to cache lines.
#[repr(C, align(64))]
pub(crate) struct Chunk {
    next: u32,
    len: u32,
    entries: [Entry; CHUNK_ENTRIES],
}

impl Chunk {
    const EMPTY: Self = Self {
        next: NIL,
        len: 0,
        entries: [Entry::EMPTY; CHUNK_ENTRIES],
    };
}

/// Chunks that always suffice for `entries` entries after a full
/// compaction: `entries / 8` (neighbouring chunks hold 16 together), one
/// partial chunk per non-empty list, and one to append to.
pub(crate) fn chunks_for(entries: usize) -> usize {
    entries / 8 + entries.min(LIST_COUNT) + 2
}

/// The next piece of work: a list and the tick at which it comes due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expiration {
    pub(crate) list: ListId,
    pub(crate) tick: u64,
}

/// Where compaction resumes: chunk `cur` of list `list`, after `prev`.
struct Cursor {
    list: usize,
    /// Whether `cur`/`prev` are positions in `list` (else: start at its head).
    started: bool,
    prev: u32,
    cur: u32,
}

/// Compaction work units: a chunk costs [`CHUNK_COST`], stepping over an
/// empty list costs 1.
const CHUNK_COST: usize = 32;

/// Every list, the chunk pool, the occupied-slot bitmaps and the
/// compaction cursor.
pub(crate) struct Lists {
    heads: [u32; LIST_COUNT],
    tails: [u32; LIST_COUNT],
    occupied: [u64; LEVELS],
    chunks: Vec<Chunk>,
    /// Head of the free chunk list, or [`NIL`].
    free: u32,
    /// Chunks on lists (or detached and being walked).
    in_use: usize,
    /// At this many chunks and none free, a full compaction runs before the
    /// pool grows.
    limit: usize,
    cursor: Cursor,
    /// Entries on the lists or in a batch being fired, tombstones
    /// included.
    entries: usize,
    /// `2 * tombstones - SLACK`: compaction is due while it exceeds
    /// `entries` (tombstones > live + SLACK). Kept in this form so that
    /// `cancel` and `insert` each update one counter.
    doubled: isize,
}

impl Lists {
    /// Lists with room for `prealloc` chunks before the pool allocates, and
    /// `limit` chunks before it compacts in full rather than grow.
    pub(crate) fn new(prealloc: usize, limit: usize) -> Self {
        Self {
            heads: [NIL; LIST_COUNT],
            tails: [NIL; LIST_COUNT],
            occupied: [0; LEVELS],
            chunks: Vec::with_capacity(prealloc),
            free: NIL,
            in_use: 0,
            limit,
            cursor: Cursor {
                list: 0,
                started: false,
                prev: NIL,
                cur: NIL,
            },
            entries: 0,
            doubled: -(SLACK as isize),
        }
    }

    /// Entries that name a live timer: timers armed.
    pub(crate) fn live(&self) -> usize {
        self.entries - self.tombstones()
    }

    /// Entries whose timer was cancelled.
    pub(crate) fn tombstones(&self) -> usize {
        // doubled + SLACK = 2 * tombstones, never negative.
        (self.doubled + SLACK as isize) as usize / 2
    }

    /// Whether tombstones outnumber live timers by more than [`SLACK`].
    #[inline(always)]
    pub(crate) fn compaction_due(&self) -> bool {
        self.doubled > self.entries as isize
    }

    /// Tombstones beyond live timers plus [`SLACK`] (0 unless compaction
    /// is due).
    pub(crate) fn excess(&self) -> usize {
        (self.doubled - self.entries as isize).max(0) as usize
    }

    /// A timer was armed: one more (live) entry.
    #[inline(always)]
    pub(crate) fn armed(&mut self) {
        self.entries += 1;
    }

    /// A timer was cancelled: its entry is a tombstone now.
    #[inline(always)]
    pub(crate) fn buried(&mut self) {
        self.doubled += 2;
    }

    /// A one-shot timer fired: its (live) entry is gone.
    #[inline(always)]
    pub(crate) fn fired(&mut self) {
        self.entries -= 1;
    }

    /// `n` tombstones were dropped.
    #[inline(always)]
    pub(crate) fn dropped(&mut self, n: usize) {
        self.entries -= n;
        self.doubled -= 2 * n as isize;
    }

    pub(crate) fn is_empty(&self, list: ListId) -> bool {
        self.heads[list.0 as usize] == NIL
    }

    /// Chunks in use and chunks in the pool (for tests of the bounds).
    #[cfg(test)]
    pub(crate) fn chunk_counts(&self) -> (usize, usize) {
        (self.in_use, self.chunks.len())
    }

    /// The pool's allocated capacity, in chunks (for tests).
    #[cfg(test)]
    pub(crate) fn pool_capacity(&self) -> usize {
        self.chunks.capacity()
    }

    /// Entries on the lists by the counter (for tests).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Entries on all lists, tombstones included (for tests).
    #[cfg(test)]
    pub(crate) fn entry_count(&self) -> usize {
        (0..LIST_COUNT)
            .map(|l| self.iter(ListId(l as u16)).count())
            .sum()
    }

    /// Appends `entry` to `list`.
    #[inline]
    pub(crate) fn push<T>(&mut self, nodes: &[Node<T>], list: ListId, entry: Entry) {
        let tail = self.tails[list.0 as usize];
        if tail != NIL {
            let chunk = &mut self.chunks[tail as usize];
            let len = chunk.len as usize;
            if len < CHUNK_ENTRIES {
                chunk.entries[len].set(entry);
                chunk.len += 1;
                return;
            }
        }
        self.push_chunk(nodes, list, entry);
    }

    /// Appends `entry` in a new chunk at the tail of `list`.
    #[inline(never)]
    fn push_chunk<T>(&mut self, nodes: &[Node<T>], list: ListId, entry: Entry) {
        let l = list.0 as usize;
        if self.free == NIL && self.chunks.len() >= self.limit && self.tombstones() > 0 {
            // Out of chunks: drop every tombstone before growing the pool.
            self.compact_all(nodes);
            let tail = self.tails[l];
            if tail != NIL {
                let chunk = &mut self.chunks[tail as usize];
                let len = chunk.len as usize;
                if len < CHUNK_ENTRIES {
                    chunk.entries[len] = entry;
                    chunk.len += 1;
                    return;
                }
            }
        }
        let new = self.alloc();
        let chunk = &mut self.chunks[new as usize];
        chunk.next = NIL;
        chunk.len = 1;
        chunk.entries[0] = entry;
        let tail = self.tails[l];
        if tail == NIL {
            self.heads[l] = new;
            if let Some(level) = list.level() {
                self.occupied[level] |= 1 << (l % SLOTS);
            }
        } else {
            self.chunks[tail as usize].next = new;
        }
        self.tails[l] = new;
    }

    /// A chunk from the free list, or a new one.
    fn alloc(&mut self) -> u32 {
        self.in_use += 1;
        if self.free != NIL {
            let chunk = self.free;
            self.free = self.chunks[chunk as usize].next;
            return chunk;
        }
        // 2^32 chunks would be 1 TiB of pool: indices stay below NIL.
        self.chunks.push(Chunk::EMPTY);
        (self.chunks.len() - 1) as u32
    }

    fn release(&mut self, chunk: u32) {
        self.chunks[chunk as usize].next = self.free;
        self.free = chunk;
        self.in_use -= 1;
    }

    /// Empties `list` in O(1) and returns its first chunk; the caller
    /// walks the chain with [`Lists::pop_chunk`].
    pub(crate) fn detach(&mut self, list: ListId) -> u32 {
        let l = list.0 as usize;
        let head = core::mem::replace(&mut self.heads[l], NIL);
        self.tails[l] = NIL;
        if let Some(level) = list.level() {
            self.occupied[level] &= !(1 << (l % SLOTS));
        }
        if self.cursor.list == l {
            // Its chunks are about to be freed: resume at the next list.
            self.cursor.list = (l + 1) % LIST_COUNT;
            self.cursor.started = false;
        }
        head
    }

    /// Copies detached chunk `chunk`'s entries to `out`, frees it, and
    /// returns `(entries copied, next chunk)`; starts loading the next
    /// chunk.
    #[inline]
    pub(crate) fn pop_chunk(
        &mut self,
        chunk: u32,
        out: &mut [Entry; CHUNK_ENTRIES],
    ) -> (usize, u32) {
        let c = &self.chunks[chunk as usize];
        let (len, next) = (c.len as usize, c.next);
        out[..len].copy_from_slice(&c.entries[..len]);
        if let Some(n) = self.chunks.get(next as usize) {
            prefetch_chunk(n);
        }
        self.release(chunk);
        (len, next)
    }

    /// Detaches `list` and appends all its entries to `out`.
    pub(crate) fn drain(&mut self, list: ListId, out: &mut Vec<Entry>) {
        let mut chunk = self.detach(list);
        while chunk != NIL {
            let c = &self.chunks[chunk as usize];
            let next = c.next;
            out.extend_from_slice(&c.entries[..c.len as usize]);
            if let Some(n) = self.chunks.get(next as usize) {
                prefetch_chunk(n);
            }
            self.release(chunk);
            chunk = next;
        }
    }

    /// The entries of `list`, in chain order.
    pub(crate) fn iter(&self, list: ListId) -> impl Iterator<Item = &Entry> {
        let mut chunk = self.heads[list.0 as usize];
        core::iter::from_fn(move || {
            if chunk == NIL {
                return None;
            }
            let c = &self.chunks[chunk as usize];
            chunk = c.next;
            Some(&c.entries[..c.len as usize])
        })
        .flatten()
    }

    /// Drops tombstones for about `chunks` chunks of work, resuming where
    /// the last call stopped (see the module doc).
    pub(crate) fn compact<T>(&mut self, nodes: &[Node<T>], chunks: usize) {
        let mut budget = chunks * CHUNK_COST;
        // Stepping over every list once without finding a chunk means all
        // lists are empty: stop.
        let mut hops = 0;
        while budget > 0 && hops <= LIST_COUNT {
            if self.compact_one(nodes) {
                budget = budget.saturating_sub(CHUNK_COST);
                hops = 0;
            } else {
                budget -= 1;
                hops += 1;
            }
        }
    }

    /// One full pass over every list: afterwards no list holds a tombstone.
    pub(crate) fn compact_all<T>(&mut self, nodes: &[Node<T>]) {
        self.cursor.list = 0;
        self.cursor.started = false;
        loop {
            self.compact_one(nodes);
            if self.cursor.list == 0 && !self.cursor.started {
                break;
            }
        }
    }

    /// Compacts the chunk at the cursor and moves past it (returns `true`),
    /// or moves to the next list (returns `false`).
    fn compact_one<T>(&mut self, nodes: &[Node<T>]) -> bool {
        let l = self.cursor.list;
        if !self.cursor.started {
            self.cursor.started = true;
            self.cursor.prev = NIL;
            self.cursor.cur = self.heads[l];
        }
        let cur = self.cursor.cur;
        if cur == NIL {
            self.cursor.list = (l + 1) % LIST_COUNT;
            self.cursor.started = false;
            return false;
        }
        // Drop the chunk's tombstones, its nodes' lines requested first.
        let chunk = &mut self.chunks[cur as usize];
        let len = chunk.len as usize;
        for e in &chunk.entries[..len] {
            prefetch(nodes, e.index);
        }
        let mut kept = 0;
        for r in 0..len {
            let e = chunk.entries[r];
            if e.is_live(nodes) {
                chunk.entries[kept] = e;
                kept += 1;
            }
        }
        chunk.len = kept as u32;
        let next = chunk.next;
        self.dropped(len - kept);
        let prev = self.cursor.prev;
        if prev != NIL && self.chunks[prev as usize].len as usize + kept <= CHUNK_ENTRIES {
            // Merge into the previous chunk and free this one.
            let (p, c) = two(&mut self.chunks, prev, cur);
            let at = p.len as usize;
            p.entries[at..at + kept].copy_from_slice(&c.entries[..kept]);
            p.len += kept as u32;
            p.next = next;
            if self.tails[l] == cur {
                self.tails[l] = prev;
            }
            self.release(cur);
        } else if kept == 0 {
            // An empty first chunk (`prev` is NIL, else it merged above).
            self.heads[l] = next;
            if next == NIL {
                self.tails[l] = NIL;
                if let Some(level) = ListId(l as u16).level() {
                    self.occupied[level] &= !(1 << (l % SLOTS));
                }
            }
            self.release(cur);
        } else {
            self.cursor.prev = cur;
        }
        self.cursor.cur = next;
        true
    }

    /// The earliest non-empty wheel slot, or the overflow list's next
    /// re-examination, for a wheel at tick `now`.
    pub(crate) fn next_expiration(&self, now: u64) -> Option<Expiration> {
        for (level, &occupied) in self.occupied.iter().enumerate() {
            let shift = level as u32 * SLOT_BITS;
            let now_slot = (now >> shift) as u32 & (SLOTS as u32 - 1);
            // Slots before `now`'s digit are empty (see `level.rs`), so
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
        if self.is_empty(ListId::OVERFLOW) {
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

/// Mutable references to two different chunks.
fn two(chunks: &mut [Chunk], a: u32, b: u32) -> (&mut Chunk, &mut Chunk) {
    let (a, b) = (a as usize, b as usize);
    debug_assert_ne!(a, b);
    if a < b {
        let (low, high) = chunks.split_at_mut(b);
        (&mut low[a], &mut high[0])
    } else {
        let (low, high) = chunks.split_at_mut(a);
        (&mut high[0], &mut low[b])
    }
}

/// Starts loading the four cache lines of `chunk` (a hint, see `prefetch`).
#[inline(always)]
fn prefetch_chunk(chunk: &Chunk) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let base = (chunk as *const Chunk).cast::<i8>();
        for line in 0..4 {
            // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has;
            // a prefetch never faults, and `base + 64 * line` stays inside
            // the 256-byte chunk.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(64 * line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = chunk;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::list_for;

    #[test]
    fn chunk_is_four_lines() {
        assert_eq!(core::mem::size_of::<Entry>(), 16);
        assert_eq!(core::mem::size_of::<Chunk>(), 256);
        assert_eq!(core::mem::size_of::<Node<u64>>(), 16);
    }

    #[test]
    fn next_expiration_is_slot_start() {
        let mut lists = Lists::new(0, usize::MAX);
        let nodes: Vec<Node<()>> = Vec::new();
        assert_eq!(lists.next_expiration(0), None);
        // A timer at tick 200 seen from tick 70 lives at level 1, slot 3,
        // whose first tick is 192.
        let list = list_for(70, 200);
        assert_eq!(list, ListId::slot(1, 3));
        lists.push(&nodes, list, Entry::EMPTY);
        assert_eq!(
            lists.next_expiration(70),
            Some(Expiration { list, tick: 192 })
        );
        let mut out = Vec::new();
        lists.drain(list, &mut out);
        assert_eq!(out, [Entry::EMPTY]);
        assert_eq!(lists.next_expiration(70), None);
        lists.push(&nodes, ListId::OVERFLOW, Entry::EMPTY);
        assert_eq!(lists.next_expiration(70).map(|e| e.tick), Some(1 << 36));
    }

    #[test]
    fn compaction_drops_tombstones_and_merges_chunks() {
        // 100 entries on one list, none of them naming a live node: all
        // tombstones. Compaction in small steps empties the list.
        let nodes: Vec<Node<()>> = Vec::new();
        let mut lists = Lists::new(0, usize::MAX);
        let list = ListId::slot(2, 5);
        for i in 0..100 {
            lists.push(
                &nodes,
                list,
                Entry {
                    deadline: i,
                    index: i as u32,
                    generation: 1,
                },
            );
        }
        for _ in 0..100 {
            lists.armed();
            lists.buried();
        }
        assert_eq!(lists.tombstones(), 100);
        assert_eq!(lists.chunk_counts().0, 7);
        while lists.tombstones() > 0 {
            lists.compact(&nodes, 1);
        }
        assert!(lists.is_empty(list));
        assert_eq!(lists.next_expiration(0), None);
        assert_eq!(lists.chunk_counts().0, 0);
    }
}
