//! The fan-in MPSC: one SPSC ring per producer, drained by a [`FanIn`] that
//! selects among its inputs either fairly (round-robin) or by priority
//! (lowest input index first). It is what an intercore inbox is: one SPSC
//! ring per peer core, so producers on different cores never share a line.
//!
//! ```
//! use percore_ring::mpsc::fanin::{self, InputId, Policy};
//! let (mut txs, mut inbox) = fanin::channel::<&str>(2, 4, Policy::Fair).unwrap();
//! txs[1].try_push("from 1").unwrap();
//! txs[0].try_push("from 0").unwrap();
//! assert_eq!(inbox.select(), Some((InputId(0), "from 0")));
//! assert_eq!(inbox.select(), Some((InputId(1), "from 1")));
//! assert_eq!(inbox.select(), None);
//! ```

use alloc::vec::Vec;

use crate::error::{CapacityError, PopError};
use crate::queue::Receiver;
use crate::spsc;

/// Index of one input of a [`FanIn`] (for an inbox: the peer core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InputId(pub usize);

/// How a [`FanIn`] picks the input to pop from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Round-robin: start after the input popped last, so a busy producer
    /// cannot starve the others.
    Fair,
    /// Lowest [`InputId`] first: input 0 always overtakes the rest.
    Priority,
}

/// A consumer over several SPSC rings.
pub struct FanIn<T> {
    inputs: Vec<spsc::Consumer<T>>,
    policy: Policy,
    /// Where the next fair scan starts.
    next: usize,
}

/// Creates `producers` SPSC rings of `capacity` slots each and the [`FanIn`]
/// that drains them. The producer at index `i` feeds [`InputId`]`(i)`.
///
/// ```
/// use percore_ring::mpsc::fanin::{self, Policy};
/// let (txs, inbox) = fanin::channel::<u64>(3, 16, Policy::Fair).unwrap();
/// assert_eq!((txs.len(), inbox.inputs()), (3, 3));
/// ```
pub fn channel<T>(
    producers: usize,
    capacity: usize,
    policy: Policy,
) -> Result<(Vec<spsc::Producer<T>>, FanIn<T>), CapacityError> {
    if producers == 0 {
        return Err(CapacityError::Zero);
    }
    let mut txs = Vec::with_capacity(producers);
    let mut rxs = Vec::with_capacity(producers);
    for _ in 0..producers {
        let (tx, rx) = spsc::channel(capacity)?;
        txs.push(tx);
        rxs.push(rx);
    }
    Ok((txs, FanIn::new(rxs, policy)))
}

impl<T> FanIn<T> {
    /// A fan-in over existing SPSC consumers (input `i` is `inputs[i]`).
    ///
    /// ```
    /// use percore_ring::{spsc, mpsc::fanin::{FanIn, Policy}};
    /// let (mut tx, rx) = spsc::channel(4).unwrap();
    /// let mut inbox = FanIn::new(vec![rx], Policy::Priority);
    /// tx.try_push(1).unwrap();
    /// assert_eq!(inbox.try_pop(), Ok(1));
    /// ```
    pub fn new(inputs: Vec<spsc::Consumer<T>>, policy: Policy) -> Self {
        FanIn {
            inputs,
            policy,
            next: 0,
        }
    }

    /// Pops one message according to the policy, with the input it came from.
    pub fn select(&mut self) -> Option<(InputId, T)> {
        let n = self.inputs.len();
        let start = match self.policy {
            Policy::Fair => self.next,
            Policy::Priority => 0,
        };
        for k in 0..n {
            // `start < n` and `k < n`, so one conditional subtraction
            // replaces the `%`.
            let mut i = start + k;
            if i >= n {
                i -= n;
            }
            if let Ok(v) = self.inputs[i].try_pop() {
                self.next = if i + 1 == n { 0 } else { i + 1 };
                return Some((InputId(i), v));
            }
        }
        None
    }

    /// Pops one message according to the policy.
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        self.select().map(|(_, v)| v).ok_or(PopError::Empty)
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.inputs.len()
    }

    /// The selection policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Direct access to one input (e.g. to drain it with `read_chunk`).
    ///
    /// ```
    /// use percore_ring::mpsc::fanin::{self, InputId, Policy};
    /// let (mut txs, mut inbox) = fanin::channel::<u8>(2, 4, Policy::Fair).unwrap();
    /// txs[1].try_push(5).unwrap();
    /// assert_eq!(inbox.input(InputId(1)).map(|rx| rx.slots()), Some(1));
    /// assert!(inbox.input(InputId(2)).is_none());
    /// ```
    pub fn input(&mut self, id: InputId) -> Option<&mut spsc::Consumer<T>> {
        self.inputs.get_mut(id.0)
    }
}

impl<T> Receiver<T> for FanIn<T> {
    #[inline]
    fn try_pop(&mut self) -> Result<T, PopError> {
        FanIn::try_pop(self)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn fair_select_round_robins() {
        let (mut txs, mut inbox) = channel::<u32>(3, 4, Policy::Fair).unwrap();
        for (p, tx) in txs.iter_mut().enumerate() {
            tx.try_push(p as u32 * 10).unwrap();
            tx.try_push(p as u32 * 10 + 1).unwrap();
        }
        let order: alloc::vec::Vec<_> = core::iter::from_fn(|| inbox.try_pop().ok()).collect();
        assert_eq!(order, vec![0, 10, 20, 1, 11, 21]);
    }

    #[test]
    fn priority_select_prefers_low_ids() {
        let (mut txs, mut inbox) = channel::<u32>(2, 4, Policy::Priority).unwrap();
        txs[1].try_push(1).unwrap();
        txs[0].try_push(0).unwrap();
        txs[0].try_push(2).unwrap();
        assert_eq!(inbox.select(), Some((InputId(0), 0)));
        assert_eq!(inbox.select(), Some((InputId(0), 2)));
        assert_eq!(inbox.select(), Some((InputId(1), 1)));
        assert_eq!(inbox.try_pop(), Err(PopError::Empty));
        assert_eq!(inbox.policy(), Policy::Priority);
    }

    #[test]
    fn zero_producers_is_an_error() {
        assert_eq!(
            channel::<u8>(0, 4, Policy::Fair).err(),
            Some(CapacityError::Zero)
        );
    }
}
