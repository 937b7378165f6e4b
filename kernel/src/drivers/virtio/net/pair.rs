//! One queue pair of the network device: its receive and transmit
//! virtqueues, their buffers in DMA memory (preallocated once), the frames
//! received and not yet taken, and the pair's counters.
//!
//! Receive: every one of the [`RX_BUFFERS`] buffers of [`BUFFER`] bytes is
//! posted to the device as one device-writable descriptor (no
//! `MRG_RXBUF`: a buffer holds the 12-byte virtio-net header and the
//! largest frame). The completion task takes used buffers off the ring
//! ([`Pair::drain`]): a buffer the device says it wrote beyond its length
//! is a device error (the virtqueue refuses it, the device is reset); the
//! rest are checked ([`check_received`]) and a bad one is dropped, counted
//! by reason ([`DropReason`]: too short, too long, a header asking for an
//! offload that was not negotiated) and posted again at once. Good ones
//! wait in `ready` until a receiver takes them, one of two ways:
//! - copied out ([`Pair::poll_recv`]; the buffer is posted again at once);
//! - lent out in place ([`Pair::lend`], the network stack's way: nothing
//!   is copied): the [`Loan`] is read on any core ([`Pair::frame`]),
//!   shared for a broadcast ([`Pair::share`]), and given back on the owner
//!   core ([`Pair::give_back`]), which posts the buffer again after its
//!   last loan. The pair lends no more than leaves the [`reserve`] (a
//!   quarter of the buffers) posted.
//!
//! When nobody receives and only the reserve would stay posted (frames
//! waiting plus buffers lent), the oldest waiting frame is dropped
//! (`NoBuffer`) and its buffer posted again: the ring never runs dry, the
//! newest frames are kept. A receiver whose buffer is too small gets an
//! error and the frame stays for the next call.
//!
//! Transmit: [`TX_SLOTS`] slots of [`BUFFER`] bytes, a lock-free set any
//! core takes from; a sender takes a free slot (or waits for one:
//! backpressure, counted once per blocked send as `tx_waits`), writes a
//! zero header and the frame (copied by [`Pair::transmit`], or written in
//! place through [`Pair::take_slot`] and [`Pair::slot_frame`]), and the
//! slot goes on the ring as one device-readable descriptor with the
//! doorbell rung if the device wants it ([`Pair::submit`]: the network
//! stack does this on the owner core only, so the ring's lock is never
//! contended); the slot is freed when the device hands it back.
//!
//! DMA memory of a pair with queues of 128 entries: receive, one page of
//! rings and 128 x 2 KiB buffers (260 KiB); transmit, one page and 32 x 2
//! KiB (68 KiB). Nothing is allocated per frame.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use percore_virtqueue::{DeviceError, DmaRegion, Layout, Segment, Virtqueue};
use percore_wake::WaitList;

use super::super::slots::SlotSet;
use super::super::transport::QueueNotify;
use crate::arch::CoreId;
use crate::mem::MemoryError;
use crate::mem::dma::DmaBuffer;
use crate::reactor::readiness::SourceId;

/// Bytes of one receive buffer or transmit slot.
pub const BUFFER: usize = 2048;
/// The virtio-net header (`struct virtio_net_hdr`, 5.1.6): 12 bytes with
/// `VERSION_1`. On transmit it is zeroed, or asks the device to finish the
/// TCP/UDP checksum (`NEEDS_CSUM`, with `CSUM`: [`Offloads`]); on receive
/// only its flags are read (with `GUEST_CSUM`, whether the checksum was
/// validated or left for the guest to trust).
pub const HEADER: usize = 12;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
/// csum_offset` is to be finished (transmit) or was left partial by a
/// sender that validated the data (receive).
pub const NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the device validated the checksum.
pub const DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_F_RSC_INFO`.
const RSC_INFO: u8 = 4;
/// In `Pair::ready`'s length: the frame's checksum needs no check.
const VALID_BIT: u16 = 0x8000;

/// The checksum offloads negotiated (virtio 1.2, 5.1.6.2 and 5.1.6.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    /// `VIRTIO_NET_F_CSUM`: the device finishes the TCP/UDP checksum of a
    /// frame sent with `NEEDS_CSUM` (the stack writes only the
    /// pseudo-header's sum, [`offload_header`]).
    pub tx_csum: bool,
    /// `VIRTIO_NET_F_GUEST_CSUM`: a received frame may come with
    /// `DATA_VALID` (checksum validated) or `NEEDS_CSUM` (left partial by a
    /// local sender that validated the data); either is not checked again.
    /// A frame with neither flag is checked as before.
    pub rx_csum: bool,
}
/// An Ethernet header: destination, source, type.
pub const ETHERNET_HEADER: usize = 14;
/// The largest frame without its FCS (1500-byte MTU).
pub const MAX_FRAME: usize = 1514;
/// Receive buffers per pair (fewer if the queue is smaller; at most 254).
pub const RX_BUFFERS: usize = 128;
/// Transmit slots per pair (fewer if the queue is smaller; at most 64).
pub const TX_SLOTS: usize = 32;
/// The queue size asked of the device.
pub const QUEUE_SIZE: u16 = 128;
/// `buffer_of` entry for a descriptor that heads nothing.
const NONE: u8 = u8::MAX;

/// One virtqueue of the pair and its doorbell.
struct Side {
    queue: Virtqueue<DmaRegion>,
    notify: Option<QueueNotify>,
    /// The buffer (receive) or slot (transmit) each head descriptor carries.
    buffer_of: Vec<u8>,
}

/// Counters of one pair, readable from any core.
#[derive(Default)]
pub struct PairStats {
    /// Frames (and their bytes) handed to receivers.
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    /// Frames dropped by the driver (see [`DropReason`]), and their sum
    /// over the reasons the device is to blame for (all but `NoBuffer`).
    pub drops: [AtomicU64; DropReason::COUNT],
    pub rx_errors: AtomicU64,
    /// Frames (and their bytes) put on the transmit ring.
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Frames `send` refused (bad length or not Ethernet).
    pub tx_rejected: AtomicU64,
    /// Received frames whose checksum the device validated or left partial
    /// (not checked again), and frames sent asking the device to finish
    /// their checksum ([`Offloads`]).
    pub rx_csum_valid: AtomicU64,
    pub tx_csum_offloaded: AtomicU64,
    /// Sends that found every slot taken and waited (backpressure),
    /// counted once per blocked send however often it looks again.
    pub tx_waits: AtomicU64,
    /// Interrupts taken, and how many arrived on another core than the owner.
    pub interrupts: AtomicU64,
    pub foreign_interrupts: AtomicU64,
}

/// Why a received frame was dropped (counted per pair in
/// [`PairStats::drops`], in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than the virtio-net header and an Ethernet header.
    TooShort,
    /// Longer than [`MAX_FRAME`] (a 1500-byte MTU).
    TooLong,
    /// A virtio-net header that asks for what was not negotiated
    /// (segmentation, a checksum to finish, unknown flags).
    BadHeader,
    /// No receiver took frames and the posted buffers fell to the reserve:
    /// the oldest waiting frame made room.
    NoBuffer,
    /// Lost when the device misbehaved and was taken out of service.
    DeviceError,
}

impl DropReason {
    pub const COUNT: usize = 5;
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::TooShort,
        DropReason::TooLong,
        DropReason::BadHeader,
        DropReason::NoBuffer,
        DropReason::DeviceError,
    ];

    /// A short name for tables and logs.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::TooShort => "short",
            DropReason::TooLong => "long",
            DropReason::BadHeader => "header",
            DropReason::NoBuffer => "nobuf",
            DropReason::DeviceError => "device",
        }
    }
}

/// `VIRTIO_NET_HDR_F_DATA_VALID` and `RSC_INFO`: flags a device may set
/// without an offload negotiated (information only).
const HARMLESS_FLAGS: u8 = DATA_VALID | RSC_INFO;

/// A received frame's length and whether its TCP/UDP checksum needs no
/// check (the device validated it, or it was left partial by a local
/// sender: only with `GUEST_CSUM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub checksum_valid: bool,
}

/// Checks what the device wrote into a receive buffer: `written` bytes,
/// starting with the virtio-net `header`; `guest_csum` says whether
/// `GUEST_CSUM` was negotiated (else every checksum is the guest's to
/// check: `DATA_VALID` is information only, `NEEDS_CSUM` a bad header).
/// The frame, or why it is dropped.
pub fn check_received(
    header: &[u8; HEADER],
    written: usize,
    guest_csum: bool,
) -> Result<Received, DropReason> {
    let Some(frame) = written
        .checked_sub(HEADER)
        .filter(|&f| f >= ETHERNET_HEADER)
    else {
        return Err(DropReason::TooShort);
    };
    if frame > MAX_FRAME {
        return Err(DropReason::TooLong);
    }
    // Byte 0 flags, byte 1 gso_type (0: none; no GUEST_TSO/UFO/USO).
    let allowed = if guest_csum {
        HARMLESS_FLAGS | NEEDS_CSUM
    } else {
        HARMLESS_FLAGS
    };
    if header[0] & !allowed != 0 || header[1] != 0 {
        return Err(DropReason::BadHeader);
    }
    Ok(Received {
        len: frame,
        checksum_valid: guest_csum && header[0] & (DATA_VALID | NEEDS_CSUM) != 0,
    })
}

/// One's-complement sum of `bytes` as big-endian 16-bit words, unfolded.
fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// For a frame the stack made without its TCP/UDP checksum (`CSUM`
/// negotiated): writes the pseudo-header's sum into the checksum field
/// (virtio 1.2, 5.1.6.2: the device sums from `csum_start` to the end and
/// stores the result at `csum_offset`) and returns the header asking for
/// it (`NEEDS_CSUM`). `None` (a zero header) for any other frame: not
/// IPv4, a fragment, not TCP or UDP, lengths that do not fit the frame.
pub fn offload_header(frame: &mut [u8]) -> Option<[u8; HEADER]> {
    if frame.len() < ETHERNET_HEADER + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETHERNET_HEADER..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || fragment {
        return None;
    }
    let offset = match ip[9] {
        6 => 16,
        17 => 6,
        _ => return None,
    };
    let l4 = total - ihl;
    if l4 < offset + 2 {
        return None;
    }
    let pseudo = fold(sum16(&ip[12..20]) + u32::from(ip[9]) + l4 as u32);
    let start = ETHERNET_HEADER + ihl;
    frame[start + offset..start + offset + 2].copy_from_slice(&pseudo.to_be_bytes());
    let mut header = [0u8; HEADER];
    header[0] = NEEDS_CSUM;
    header[6..8].copy_from_slice(&(start as u16).to_le_bytes());
    header[8..10].copy_from_slice(&(offset as u16).to_le_bytes());
    Some(header)
}

/// Receive buffers of `count` that always stay posted (a quarter).
pub fn reserve(count: usize) -> usize {
    (count / 4).max(1)
}

/// Whether `ready` frames waiting and `lent` buffers lent out leave fewer
/// than the [`reserve`] of `count` buffers posted.
pub fn over_reserve(ready: usize, lent: usize, count: usize) -> bool {
    ready + lent + reserve(count) > count
}

/// A received frame lent out in its receive buffer ([`Pair::lend`]): read
/// in place ([`Pair::frame`]) on any core, then given back to the pair's
/// owner core ([`Pair::give_back`]), which posts the buffer again once its
/// last loan is back. Not `Clone`: [`Pair::share`] counts every copy. A
/// loan that is dropped instead of given back keeps its buffer from the
/// device for good (the [`reserve`] still keeps the ring from running dry).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a loan goes back to its pair"]
pub struct Loan {
    buffer: u8,
    len: u16,
    checksum_valid: bool,
}

impl Loan {
    /// The frame's length.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the frame's TCP/UDP checksum needs no check ([`Received`]).
    pub fn checksum_valid(&self) -> bool {
        self.checksum_valid
    }

    /// Whether the frame is empty (never: frames hold an Ethernet header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A transmit slot taken for a frame the caller writes in place
/// ([`Pair::take_slot`], [`Pair::slot_frame`]) and submits on the pair's
/// owner core ([`Pair::submit`]) or puts back ([`Pair::put_back`]).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a slot goes back to its pair"]
pub struct TxSlot(u8);

/// Why a pair could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairError {
    Memory(MemoryError),
    /// The device's queue is too small.
    TooSmall(u16),
}

/// Why a frame could not be sent (the caller keeps the frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The pair is out of service.
    Dead,
}

/// A virtqueue with its DMA memory: rings first, then `count` buffers of
/// [`BUFFER`] bytes from a page boundary.
struct Memory {
    side: Side,
    memory: DmaBuffer,
    buffers_at: usize,
    count: usize,
}

fn memory(size: u16, event_idx: bool, count: usize) -> Result<Memory, PairError> {
    let layout = Layout::new(size).map_err(|_| PairError::TooSmall(size))?;
    let count = count.min(usize::from(size));
    if count == 0 {
        return Err(PairError::TooSmall(size));
    }
    let buffers_at = layout.size().next_multiple_of(4096);
    let memory = DmaBuffer::allocate(buffers_at + count * BUFFER).map_err(PairError::Memory)?;
    // SAFETY: the first `layout.size()` bytes of `memory` (page aligned)
    // are used only through this region, by atomics, for as long as the
    // pair (which owns `memory`) lives.
    let region = unsafe { DmaRegion::new(memory.as_ptr(), layout.size(), memory.phys()) };
    let queue = Virtqueue::new(region, size, event_idx)
        .map_err(|_| PairError::Memory(MemoryError::OutOfFrames))?;
    Ok(Memory {
        side: Side {
            queue,
            notify: None,
            buffer_of: alloc::vec![NONE; usize::from(size)],
        },
        memory,
        buffers_at,
        count,
    })
}

/// One receive/transmit queue pair.
pub struct Pair {
    /// Pair *k* is virtqueues 2k (receive) and 2k+1 (transmit).
    pub index: u16,
    /// The core its interrupt goes to and its completions are handled on.
    pub owner: CoreId,
    /// Its interrupt vector on the owner core (both virtqueues raise it).
    pub vector: AtomicU8,
    /// Its readiness source (owned by `owner`).
    pub source: SourceId,
    rx: spin::Mutex<Side>,
    rx_memory: DmaBuffer,
    rx_at: usize,
    rx_count: usize,
    /// Received frames not yet taken: (buffer, frame length, with
    /// `VALID_BIT` if its checksum needs no check).
    ready: spin::Mutex<VecDeque<(u8, u16)>>,
    /// Loans out per receive buffer ([`Pair::lend`], [`Pair::share`]).
    holders: Vec<AtomicU8>,
    /// Receive buffers lent out (neither posted nor waiting in `ready`).
    lent: AtomicUsize,
    receivers: WaitList,
    tx: spin::Mutex<Side>,
    tx_memory: DmaBuffer,
    tx_at: usize,
    tx_count: usize,
    /// Bit `i` set: transmit slot `i` is free.
    free: SlotSet,
    room: WaitList,
    dead: AtomicBool,
    /// The checksum offloads negotiated.
    pub offloads: Offloads,
    pub stats: PairStats,
}

impl Pair {
    /// A pair of `size`-entry queues (a power of two) with its DMA memory,
    /// owned by core `owner`, not yet attached to the device.
    pub fn new(
        index: u16,
        owner: CoreId,
        size: u16,
        event_idx: bool,
        source: SourceId,
        offloads: Offloads,
    ) -> Result<Pair, PairError> {
        let rx = memory(size, event_idx, RX_BUFFERS)?;
        let tx = memory(size, event_idx, TX_SLOTS)?;
        Ok(Pair {
            index,
            owner,
            vector: AtomicU8::new(0),
            source,
            rx: spin::Mutex::new(rx.side),
            rx_memory: rx.memory,
            rx_at: rx.buffers_at,
            rx_count: rx.count,
            ready: spin::Mutex::new(VecDeque::with_capacity(rx.count)),
            holders: (0..rx.count).map(|_| AtomicU8::new(0)).collect(),
            lent: AtomicUsize::new(0),
            receivers: WaitList::new(),
            tx: spin::Mutex::new(tx.side),
            tx_memory: tx.memory,
            tx_at: tx.buffers_at,
            tx_count: tx.count,
            free: SlotSet::new(tx.count),
            room: WaitList::new(),
            dead: AtomicBool::new(false),
            offloads,
            stats: PairStats::default(),
        })
    }

    /// Virtqueue index of the receive queue.
    pub fn rx_queue(&self) -> u16 {
        2 * self.index
    }

    /// Virtqueue index of the transmit queue.
    pub fn tx_queue(&self) -> u16 {
        2 * self.index + 1
    }

    /// Ring addresses of the receive and the transmit queue.
    pub fn ring_addresses(&self) -> ([u64; 3], [u64; 3]) {
        (
            self.rx.lock().queue.addresses(),
            self.tx.lock().queue.addresses(),
        )
    }

    /// Entries in each ring.
    pub fn size(&self) -> u16 {
        self.rx.lock().queue.queue_size()
    }

    /// Receive buffers and transmit slots.
    pub fn buffers(&self) -> (usize, usize) {
        (self.rx_count, self.tx_count)
    }

    /// Bytes of DMA memory this pair holds.
    pub fn dma_bytes(&self) -> usize {
        self.rx_memory.len() + self.tx_memory.len()
    }

    /// Received frames waiting for a receiver.
    pub fn waiting(&self) -> usize {
        self.ready.lock().len()
    }

    /// Gives the pair its doorbells (from the transport's set-up).
    pub fn attach(&self, rx: QueueNotify, tx: QueueNotify) {
        self.rx.lock().notify = Some(rx);
        self.tx.lock().notify = Some(tx);
    }

    /// Posts every receive buffer (once, after DRIVER_OK).
    pub fn fill(&self) {
        let mut rx = self.rx.lock();
        for buffer in 0..self.rx_count {
            Self::post(&mut rx, &self.rx_memory, self.rx_at, buffer as u8);
        }
        let rx = &mut *rx;
        if let Some(notify) = rx.notify.as_mut() {
            rx.queue.kick(notify);
        }
    }

    /// Adds receive buffer `buffer` to the ring (not kicked).
    fn post(rx: &mut Side, memory: &DmaBuffer, at: usize, buffer: u8) {
        let address = memory.phys() + (at + usize::from(buffer) * BUFFER) as u64;
        // The ring has a descriptor for every buffer, so only a broken
        // queue refuses; the completion task then takes the device down.
        if let Ok(id) = rx.queue.add(&[], &[Segment::new(address, BUFFER as u32)]) {
            rx.buffer_of[id.index()] = buffer;
        }
    }

    /// Takes every used buffer off both rings: received frames go to
    /// `ready` (waking receivers), sent slots are freed (waking senders).
    /// Re-arms each queue's interrupt and looks again (the lost-interrupt
    /// handshake). Returns the frames received.
    pub fn drain(&self) -> Result<u64, DeviceError> {
        let received = self.drain_rx()?;
        self.drain_tx()?;
        Ok(received)
    }

    fn drain_rx(&self) -> Result<u64, DeviceError> {
        let mut count = 0;
        loop {
            let mut rx = self.rx.lock();
            let mut repost = false;
            while let Some(done) = rx.queue.poll_used()? {
                let buffer = core::mem::replace(&mut rx.buffer_of[done.id.index()], NONE);
                if buffer == NONE {
                    self.count_drop(DropReason::DeviceError);
                    continue;
                }
                // `written` is at most BUFFER (the virtqueue checked it).
                let mut header = [0u8; HEADER];
                // SAFETY: the device handed this buffer back; it is not
                // posted again before this read.
                unsafe { self.rx_memory.read(self.buffer_offset(buffer), &mut header) };
                match check_received(&header, done.written as usize, self.offloads.rx_csum) {
                    Ok(frame) => {
                        if frame.checksum_valid {
                            self.stats.rx_csum_valid.fetch_add(1, Ordering::Relaxed);
                        }
                        let len =
                            frame.len as u16 | if frame.checksum_valid { VALID_BIT } else { 0 };
                        if let Some(oldest) = self.push_ready(buffer, len) {
                            self.count_drop(DropReason::NoBuffer);
                            Self::post(&mut rx, &self.rx_memory, self.rx_at, oldest);
                            repost = true;
                        }
                        count += 1;
                    }
                    Err(reason) => {
                        self.count_drop(reason);
                        Self::post(&mut rx, &self.rx_memory, self.rx_at, buffer);
                        repost = true;
                    }
                }
            }
            let rx = &mut *rx;
            if repost && let Some(notify) = rx.notify.as_mut() {
                rx.queue.kick(notify);
            }
            if rx.queue.enable_interrupts() {
                break;
            }
        }
        if count > 0 {
            self.receivers.wake_all();
        }
        Ok(count)
    }

    /// Queues a received frame for the receivers. If that leaves fewer than
    /// a quarter of the buffers posted, the oldest waiting frame is
    /// given up: its buffer is returned, to post again (the ring never runs
    /// dry when nobody receives; the loss is counted as `NoBuffer`).
    fn push_ready(&self, buffer: u8, len: u16) -> Option<u8> {
        let mut ready = self.ready.lock();
        ready.push_back((buffer, len));
        let lent = self.lent.load(Ordering::Acquire);
        if over_reserve(ready.len(), lent, self.rx_count) {
            ready.pop_front().map(|(oldest, _)| oldest)
        } else {
            None
        }
    }

    fn count_drop(&self, reason: DropReason) {
        self.stats.drops[reason as usize].fetch_add(1, Ordering::Relaxed);
        if reason != DropReason::NoBuffer {
            self.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Offset of receive buffer `buffer` in the receive memory.
    fn buffer_offset(&self, buffer: u8) -> usize {
        self.rx_at + usize::from(buffer) * BUFFER
    }

    fn drain_tx(&self) -> Result<(), DeviceError> {
        loop {
            let mut tx = self.tx.lock();
            let mut freed = 0u64;
            while let Some(done) = tx.queue.poll_used()? {
                let slot = core::mem::replace(&mut tx.buffer_of[done.id.index()], NONE);
                if slot != NONE {
                    freed |= 1 << slot;
                }
            }
            if freed != 0 {
                self.free.give(freed);
                self.room.wake_all();
            }
            if tx.queue.enable_interrupts() {
                return Ok(());
            }
        }
    }

    /// Copies the oldest received frame into `buf` and posts its buffer
    /// again: its length, or `Err(needed)` if `buf` is too small (the frame
    /// stays). Pending until a frame arrives (or the pair is dead:
    /// `Ok(None)`).
    pub fn poll_recv(
        &self,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<usize>, usize>> {
        if let Some(result) = self.try_recv(buf) {
            return Poll::Ready(result.map(Some));
        }
        self.receivers.register(cx.waker());
        match self.try_recv(buf) {
            Some(result) => Poll::Ready(result.map(Some)),
            None if self.is_dead() => Poll::Ready(Ok(None)),
            None => Poll::Pending,
        }
    }

    /// The oldest received frame copied into `buf`, if there is one.
    pub fn try_recv(&self, buf: &mut [u8]) -> Option<Result<usize, usize>> {
        let (buffer, len) = {
            let mut ready = self.ready.lock();
            let &(buffer, len) = ready.front()?;
            let len = len & !VALID_BIT;
            if usize::from(len) > buf.len() {
                return Some(Err(usize::from(len)));
            }
            ready.pop_front();
            (buffer, usize::from(len))
        };
        let at = self.buffer_offset(buffer) + HEADER;
        // SAFETY: the device handed this buffer back and it is not posted
        // again until the copy is done; only this caller took it off `ready`.
        unsafe { self.rx_memory.read(at, &mut buf[..len]) };
        self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
        self.stats.rx_bytes.fetch_add(len as u64, Ordering::Relaxed);
        let mut rx = self.rx.lock();
        if !self.is_dead() {
            Self::post(&mut rx, &self.rx_memory, self.rx_at, buffer);
            let rx = &mut *rx;
            if let Some(notify) = rx.notify.as_mut() {
                rx.queue.kick(notify);
            }
        }
        Some(Ok(len))
    }

    /// The oldest received frame, lent out in its buffer (nothing is
    /// copied): `None` if none waits, or if lending one more would leave
    /// fewer than the [`reserve`] of buffers posted (the frame waits).
    pub fn lend(&self) -> Option<Loan> {
        let (buffer, tagged) = {
            let mut ready = self.ready.lock();
            if !self.may_lend() {
                return None;
            }
            let front = ready.pop_front()?;
            self.lent.fetch_add(1, Ordering::AcqRel);
            front
        };
        let len = tagged & !VALID_BIT;
        self.holders[usize::from(buffer)].store(1, Ordering::Release);
        self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
        self.stats
            .rx_bytes
            .fetch_add(u64::from(len), Ordering::Relaxed);
        Some(Loan {
            buffer,
            len,
            checksum_valid: tagged & VALID_BIT != 0,
        })
    }

    /// [`lend`](Self::lend), or registers to hear when a frame arrives;
    /// `None` once the pair is dead.
    pub fn poll_lend(&self, cx: &mut Context<'_>) -> Poll<Option<Loan>> {
        if let Some(loan) = self.lend() {
            return Poll::Ready(Some(loan));
        }
        self.receivers.register(cx.waker());
        match self.lend() {
            Some(loan) => Poll::Ready(Some(loan)),
            None if self.is_dead() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// One more loan of the same frame (a broadcast for several cores):
    /// the buffer is posted again once every loan is back.
    pub fn share(&self, loan: &Loan) -> Loan {
        self.holders[usize::from(loan.buffer)].fetch_add(1, Ordering::AcqRel);
        Loan {
            buffer: loan.buffer,
            len: loan.len,
            checksum_valid: loan.checksum_valid,
        }
    }

    /// The lent frame, in place in the receive buffer.
    pub fn frame(&self, loan: &Loan) -> &[u8] {
        let at = self.buffer_offset(loan.buffer) + HEADER;
        assert!(
            at + loan.len() <= self.rx_memory.len(),
            "loan out of bounds"
        );
        // SAFETY: in bounds (checked); the device wrote the buffer before
        // handing it back and it is not posted again while a loan of it is
        // out (`give_back` posts it after the last one), so nothing writes
        // these bytes while the returned slice lives (it borrows the loan).
        unsafe { core::slice::from_raw_parts(self.rx_memory.as_ptr().as_ptr().add(at), loan.len()) }
    }

    /// Whether one more buffer may be lent out (it leaves the reserve).
    pub fn may_lend(&self) -> bool {
        let lent = self.lent.load(Ordering::Acquire);
        lent + 1 + reserve(self.rx_count) <= self.rx_count
    }

    /// Whether a frame waits that [`lend`](Self::lend) would lend now.
    pub fn lendable(&self) -> bool {
        !self.ready.lock().is_empty() && self.may_lend()
    }

    /// Receive buffers lent out now.
    pub fn lent(&self) -> usize {
        self.lent.load(Ordering::Acquire)
    }

    /// Takes a loan back (on the owner core: this takes the receive ring's
    /// lock, which only the owner core uses); the last loan of a buffer
    /// posts it again.
    pub fn give_back(&self, loan: Loan) {
        let holders = &self.holders[usize::from(loan.buffer)];
        if holders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let mut rx = self.rx.lock();
        self.lent.fetch_sub(1, Ordering::AcqRel);
        if self.is_dead() {
            return;
        }
        Self::post(&mut rx, &self.rx_memory, self.rx_at, loan.buffer);
        let rx = &mut *rx;
        if let Some(notify) = rx.notify.as_mut() {
            rx.queue.kick(notify);
        }
    }

    /// A free transmit slot (its header zeroed), if one is free; on a dead
    /// pair, none.
    pub fn take_slot(&self) -> Option<TxSlot> {
        if self.is_dead() {
            return None;
        }
        let slot = self.free.take()?;
        // SAFETY: the slot was free: the device does not read it.
        unsafe {
            self.tx_memory
                .write(self.tx_at + slot * BUFFER, &[0; HEADER])
        };
        Some(TxSlot(slot as u8))
    }

    /// A free transmit slot ([`take_slot`](Self::take_slot)), or `None`
    /// with `cx` registered to hear when one frees (looked for again after
    /// registering, so a slot freed meanwhile is not missed). `waited` says
    /// whether this send was counted as a wait already (it is counted once
    /// per blocked send; reset when a slot is found).
    pub fn poll_take_slot(&self, cx: &mut Context<'_>, waited: &mut bool) -> Option<TxSlot> {
        if let Some(slot) = self.take_slot() {
            *waited = false;
            return Some(slot);
        }
        if !core::mem::replace(waited, true) {
            self.stats.tx_waits.fetch_add(1, Ordering::Relaxed);
        }
        self.room.register(cx.waker());
        let slot = self.take_slot();
        if slot.is_some() {
            *waited = false;
        }
        slot
    }

    /// Where the frame of a taken slot goes ([`MAX_FRAME`] bytes).
    pub fn slot_frame<'a>(&'a self, slot: &'a mut TxSlot) -> &'a mut [u8] {
        let at = self.tx_at + usize::from(slot.0) * BUFFER + HEADER;
        assert!(at + MAX_FRAME <= self.tx_memory.len(), "slot out of bounds");
        // SAFETY: in bounds (checked); the slot is taken (the `TxSlot`,
        // which the slice borrows mutably, is its only handle) and not in
        // flight, so the device does not read it and nothing else writes it.
        unsafe {
            core::slice::from_raw_parts_mut(self.tx_memory.as_ptr().as_ptr().add(at), MAX_FRAME)
        }
    }

    /// Sets the virtio-net header of a taken slot (zeroed by
    /// [`take_slot`](Self::take_slot)), e.g. to [`offload_header`]'s.
    pub fn set_slot_header(&self, slot: &mut TxSlot, header: &[u8; HEADER]) {
        // SAFETY: the slot is taken (its `TxSlot` is borrowed mutably) and
        // not in flight: the device does not read it.
        unsafe {
            self.tx_memory
                .write(self.tx_at + usize::from(slot.0) * BUFFER, header)
        };
    }

    /// Puts a slot back unsent.
    pub fn put_back(&self, slot: TxSlot) {
        self.release(usize::from(slot.0));
    }

    /// Sends the first `len` bytes (at most [`MAX_FRAME`]) of a slot's
    /// frame (on the owner core: this takes the transmit ring's lock).
    pub fn submit(&self, slot: TxSlot, len: usize) -> Result<(), SendError> {
        self.queue_slot(usize::from(slot.0), len.min(MAX_FRAME))
    }

    /// Takes a free transmit slot, or registers to hear when one is
    /// freed; `None` once the pair is dead. `waited` as in
    /// [`wait_slot`](Self::wait_slot).
    pub fn poll_slot(&self, cx: &mut Context<'_>, waited: &mut bool) -> Poll<Option<usize>> {
        if self.is_dead() {
            return Poll::Ready(None);
        }
        if let Some(slot) = self.free.take() {
            return Poll::Ready(Some(slot));
        }
        if !core::mem::replace(waited, true) {
            self.stats.tx_waits.fetch_add(1, Ordering::Relaxed);
        }
        self.room.register(cx.waker());
        match self.free.take() {
            Some(slot) => Poll::Ready(Some(slot)),
            None if self.is_dead() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn release(&self, slot: usize) {
        self.free.give_one(slot);
        self.room.wake_all();
    }

    /// Sends `frame` (checked by the caller: at most [`MAX_FRAME`] bytes)
    /// from transmit slot `slot` (taken): a zero header, the frame, one
    /// descriptor, the doorbell if the device wants it. The slot is freed
    /// when the device hands it back, or now on an error.
    pub fn transmit(&self, slot: usize, frame: &[u8]) -> Result<(), SendError> {
        let at = self.tx_at + slot * BUFFER;
        // SAFETY: the slot is taken by the caller and not in flight: the
        // device does not read it.
        unsafe {
            self.tx_memory.write(at, &[0; HEADER]);
            self.tx_memory.write(at + HEADER, frame);
        }
        self.queue_slot(slot, frame.len())
    }

    /// Puts slot `slot` (taken, holding a header and `len` frame bytes)
    /// on the transmit ring.
    fn queue_slot(&self, slot: usize, len: usize) -> Result<(), SendError> {
        let at = self.tx_at + slot * BUFFER;
        let segment = Segment::new(self.tx_memory.phys() + at as u64, (HEADER + len) as u32);
        let mut tx = self.tx.lock();
        let tx = &mut *tx;
        let notify = match tx.notify.as_mut() {
            Some(notify) if !self.is_dead() => notify,
            _ => {
                self.release(slot);
                return Err(SendError::Dead);
            }
        };
        let Ok(id) = tx.queue.add(&[segment], &[]) else {
            self.release(slot);
            return Err(SendError::Dead);
        };
        tx.buffer_of[id.index()] = slot as u8;
        self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
        self.stats.tx_bytes.fetch_add(len as u64, Ordering::Relaxed);
        tx.queue.kick(notify);
        Ok(())
    }

    /// Whether the pair takes no more frames.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// The device is gone (it was reset after an error): no more frames in
    /// or out; waiting senders and receivers are woken to see it.
    pub fn fail_all(&self) {
        self.dead.store(true, Ordering::Release);
        let mut rx = self.rx.lock();
        rx.queue.reset(|_| {});
        rx.buffer_of.fill(NONE);
        drop(rx);
        let mut tx = self.tx.lock();
        tx.queue.reset(|_| {});
        tx.buffer_of.fill(NONE);
        drop(tx);
        let lost = core::mem::take(&mut *self.ready.lock()).len();
        self.stats.drops[DropReason::DeviceError as usize]
            .fetch_add(lost as u64, Ordering::Relaxed);
        self.stats
            .rx_errors
            .fetch_add(lost as u64, Ordering::Relaxed);
        self.receivers.wake_all();
        self.room.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_buffers_are_checked() {
        let ok = |len, checksum_valid| {
            Ok(Received {
                len,
                checksum_valid,
            })
        };
        let clean = [0u8; HEADER];
        assert_eq!(check_received(&clean, HEADER + 60, false), ok(60, false));
        assert_eq!(
            check_received(&clean, HEADER + MAX_FRAME, false),
            ok(MAX_FRAME, false)
        );
        assert_eq!(check_received(&clean, 0, false), Err(DropReason::TooShort));
        assert_eq!(
            check_received(&clean, HEADER + 13, false),
            Err(DropReason::TooShort)
        );
        assert_eq!(
            check_received(&clean, HEADER + MAX_FRAME + 1, false),
            Err(DropReason::TooLong)
        );
        let mut valid = clean;
        valid[0] = DATA_VALID; // information only without GUEST_CSUM
        assert_eq!(check_received(&valid, HEADER + 60, false), ok(60, false));
        let mut partial = clean;
        partial[0] = NEEDS_CSUM; // without GUEST_CSUM
        assert_eq!(
            check_received(&partial, HEADER + 60, false),
            Err(DropReason::BadHeader)
        );
        let mut gso = clean;
        gso[1] = 1; // TCPv4 segmentation without GUEST_TSO4
        assert_eq!(
            check_received(&gso, HEADER + 60, false),
            Err(DropReason::BadHeader)
        );
        assert_eq!(
            check_received(&gso, HEADER + 60, true),
            Err(DropReason::BadHeader)
        );
    }

    #[test]
    fn guest_csum_trusts_only_flagged_frames() {
        let mut header = [0u8; HEADER];
        // Neither flag: the guest checks (a corrupt frame is still caught).
        assert_eq!(
            check_received(&header, HEADER + 60, true).map(|r| r.checksum_valid),
            Ok(false)
        );
        header[0] = DATA_VALID;
        assert_eq!(
            check_received(&header, HEADER + 60, true).map(|r| r.checksum_valid),
            Ok(true)
        );
        header[0] = NEEDS_CSUM;
        assert_eq!(
            check_received(&header, HEADER + 60, true).map(|r| r.checksum_valid),
            Ok(true)
        );
        header[0] = RSC_INFO;
        assert_eq!(
            check_received(&header, HEADER + 60, true).map(|r| r.checksum_valid),
            Ok(false)
        );
    }

    /// Ethernet + IPv4 10.9.0.2 -> 10.9.0.1 + a `protocol` header of
    /// `l4` bytes (zero checksum) and payload.
    fn frame(protocol: u8, l4: usize) -> alloc::vec::Vec<u8> {
        let mut f = alloc::vec![0u8; ETHERNET_HEADER + 20 + l4];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = protocol;
        f[26..30].copy_from_slice(&[10, 9, 0, 2]);
        f[30..34].copy_from_slice(&[10, 9, 0, 1]);
        for (i, b) in f[34 + 8..].iter_mut().enumerate() {
            *b = i as u8 ^ 0x5a;
        }
        if protocol == 6 {
            f[34 + 12] = 5 << 4;
        } else {
            f[38..40].copy_from_slice(&(l4 as u16).to_be_bytes());
        }
        f
    }

    /// What the device does with a `NEEDS_CSUM` header: sums from
    /// `csum_start` to the end and stores the complement at `csum_offset`.
    fn finish(frame: &mut [u8], header: &[u8; HEADER]) {
        let start = usize::from(u16::from_le_bytes([header[6], header[7]]));
        let at = start + usize::from(u16::from_le_bytes([header[8], header[9]]));
        let sum = !fold(sum16(&frame[start..]));
        frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }

    #[test]
    fn offloaded_checksums_come_out_right() {
        use smoltcp::wire::{IpAddress, Ipv4Address, TcpPacket, UdpPacket};
        let (src, dst) = (
            IpAddress::Ipv4(Ipv4Address::new(10, 9, 0, 2)),
            IpAddress::Ipv4(Ipv4Address::new(10, 9, 0, 1)),
        );
        for l4 in [20, 21, 1480] {
            let mut f = frame(6, l4);
            let header = offload_header(&mut f).expect("TCP is offloaded");
            assert_eq!(header[0], NEEDS_CSUM);
            finish(&mut f, &header);
            assert!(
                TcpPacket::new_checked(&f[34..])
                    .unwrap()
                    .verify_checksum(&src, &dst)
            );
        }
        let mut f = frame(17, 8 + 33);
        let header = offload_header(&mut f).expect("UDP is offloaded");
        finish(&mut f, &header);
        assert!(
            UdpPacket::new_checked(&f[34..])
                .unwrap()
                .verify_checksum(&src, &dst)
        );
        // Not for us to offload: ICMP, a fragment, not IPv4, lengths that lie.
        assert_eq!(offload_header(&mut frame(1, 8)), None);
        let mut fragment = frame(6, 20);
        fragment[20] = 0x20;
        assert_eq!(offload_header(&mut fragment), None);
        let mut arp = frame(6, 20);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(offload_header(&mut arp), None);
        let mut long = frame(6, 20);
        long[16..18].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(offload_header(&mut long), None);
        assert_eq!(offload_header(&mut [0u8; 20]), None);
    }
}
