//! One request queue of the block device: its split virtqueue, its request
//! slots and everything they need in DMA memory, preallocated once.
//!
//! A *slot* is one request in flight: a 16-byte request header, a status
//! byte and a [`CHUNK`]-byte bounce buffer, all at fixed places of the
//! queue's [`DmaBuffer`]. A request takes a free slot (or waits for one:
//! backpressure), copies its data into the bounce buffer (writes), adds
//! one descriptor chain `header, data, status` and rings the doorbell (now,
//! or at the next drain: [`Kick`]), then waits on the slot's [`WakerSlot`].
//! The queue's completion task (on its owner core) takes used entries off
//! the ring, records each slot's status and wakes its waiter, who copies
//! the data out (reads) and frees the slot.
//!
//! A waiter may go away while its request is in flight (its future is
//! dropped): the slot is then marked abandoned and the completion frees
//! it, so the device never writes into a slot that was handed out again.
//!
//! Memory of one queue of 128 entries with [`SLOTS`] = 32: one page for
//! the rings (3 344 bytes), the headers (512) and the status bytes (32),
//! plus 32 x 16 KiB of bounce buffers: 516 KiB (528 384 bytes) of DMA
//! memory; on the heap, the virtqueue's descriptor bookkeeping (10 bytes
//! per entry), the head-to-slot map (1 byte per entry) and the 32 slots
//! (a waker each): under 3 KiB. Nothing is allocated per request.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};
use core::task::{Context, Poll};

use percore_virtqueue::{DeviceError, DmaRegion, Layout, Segment, Virtqueue};
use percore_wake::{WaitList, WakerSlot};

use super::super::slots::SlotSet;
use super::super::transport::QueueNotify;
use crate::arch::CoreId;
use crate::mem::MemoryError;
use crate::mem::dma::DmaBuffer;
use crate::reactor::readiness::SourceId;

/// Requests in flight per queue (each takes 3 descriptors).
pub const SLOTS: usize = 32;
/// Bytes of one slot's bounce buffer: the most one request moves.
pub const CHUNK: usize = 16 * 1024;
/// The queue size asked of the device (fewer if it offers fewer).
pub const QUEUE_SIZE: u16 = 128;
/// virtio-blk request header: type, reserved, sector (5.2.6).
const HEADER: usize = 16;
/// A slot's result once the device is gone (see [`Queue::fail_all`]).
pub const RESULT_FAILED: u16 = 0x100;

/// Slot states.
const FREE: u8 = 0;
const IN_FLIGHT: u8 = 1;
const DONE: u8 = 2;
const ABANDONED: u8 = 3;
/// `slot_of` entry for a descriptor that heads no request.
const NO_SLOT: u8 = u8::MAX;

struct Slot {
    state: AtomicU8,
    /// The device's status byte, or [`RESULT_FAILED`].
    result: AtomicU16,
    waker: WakerSlot,
}

/// What only one core at a time may touch: the virtqueue and its doorbell.
struct Ring {
    queue: Virtqueue<DmaRegion>,
    /// The doorbell, once the transport set the queue up.
    notify: Option<QueueNotify>,
    /// The slot of the request each head descriptor starts.
    slot_of: Vec<u8>,
    /// Set when the device is gone: nothing more is added.
    dead: bool,
    /// Requests were added without ringing the doorbell (see
    /// [`Queue::submit`]): the next [`Queue::drain`] rings it.
    deferred: bool,
}

/// Counters of one queue, readable from any core.
#[derive(Default)]
pub struct QueueStats {
    pub submitted: AtomicU64,
    pub completed: AtomicU64,
    /// Requests that ended in an error (device status or a failed device).
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    /// Interrupts taken for this queue, and how many of them arrived on
    /// another core than its owner (0 when MSI-X routing is right).
    pub interrupts: AtomicU64,
    pub foreign_interrupts: AtomicU64,
    /// Doorbell writes (notifications the device asked for).
    pub notifications: AtomicU64,
}

/// A request's direction and data length, for [`Queue::submit`].
#[derive(Clone, Copy, Debug)]
pub enum Data {
    /// No data (flush).
    None,
    /// The device reads `len` bytes from the bounce buffer (write).
    ToDevice(u32),
    /// The device writes `len` bytes into the bounce buffer (read).
    FromDevice(u32),
}

/// When [`Queue::submit`] rings the doorbell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    /// At once (if the device wants a notification).
    Now,
    /// At the queue's next drain, on its owner core, which the caller
    /// makes sure comes (it raises the queue's readiness): requests
    /// submitted one after another in one turn of that core reach the
    /// device with one notification.
    AtDrain,
}

/// Why a request could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The device is out of service.
    Dead,
}

/// One queue: ring, slots, DMA memory, counters.
pub struct Queue {
    pub index: u16,
    /// The core its interrupt goes to and its completions are handled on.
    pub owner: CoreId,
    /// Its interrupt vector on the owner core.
    pub vector: AtomicU8,
    /// Its readiness source (owned by `owner`).
    pub source: SourceId,
    ring: spin::Mutex<Ring>,
    slots: Vec<Slot>,
    /// Bit `i` set: slot `i` is free.
    free: SlotSet,
    room: WaitList,
    memory: DmaBuffer,
    headers_at: usize,
    status_at: usize,
    bounce_at: usize,
    pub stats: QueueStats,
}

/// Where a queue's parts sit in its DMA buffer.
struct Placement {
    headers_at: usize,
    status_at: usize,
    bounce_at: usize,
    total: usize,
}

fn placement(layout: &Layout, slots: usize) -> Placement {
    let headers_at = layout.size().next_multiple_of(HEADER);
    let status_at = headers_at + slots * HEADER;
    let bounce_at = (status_at + slots).next_multiple_of(4096);
    Placement {
        headers_at,
        status_at,
        bounce_at,
        total: bounce_at + slots * CHUNK,
    }
}

/// Why a queue could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    Memory(MemoryError),
    /// The device's queue is too small for one request.
    TooSmall(u16),
}

impl Queue {
    /// A queue of `size` entries (a power of two) with its DMA memory,
    /// owned by core `owner`, not yet attached to the device: its
    /// [`ring_addresses`](Self::ring_addresses) go to the transport, which
    /// gives back the doorbell for [`attach`](Self::attach).
    pub fn new(
        index: u16,
        owner: CoreId,
        size: u16,
        event_idx: bool,
        source: SourceId,
    ) -> Result<Queue, QueueError> {
        let layout = Layout::new(size).map_err(|_| QueueError::TooSmall(size))?;
        let slots = SLOTS.min(usize::from(size) / 3);
        if slots == 0 {
            return Err(QueueError::TooSmall(size));
        }
        let place = placement(&layout, slots);
        let memory = DmaBuffer::allocate(place.total).map_err(QueueError::Memory)?;
        // SAFETY: the ring part of `memory` (its first `layout.size()`
        // bytes, page aligned) is used only through this region, by
        // atomics, for as long as the queue (which owns `memory`) lives.
        let region = unsafe { DmaRegion::new(memory.as_ptr(), layout.size(), memory.phys()) };
        let queue = Virtqueue::new(region, size, event_idx)
            .map_err(|_| QueueError::Memory(MemoryError::OutOfFrames))?;
        Ok(Queue {
            index,
            owner,
            vector: AtomicU8::new(0),
            source,
            ring: spin::Mutex::new(Ring {
                queue,
                notify: None,
                slot_of: alloc::vec![NO_SLOT; usize::from(size)],
                dead: false,
                deferred: false,
            }),
            slots: (0..slots)
                .map(|_| Slot {
                    state: AtomicU8::new(FREE),
                    result: AtomicU16::new(0),
                    waker: WakerSlot::new(),
                })
                .collect(),
            free: SlotSet::new(slots),
            room: WaitList::new(),
            memory,
            headers_at: place.headers_at,
            status_at: place.status_at,
            bounce_at: place.bounce_at,
            stats: QueueStats::default(),
        })
    }

    /// Device addresses of the descriptor table, driver and device areas.
    pub fn ring_addresses(&self) -> [u64; 3] {
        self.ring.lock().queue.addresses()
    }

    /// Entries in the ring.
    pub fn size(&self) -> u16 {
        self.ring.lock().queue.queue_size()
    }

    /// Request slots (requests in flight at most).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of DMA memory this queue holds.
    pub fn dma_bytes(&self) -> usize {
        self.memory.len()
    }

    /// Gives the queue its doorbell: requests may be submitted from now on.
    pub fn attach(&self, notify: QueueNotify) {
        self.ring.lock().notify = Some(notify);
    }

    /// Takes a free slot, or registers to hear when one is freed.
    pub fn poll_slot(&self, cx: &mut Context<'_>) -> Poll<usize> {
        if let Some(slot) = self.free.take() {
            return Poll::Ready(slot);
        }
        self.room.register(cx.waker());
        match self.free.take() {
            Some(slot) => Poll::Ready(slot),
            None => Poll::Pending,
        }
    }

    /// Gives `slot` back and wakes the tasks waiting for one.
    pub fn release(&self, slot: usize) {
        self.slots[slot].state.store(FREE, Ordering::Release);
        self.free.give_one(slot);
        self.room.wake_all();
    }

    /// Copies `data` into `slot`'s bounce buffer (before submitting it).
    pub fn copy_in(&self, slot: usize, data: &[u8]) {
        debug_assert!(
            data.len() <= CHUNK && self.slots[slot].state.load(Ordering::Acquire) == FREE
        );
        // SAFETY: the slot is taken by the caller and not submitted: the
        // device does not touch its bounce buffer.
        unsafe { self.memory.write(self.bounce_at + slot * CHUNK, data) };
    }

    /// Copies `slot`'s bounce buffer out into `data` (after it completed).
    pub fn copy_out(&self, slot: usize, data: &mut [u8]) {
        debug_assert!(
            data.len() <= CHUNK && self.slots[slot].state.load(Ordering::Acquire) == DONE
        );
        // SAFETY: the request of this slot completed: the device is done
        // with its bounce buffer, and only the slot's taker reads it.
        unsafe { self.memory.read(self.bounce_at + slot * CHUNK, data) };
    }

    /// Submits the request in `slot` (taken, data copied in): header
    /// `kind, sector`, the data segment, the status byte. Rings the
    /// doorbell if the device wants it, or, with `kick` false, leaves that
    /// to the next [`drain`](Self::drain) (the caller makes sure one comes:
    /// see [`Kick`]).
    pub fn submit(
        &self,
        slot: usize,
        kind: u32,
        sector: u64,
        data: Data,
        kick: Kick,
    ) -> Result<(), SubmitError> {
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&kind.to_le_bytes());
        header[8..].copy_from_slice(&sector.to_le_bytes());
        let header_at = self.headers_at + slot * HEADER;
        // SAFETY: the header and status byte of a slot that is not in
        // flight: the device does not touch them.
        unsafe {
            self.memory.write(header_at, &header);
            self.memory.write(self.status_at + slot, &[0xFF]);
        }
        let phys = self.memory.phys();
        let header = Segment::new(phys + header_at as u64, HEADER as u32);
        let status = Segment::new(phys + (self.status_at + slot) as u64, 1);
        let bounce = |len| Segment::new(phys + (self.bounce_at + slot * CHUNK) as u64, len);
        let mut ring = self.ring.lock();
        let ring = &mut *ring;
        let Some(notify) = ring.notify.as_mut().filter(|_| !ring.dead) else {
            return Err(SubmitError::Dead);
        };
        self.slots[slot].state.store(IN_FLIGHT, Ordering::Release);
        let added = match data {
            Data::None => ring.queue.add(&[header], &[status]),
            Data::ToDevice(len) => ring.queue.add(&[header, bounce(len)], &[status]),
            Data::FromDevice(len) => ring.queue.add(&[header], &[bounce(len), status]),
        };
        let Ok(id) = added else {
            // Slots never need more descriptors than the ring has, so only
            // a broken queue (a device error the completion task is about
            // to handle) refuses.
            self.slots[slot].state.store(FREE, Ordering::Release);
            return Err(SubmitError::Dead);
        };
        ring.slot_of[id.index()] = slot as u8;
        self.stats.submitted.fetch_add(1, Ordering::Relaxed);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        match kick {
            Kick::Now => {
                self.kick(&mut ring.queue, notify);
                ring.deferred = false;
            }
            Kick::AtDrain => ring.deferred = true,
        }
        Ok(())
    }

    /// The result of `slot`'s request once it completed (the device's
    /// status byte or [`RESULT_FAILED`]); registers the waker before that.
    pub fn poll_done(&self, slot: usize, cx: &mut Context<'_>) -> Poll<u16> {
        let slot = &self.slots[slot];
        if slot.state.load(Ordering::Acquire) != DONE {
            slot.waker.register(cx.waker());
            if slot.state.load(Ordering::Acquire) != DONE {
                return Poll::Pending;
            }
        }
        Poll::Ready(slot.result.load(Ordering::Acquire))
    }

    /// The waiter of `slot` goes away: frees the slot now if its request
    /// is done (or was never submitted), else when it completes.
    pub fn abandon(&self, slot: usize) {
        match self.slots[slot].state.compare_exchange(
            IN_FLIGHT,
            ABANDONED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(_) => self.release(slot),
        }
    }

    /// Takes every completion off the used ring, records each slot's
    /// result and wakes its waiter; then re-arms the interrupt and checks
    /// the ring once more (the lost-interrupt handshake), going round again
    /// if something arrived meanwhile. Returns how many completed.
    pub fn drain(&self) -> Result<u64, DeviceError> {
        let mut count = 0;
        loop {
            let mut guard = self.ring.lock();
            let ring = &mut *guard;
            while let Some(done) = ring.queue.poll_used()? {
                let slot = ring.slot_of[done.id.index()];
                ring.slot_of[done.id.index()] = NO_SLOT;
                let mut status = [0u8];
                // SAFETY: the request completed: the device is done with
                // its status byte.
                unsafe {
                    self.memory
                        .read(self.status_at + usize::from(slot), &mut status)
                };
                self.complete(usize::from(slot), u16::from(status[0]));
                count += 1;
            }
            if ring.deferred
                && let Some(notify) = ring.notify.as_mut()
            {
                self.kick(&mut ring.queue, notify);
                ring.deferred = false;
            }
            if ring.queue.enable_interrupts() {
                return Ok(count);
            }
        }
    }

    /// Rings the doorbell for what was added, if the device wants it.
    fn kick(&self, queue: &mut Virtqueue<DmaRegion>, notify: &mut QueueNotify) {
        if queue.kick(notify) {
            self.stats.notifications.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn complete(&self, slot: usize, result: u16) {
        self.stats.completed.fetch_add(1, Ordering::Relaxed);
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        if result != 0 {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        let state = &self.slots[slot];
        state.result.store(result, Ordering::Release);
        match state
            .state
            .compare_exchange(IN_FLIGHT, DONE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => state.waker.wake(),
            // Nobody waits any more: the slot is free again.
            Err(_) => self.release(slot),
        }
    }

    /// The device is gone (it was reset after an error): refuses every new
    /// request and fails every one in flight (their waiters get
    /// [`RESULT_FAILED`]).
    pub fn fail_all(&self) {
        let mut ring = self.ring.lock();
        ring.dead = true;
        let mut abandoned = Vec::new();
        ring.queue.reset(|id| abandoned.push(id.index()));
        for head in abandoned {
            let slot = core::mem::replace(&mut ring.slot_of[head], NO_SLOT);
            if slot != NO_SLOT {
                self.complete(usize::from(slot), RESULT_FAILED);
            }
        }
    }

    /// Whether the queue takes no more requests.
    pub fn is_dead(&self) -> bool {
        self.ring.lock().dead
    }
}
