//! Topics: zero-copy publish from one task to many subscribers on any cores,
//! on a Disruptor-style broadcast ring (`percore_ring::spmc::broadcast`).
//!
//! A topic lives on the core that creates it (its *publisher core*),
//! registered by number in that core's table. The publisher writes each
//! value once into a ring slot; every subscriber reads it in place through
//! its own cursor. A full ring (the slowest subscriber a whole ring behind)
//! is backpressure: `try_publish` hands the value back, `publish().await`
//! waits until a subscriber releases a slot. Nothing is dropped.
//!
//! Joining goes through the publisher core, because only the ring's single
//! writer may add a cursor (a new cursor starts at the write position, which
//! is what makes joining race-free). From another core, `subscribe` sends
//! the protocol's `Cursor { reply }` message; the publisher core adds the
//! cursor and hands the new [`Subscriber`] back through `reply` (a
//! `reactor::oneshot`). On the publisher core itself the same is done
//! directly. Leaving needs no message: dropping a `Subscriber` frees its
//! cursor-table entry in the ring, which only relaxes the publisher's gate.
//!
//! Wake-ups: subscribers waiting in `recv` wait in a `WaitList`, a publisher
//! waiting for room in a `WakerSlot` (`percore-wake`): the hot path takes no
//! lock while nobody waits, and no wake-up is lost.
//!
//! A [`Subscriber`] is a `futures_core::Stream` (it ends when the topic
//! closes and it has read everything), a [`Publisher`] a
//! `futures_sink::Sink` whose readiness is the ring's room.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::sync::Arc;
use core::any::Any;
use core::convert::Infallible;
use core::future::poll_fn;
use core::mem::MaybeUninit;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;

use percore_proto::{Handle, Message};
use percore_ring::spmc::broadcast;
use percore_wake::{WaitList, WakerSlot};

/// What [`Publisher::try_publish`] returns on a full topic (the value).
pub use percore_ring::PushError;

use crate::arch::{CoreId, cpu};
use crate::reactor::oneshot::{self, Sender};
use crate::reactor::{self, PerCore};

/// Subscribers one topic can have at a time (the ring's cursor table).
pub const MAX_SUBSCRIBERS: usize = 64;
/// The largest ring a topic may ask for, in slots (keeps a bad request from
/// exhausting the heap).
pub const MAX_CAPACITY: usize = 1 << 16;

/// Why a topic could not be created or joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicError {
    /// The number is already taken on the creating core.
    NumberInUse,
    /// A capacity of zero or above [`MAX_CAPACITY`].
    BadCapacity,
    /// No topic by that number on that core (or no such core).
    NoSuchTopic,
    /// The topic already has [`MAX_SUBSCRIBERS`] subscribers.
    TooManySubscribers,
    /// The topic carries values of another type.
    WrongType,
    /// Called on a core without a reactor.
    NoReactor,
    /// The publisher's core has stopped (see `reactor::stop`).
    PublisherStopped,
}

/// A core's topics by number, type-erased.
type Table = spin::Mutex<BTreeMap<u32, Arc<dyn TopicSlot>>>;

static TOPICS: PerCore<Table> = PerCore::new();

/// A topic as the publisher core's table sees it: it can add a subscriber
/// without knowing the value type; the subscribing side downcasts.
trait TopicSlot: Send + Sync {
    /// A new `Subscriber<T>`, boxed.
    fn subscribe(self: Arc<Self>) -> Answer;
}

/// What the publisher core answers to a join.
type Answer = Result<Box<dyn Any + Send>, TopicError>;

/// Shared by the publisher, the subscribers and the publisher core's table.
struct Topic<T> {
    /// Slots are `MaybeUninit` so that `T` needs no `Default` (the ring
    /// fills every slot at creation); a subscriber only reads slots that
    /// `try_publish` wrote. The publishing task and the publisher core's
    /// reactor (adding cursors) both take this lock. They normally run on the
    /// same core, one after the other (a reactor handles messages between
    /// polls, and no interrupt handler takes it), so it is uncontended; it
    /// keeps things sound when the `Publisher` handle moves to another core.
    ring: spin::Mutex<broadcast::Publisher<MaybeUninit<T>>>,
    /// Set (under `ring`) when the publisher is dropped.
    closed: AtomicBool,
    /// Subscribers waiting in `recv`.
    readers: WaitList,
    /// The publisher waiting for room.
    writer: WakerSlot,
}

impl<T: Copy + Send + Sync + 'static> TopicSlot for Topic<T> {
    fn subscribe(self: Arc<Self>) -> Answer {
        let mut ring = self.ring.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(TopicError::NoSuchTopic);
        }
        let sub = ring
            .subscribe()
            .map_err(|_| TopicError::TooManySubscribers)?;
        drop(ring);
        Ok(Box::new(Subscriber {
            ring: Some(sub),
            topic: self,
        }))
    }
}

/// The single writer of a topic. Dropping it closes the topic: subscribers
/// read what is left, then `recv` returns `None`; the number becomes free.
pub struct Publisher<T> {
    topic: Arc<Topic<T>>,
    home: CoreId,
    number: u32,
    /// A value the `Sink` side accepted and could not publish yet.
    pending: Option<T>,
}

// No field is ever pinned.
impl<T> Unpin for Publisher<T> {}

/// One reader of a topic; it sees every value published after it joined.
/// Dropping it leaves the topic (the publisher no longer waits for it).
pub struct Subscriber<T> {
    /// `None` only during drop (the cursor is freed before waking the writer).
    ring: Option<broadcast::Subscriber<MaybeUninit<T>>>,
    topic: Arc<Topic<T>>,
}

/// Creates topic `number` on this core, with a ring of `capacity` values
/// (rounded up to a power of two). Values are copied into the ring once and
/// read in place by every subscriber.
pub fn create<T: Copy + Send + Sync + 'static>(
    number: u32,
    capacity: usize,
) -> Result<Publisher<T>, TopicError> {
    let home = reactor::reactor(cpu::core_id()).ok_or(TopicError::NoReactor)?;
    if capacity > MAX_CAPACITY {
        return Err(TopicError::BadCapacity);
    }
    let ring = broadcast::create_with(capacity, MAX_SUBSCRIBERS, MaybeUninit::uninit)
        .map_err(|_| TopicError::BadCapacity)?;
    let topic = Arc::new(Topic {
        ring: spin::Mutex::new(ring),
        closed: AtomicBool::new(false),
        readers: WaitList::new(),
        writer: WakerSlot::new(),
    });
    let table = TOPICS.get(home.core()).ok_or(TopicError::NoReactor)?;
    match table.lock().entry(number) {
        Entry::Occupied(_) => return Err(TopicError::NumberInUse),
        Entry::Vacant(entry) => entry.insert(topic.clone()),
    };
    home.stats.topics.fetch_add(1, Ordering::Relaxed);
    Ok(Publisher {
        topic,
        home: home.core(),
        number,
        pending: None,
    })
}

/// Joins topic `number` of core `publisher` (this core or another). The new
/// subscriber sees every value published after the publisher core added it.
pub async fn subscribe<T: Copy + Send + Sync + 'static>(
    publisher: CoreId,
    number: u32,
) -> Result<Subscriber<T>, TopicError> {
    let here = reactor::reactor(cpu::core_id()).ok_or(TopicError::NoReactor)?;
    let home = reactor::reactor(publisher).ok_or(TopicError::NoSuchTopic)?;
    if home.is_stopped() {
        return Err(TopicError::PublisherStopped);
    }
    let answer = if home.core() == here.core() {
        join(publisher, number)
    } else {
        let (reply, answer) = oneshot::oneshot::<Answer>();
        here.send(
            publisher,
            Message::Cursor {
                publisher,
                topic: number,
                reply: Handle::new(reply),
            },
        );
        // No answer at all only if the publisher core dropped the request.
        answer.await.unwrap_or(Err(TopicError::PublisherStopped))
    };
    // A wrong type drops the new subscriber here, which frees its cursor.
    answer?
        .downcast::<Subscriber<T>>()
        .map(|sub| *sub)
        .map_err(|_| TopicError::WrongType)
}

/// Adds a subscriber to topic `number` of core `home` (run on `home`).
fn join(home: CoreId, number: u32) -> Answer {
    // Clone out of the table first: `subscribe` takes the ring lock, which
    // is never taken while holding the table's.
    let slot = TOPICS
        .get(home)
        .and_then(|t| t.lock().get(&number).cloned());
    slot.ok_or(TopicError::NoSuchTopic)?.subscribe()
}

/// A join request from another core (the protocol's `Cursor` message).
pub(super) fn on_message(_from: CoreId, message: Message) {
    let Message::Cursor {
        publisher,
        topic,
        reply,
    } = message
    else {
        return;
    };
    // SAFETY: `reply` was packed by `subscribe` from a `Sender<Answer>`, and
    // each message is received once.
    let reply: Sender<Answer> = unsafe { reply.take() };
    let answer = if publisher == cpu::core_id() {
        join(publisher, topic)
    } else {
        // Misrouted: topics are only known on their own core.
        Err(TopicError::NoSuchTopic)
    };
    reply.send(answer);
}

impl<T: Copy> Publisher<T> {
    /// Publishes `value` to every current subscriber, or hands it back if
    /// the slowest one is a whole ring behind.
    pub fn try_publish(&mut self, value: T) -> Result<(), PushError<T>> {
        let published = self.topic.ring.lock().try_publish(MaybeUninit::new(value));
        match published {
            Ok(()) => {
                self.topic.readers.wake_all();
                Ok(())
            }
            Err(PushError::Full(_)) => Err(PushError::Full(value)),
        }
    }

    /// Publishes `value`, waiting while the ring is full (until a subscriber
    /// reads or leaves).
    pub async fn publish(&mut self, value: T) {
        poll_fn(|cx| self.poll_publish(cx, value)).await
    }

    fn poll_publish(&mut self, cx: &mut Context<'_>, value: T) -> Poll<()> {
        if self.try_publish(value).is_ok() {
            return Poll::Ready(());
        }
        self.topic.writer.register(cx.waker());
        // Re-try after registering: a slot freed in between is not missed.
        match self.try_publish(value) {
            Ok(()) => Poll::Ready(()),
            Err(_) => Poll::Pending,
        }
    }

    /// Publishes the value the sink side holds back, if any.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        let Some(value) = self.pending else {
            return Poll::Ready(Ok(()));
        };
        let published = self.poll_publish(cx, value);
        if published.is_ready() {
            self.pending = None;
        }
        published.map(Ok)
    }
}

/// A sink with the ring's backpressure: ready once the value accepted
/// before is published (at most one is held back). Closing publishes it;
/// the topic itself closes when the publisher is dropped.
impl<T: Copy> Sink<T> for Publisher<T> {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Infallible> {
        let this = self.get_mut();
        debug_assert!(this.pending.is_none(), "start_send without poll_ready");
        this.pending = Some(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.get_mut().poll_pending(cx)
    }
}

impl<T> Publisher<T> {
    /// Number of current subscribers (a snapshot).
    pub fn subscribers(&self) -> usize {
        self.topic.ring.lock().subscribers()
    }

    /// The core this topic lives on and its number there.
    pub fn address(&self) -> (CoreId, u32) {
        (self.home, self.number)
    }
}

impl<T> Drop for Publisher<T> {
    fn drop(&mut self) {
        if self.pending.is_some() {
            // The Sink contract: values are only sure to go out once flushed.
            log::warn!(
                "topic {}: a publisher dropped unflushed; one value lost",
                self.number
            );
        }
        // Under the ring lock, so no join can succeed after this.
        {
            let _ring = self.topic.ring.lock();
            self.topic.closed.store(true, Ordering::Release);
        }
        if let (Some(home), Some(table)) = (reactor::reactor(self.home), TOPICS.get(self.home)) {
            let mut table = table.lock();
            // Remove our own entry only (compare the data pointers).
            let ours = table.get(&self.number).is_some_and(|slot| {
                Arc::as_ptr(slot).cast::<()>() == Arc::as_ptr(&self.topic).cast::<()>()
            });
            if ours {
                table.remove(&self.number);
                home.stats.topics.fetch_sub(1, Ordering::Relaxed);
            }
        }
        // Waiting subscribers learn the topic is closed (they re-check
        // `closed` after registering).
        self.topic.readers.wake_all();
    }
}

impl<T: Copy> Subscriber<T> {
    /// Copies out the next value, if one is ready.
    pub fn try_recv(&mut self) -> Option<T> {
        self.try_recv_with(|value| *value)
    }

    /// Hands the next value to `f` in place, in its ring slot (zero copy:
    /// every subscriber reads the one slot the publisher wrote), then moves
    /// past it. `None` if no value is ready.
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.take_next(&mut Some(f))
    }

    /// The next value, waiting for one; `None` once the publisher is gone
    /// and everything published has been read.
    pub async fn recv(&mut self) -> Option<T> {
        self.recv_with(|value| *value).await
    }

    /// Like [`recv`](Self::recv), but hands the value to `f` in place.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let mut f = Some(f);
        poll_fn(|cx| self.poll_recv_with(cx, &mut f)).await
    }

    /// One poll of [`recv_with`](Self::recv_with) (`f` is taken only when a
    /// value is ready): the stream's step.
    fn poll_recv_with<R, F: FnOnce(&T) -> R>(
        &mut self,
        cx: &mut Context<'_>,
        f: &mut Option<F>,
    ) -> Poll<Option<R>> {
        if let Some(value) = self.take_next(f) {
            return Poll::Ready(Some(value));
        }
        if self.topic.closed.load(Ordering::Acquire) {
            return Poll::Ready(self.take_next(f));
        }
        self.topic.readers.register(cx.waker());
        // Re-check after registering: a value published, or a close, in
        // between is not missed.
        match self.take_next(f) {
            Some(value) => Poll::Ready(Some(value)),
            None if self.topic.closed.load(Ordering::Acquire) => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// Calls `f` (taken out of its option only when a value is ready) on
    /// the next value in place and moves past it.
    fn take_next<R, F: FnOnce(&T) -> R>(&mut self, f: &mut Option<F>) -> Option<R> {
        let chunk = self.ring.as_mut()?.read_chunk(1).ok()?;
        let (first, second) = chunk.as_slices();
        let slot = first.first().or(second.first())?;
        let f = f.take()?;
        // SAFETY: a subscriber reads only positions below `published`, and
        // every such position was written by `try_publish` with an
        // initialised value (the ring is not reachable otherwise).
        let result = f(unsafe { slot.assume_init_ref() });
        chunk.release();
        // A slot freed: a publisher waiting for room may go on.
        self.topic.writer.wake();
        Some(result)
    }
}

/// Every value published after joining, copied out in order; ends once the
/// topic is closed and everything was read.
impl<T: Copy> Stream for Subscriber<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut()
            .poll_recv_with(cx, &mut Some(|value: &T| *value))
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        drop(self.ring.take());
        // A publisher may have been waiting for this subscriber alone.
        self.topic.writer.wake();
    }
}
