//! [`CoreSet`]: a fixed-size bitmap of cores, used to answer "which halted
//! cores must be sent an IPI" after a broadcast or a flush, without
//! allocating.

use crate::id::CoreId;

/// The most cores a bus can connect (the size of a [`CoreSet`]).
pub const MAX_CORES: usize = 256;

const WORDS: usize = MAX_CORES / 64;

/// A set of cores, as a 256-bit bitmap (`Copy`, no allocation).
///
/// ```
/// use percore_proto::{CoreId, CoreSet};
/// let mut s = CoreSet::new();
/// s.insert(CoreId(3));
/// s.insert(CoreId(200));
/// assert!(s.contains(CoreId(3)));
/// assert_eq!(s.len(), 2);
/// assert_eq!(s.iter().collect::<Vec<_>>(), [CoreId(3), CoreId(200)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoreSet {
    bits: [u64; WORDS],
}

impl CoreSet {
    /// The empty set.
    ///
    /// ```
    /// use percore_proto::CoreSet;
    /// assert!(CoreSet::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        CoreSet { bits: [0; WORDS] }
    }

    /// Adds `core`; returns `false` (and does nothing) if it is not below
    /// [`MAX_CORES`].
    ///
    /// ```
    /// use percore_proto::{CoreId, CoreSet};
    /// let mut s = CoreSet::new();
    /// assert!(s.insert(CoreId(5)));
    /// assert!(!s.insert(CoreId(999)));
    /// ```
    pub fn insert(&mut self, core: CoreId) -> bool {
        let i = core.index();
        if i >= MAX_CORES {
            return false;
        }
        self.bits[i / 64] |= 1 << (i % 64);
        true
    }

    /// Whether `core` is in the set.
    ///
    /// ```
    /// use percore_proto::{CoreId, CoreSet};
    /// assert!(!CoreSet::new().contains(CoreId(1)));
    /// ```
    pub fn contains(&self, core: CoreId) -> bool {
        let i = core.index();
        i < MAX_CORES && self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    /// Number of cores in the set.
    ///
    /// ```
    /// use percore_proto::{CoreId, CoreSet};
    /// let mut s = CoreSet::new();
    /// s.insert(CoreId(1));
    /// assert_eq!(s.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    ///
    /// ```
    /// use percore_proto::CoreSet;
    /// assert!(CoreSet::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// Adds every core of `other`.
    ///
    /// ```
    /// use percore_proto::{CoreId, CoreSet};
    /// let (mut a, mut b) = (CoreSet::new(), CoreSet::new());
    /// a.insert(CoreId(1));
    /// b.insert(CoreId(2));
    /// a.extend_from(&b);
    /// assert_eq!(a.len(), 2);
    /// ```
    pub fn extend_from(&mut self, other: &CoreSet) {
        for (w, o) in self.bits.iter_mut().zip(other.bits) {
            *w |= o;
        }
    }

    /// The cores in ascending order.
    ///
    /// ```
    /// use percore_proto::{CoreId, CoreSet};
    /// let mut s = CoreSet::new();
    /// s.insert(CoreId(64));
    /// assert_eq!(s.iter().next(), Some(CoreId(64)));
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = CoreId> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            (0..64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| CoreId((w * 64 + b) as u16))
        })
    }
}
