//! [`Registry`]: registers event sources with a [`Poll`](crate::Poll)
//! (mio's type and method names).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::shared::Shared;
use crate::{Error, Interest, Result, Signal, Source, Token};

/// Registers [`Source`]s with a [`Poll`](crate::Poll).
///
/// Unlike mio's, this registry belongs to its core: it is `Send` but not
/// `Sync` and has no `try_clone` (another core registers by sending a message
/// to this core's reactor). Readiness, in contrast, is signalled from
/// anywhere through [`Signal`] and [`Waker`](crate::Waker).
///
/// ```
/// use percore_poll::{Interest, Poll, Registration, Token};
///
/// let poll = Poll::new().unwrap();
/// let registry = poll.registry();
/// let mut source = Registration::new();
/// registry.register(&mut source, Token(0), Interest::READABLE).unwrap();
/// registry.reregister(&mut source, Token(1), Interest::WRITABLE).unwrap();
/// registry.deregister(&mut source).unwrap();
/// ```
pub struct Registry {
    pub(crate) shared: Arc<Shared>,
    /// Freed slots, reused last-in first-out.
    free: RefCell<Vec<u32>>,
    /// Slots `next..capacity` were never used.
    next: Cell<u32>,
}

impl Registry {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            free: RefCell::new(Vec::new()),
            next: Cell::new(0),
        }
    }

    /// Registers `source` under `token`; its readiness is reported by `poll`
    /// from now on.
    ///
    /// ```
    /// # use percore_poll::{Error, Interest, Poll, Registration, Token};
    /// let poll = Poll::new().unwrap();
    /// let mut s = Registration::new();
    /// poll.registry().register(&mut s, Token(9), Interest::READABLE).unwrap();
    /// assert_eq!(
    ///     poll.registry().register(&mut s, Token(9), Interest::READABLE),
    ///     Err(Error::AlreadyRegistered)
    /// );
    /// ```
    pub fn register<S>(&self, source: &mut S, token: Token, interests: Interest) -> Result<()>
    where
        S: Source + ?Sized,
    {
        source.register(self, token, interests)
    }

    /// Changes the token and interests of a registered `source`. Readiness
    /// already signalled that the new interests cover is reported (as epoll
    /// re-arms on `EPOLL_CTL_MOD`).
    ///
    /// ```
    /// # use percore_poll::{Error, Interest, Poll, Registration, Token};
    /// let poll = Poll::new().unwrap();
    /// let mut s = Registration::new();
    /// assert_eq!(
    ///     poll.registry().reregister(&mut s, Token(0), Interest::READABLE),
    ///     Err(Error::NotRegistered)
    /// );
    /// ```
    pub fn reregister<S>(&self, source: &mut S, token: Token, interests: Interest) -> Result<()>
    where
        S: Source + ?Sized,
    {
        source.reregister(self, token, interests)
    }

    /// Removes `source`; no event is reported for it afterwards, including
    /// readiness queued before this call.
    ///
    /// ```
    /// # use percore_poll::{Interest, Poll, Registration, Token};
    /// let poll = Poll::new().unwrap();
    /// let mut s = Registration::new();
    /// poll.registry().register(&mut s, Token(0), Interest::READABLE).unwrap();
    /// poll.registry().deregister(&mut s).unwrap();
    /// ```
    pub fn deregister<S>(&self, source: &mut S) -> Result<()>
    where
        S: Source + ?Sized,
    {
        source.deregister(self)
    }

    /// Most registrations this registry holds at once.
    ///
    /// ```
    /// # use percore_poll::Poll;
    /// assert_eq!(Poll::with_capacity(100).unwrap().registry().capacity(), 100);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Takes a slot for a new registration.
    pub(crate) fn open(&self, token: Token, interests: Interest) -> Result<Signal> {
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                let next = self.next.get();
                if next as usize >= self.shared.capacity() {
                    return Err(Error::Full);
                }
                self.next.set(next + 1);
                next
            }
        };
        let generation = self.shared.open(slot, token, interests);
        Ok(Signal {
            shared: Arc::clone(&self.shared),
            slot,
            generation,
        })
    }

    pub(crate) fn modify(&self, signal: &Signal, token: Token, interests: Interest) -> Result<()> {
        self.check_owner(signal)?;
        self.shared
            .modify(signal.slot, signal.generation, token, interests)
    }

    pub(crate) fn close(&self, signal: &Signal) -> Result<()> {
        self.check_owner(signal)?;
        self.shared.close(signal.slot, signal.generation)?;
        self.free.borrow_mut().push(signal.slot);
        Ok(())
    }

    /// Returns a slot freed by a dropped waker (seen by `poll`).
    pub(crate) fn reclaim(&self, slot: u32) {
        self.free.borrow_mut().push(slot);
    }

    fn check_owner(&self, signal: &Signal) -> Result<()> {
        if Arc::ptr_eq(&self.shared, &signal.shared) {
            Ok(())
        } else {
            Err(Error::ForeignRegistry)
        }
    }
}

impl core::fmt::Debug for Registry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registry")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}
