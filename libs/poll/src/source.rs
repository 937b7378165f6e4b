//! [`Source`]: what can be registered (mio's trait, same signatures), and
//! [`Registration`], the primitive source every other one is built on.

use alloc::boxed::Box;

use crate::{Error, Interest, Registry, Result, Signal, Token};

/// An event source that can be registered with a [`Registry`] (mio's
/// `event::Source`).
///
/// Implementations embed a [`Registration`] and delegate to it, the way mio
/// sources delegate to `SourceFd`; the device side keeps a clone of the
/// registration's [`Signal`] and calls [`Signal::set`] when readiness
/// changes (from its interrupt handler, another core, a timer callback).
/// Like epoll, a source that is already ready when registered should signal
/// right after registering.
///
/// ```
/// use percore_poll::{Interest, Ready, Registration, Registry, Result, Source, Token};
///
/// /// A virtio queue, say: its interrupt handler signals READABLE.
/// struct VirtQueue {
///     registration: Registration,
/// }
///
/// impl Source for VirtQueue {
///     fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
///         self.registration.register(registry, token, interests)
///     }
///     fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
///         self.registration.reregister(registry, token, interests)
///     }
///     fn deregister(&mut self, registry: &Registry) -> Result<()> {
///         self.registration.deregister(registry)
///     }
/// }
///
/// let poll = percore_poll::Poll::new().unwrap();
/// let mut vq = VirtQueue { registration: Registration::new() };
/// poll.registry().register(&mut vq, Token(1), Interest::READABLE).unwrap();
/// let irq_side = vq.registration.signal().unwrap().clone();
/// irq_side.set(Ready::READABLE).unwrap();
/// ```
pub trait Source {
    /// Registers `self` under `token` with `interests`.
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()>;

    /// Changes token and interests of a registered source.
    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()>;

    /// Removes the registration; no event for it is reported afterwards.
    fn deregister(&mut self, registry: &Registry) -> Result<()>;
}

impl<T: Source + ?Sized> Source for &mut T {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        (**self).register(registry, token, interests)
    }
    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        (**self).reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &Registry) -> Result<()> {
        (**self).deregister(registry)
    }
}

impl<T: Source + ?Sized> Source for Box<T> {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        (**self).register(registry, token, interests)
    }
    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        (**self).reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &Registry) -> Result<()> {
        (**self).deregister(registry)
    }
}

/// The primitive [`Source`]: a slot in a `Poll` plus the [`Signal`] that
/// feeds it. Dropping a registered `Registration` deregisters it, like closing
/// a mio socket: from any core, lock-free; the `Poll` reclaims the slot during
/// its next `poll`.
///
/// ```
/// use percore_poll::{Error, Interest, Poll, Registration, Token};
///
/// let poll = Poll::new().unwrap();
/// let mut r = Registration::new();
/// assert!(r.signal().is_none());
/// poll.registry().register(&mut r, Token(0), Interest::READABLE).unwrap();
/// assert!(r.signal().is_some());
/// poll.registry().deregister(&mut r).unwrap();
/// assert_eq!(poll.registry().deregister(&mut r), Err(Error::NotRegistered));
///
/// // Dropping a registered one frees its slot at the next poll.
/// let mut poll = Poll::with_capacity(1).unwrap();
/// let mut events = percore_poll::Events::with_capacity(1);
/// let mut r = Registration::new();
/// poll.registry().register(&mut r, Token(0), Interest::READABLE).unwrap();
/// drop(r);
/// poll.poll(&mut events, Some(std::time::Duration::ZERO)).unwrap();
/// assert!(events.is_empty());
/// let mut again = Registration::new();
/// poll.registry().register(&mut again, Token(1), Interest::READABLE).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct Registration {
    signal: Option<Signal>,
}

impl Registration {
    /// An unregistered source.
    pub const fn new() -> Self {
        Self { signal: None }
    }

    /// The readiness handle while registered.
    pub fn signal(&self) -> Option<&Signal> {
        self.signal.as_ref()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(signal) = self.signal.take() {
            signal.shared.release(signal.slot, signal.generation);
        }
    }
}

impl Source for Registration {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        if self.signal.is_some() {
            return Err(Error::AlreadyRegistered);
        }
        self.signal = Some(registry.open(token, interests)?);
        Ok(())
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        let signal = self.signal.as_ref().ok_or(Error::NotRegistered)?;
        registry.modify(signal, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> Result<()> {
        let signal = self.signal.as_ref().ok_or(Error::NotRegistered)?;
        registry.close(signal)?;
        self.signal = None;
        Ok(())
    }
}
