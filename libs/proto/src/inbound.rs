//! The receiving side of an endpoint: one SPSC ring and one broadcast
//! subscription per peer, drained fairly.
//!
//! Fairness: sources are visited round-robin, taking at most [`QUANTUM`]
//! messages from a source per visit, and the next `drain` resumes at the
//! source after the last one visited. So a peer that floods its ring gets at
//! most `QUANTUM` messages ahead of any other peer with work waiting, and
//! even `drain(1, ..)` serves peers in turn. Within one source, messages
//! come out in the order they were sent (the rings are FIFO). There is no
//! order between a peer's direct ring and its broadcast stream.

use alloc::vec::Vec;

use percore_ring::spmc::broadcast::Subscriber;
use percore_ring::spsc::Consumer;

use crate::id::CoreId;
use crate::message::Message;

/// The most messages taken from one source per round-robin visit.
pub(crate) const QUANTUM: usize = 32;

/// One place messages arrive from.
pub(crate) enum Source {
    /// The peer's ring towards this core.
    Ring(Consumer<Message>),
    /// This core's subscription to the peer's broadcasts.
    Broadcast(Subscriber<Message>),
}

impl Source {
    /// Hands up to `max` messages to `f` (read in place, then released).
    fn take(&mut self, from: CoreId, max: usize, f: &mut impl FnMut(CoreId, Message)) -> usize {
        match self {
            Source::Ring(rx) => {
                let n = rx.slots().min(max);
                if n == 0 {
                    return 0;
                }
                let Ok(chunk) = rx.read_chunk(n) else {
                    return 0;
                };
                let (a, b) = chunk.as_slices();
                a.iter().chain(b).for_each(|&m| f(from, m));
                chunk.commit_all();
                n
            }
            Source::Broadcast(sub) => {
                let chunk = sub.read_available();
                let n = chunk.len().min(max);
                if n == 0 {
                    return 0;
                }
                let (a, b) = chunk.as_slices();
                a.iter().chain(b).take(n).for_each(|&m| f(from, m));
                chunk.release_n(n);
                n
            }
        }
    }

    /// How many messages are waiting in this source right now.
    fn depth(&mut self) -> usize {
        match self {
            Source::Ring(rx) => rx.slots(),
            Source::Broadcast(sub) => sub.read_available().len(),
        }
    }

    /// Whether at least one message is waiting (loads the producer's
    /// cursor unless a cached one already shows a message).
    fn has_message(&mut self) -> bool {
        match self {
            Source::Ring(rx) => !rx.is_empty(),
            Source::Broadcast(sub) => !sub.read_available().is_empty(),
        }
    }
}

/// Every source of one core, with the round-robin position.
pub(crate) struct Inbound {
    sources: Vec<(CoreId, Source)>,
    next: usize,
}

impl Inbound {
    /// The sources, in the order they are visited.
    pub(crate) fn new(sources: Vec<(CoreId, Source)>) -> Self {
        Inbound { sources, next: 0 }
    }

    /// Takes up to `max` messages, round-robin (see the module doc).
    pub(crate) fn drain(&mut self, max: usize, f: &mut impl FnMut(CoreId, Message)) -> usize {
        let n = self.sources.len();
        let (mut taken, mut idle, mut i) = (0, 0, self.next);
        // Stop when the budget is spent or a whole lap found nothing.
        while taken < max && idle < n {
            let (from, source) = &mut self.sources[i];
            let got = source.take(*from, QUANTUM.min(max - taken), f);
            taken += got;
            idle = if got == 0 { idle + 1 } else { 0 };
            i = (i + 1) % n;
        }
        self.next = i;
        taken
    }

    /// Messages waiting over all sources (the inbound ring depth).
    pub(crate) fn depth(&mut self) -> usize {
        self.sources.iter_mut().map(|(_, s)| s.depth()).sum()
    }

    /// Whether any source has a message waiting.
    pub(crate) fn has_message(&mut self) -> bool {
        self.sources.iter_mut().any(|(_, s)| s.has_message())
    }
}
