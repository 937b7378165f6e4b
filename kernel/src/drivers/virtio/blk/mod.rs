//! virtio-blk (virtio 1.2, section 5.2) with one request queue per core.
//!
//! Queue *k* belongs to core *k*: its MSI-X vector targets core *k*, its
//! completions are events of core *k*'s readiness queue, and a pinned task
//! there (the queue's completion task) takes them off the used ring and
//! wakes the waiting requests. A request goes to the queue of the core that
//! calls [`Disk::read`], [`Disk::write`] or [`Disk::flush`].
//!
//! Cores beyond the device's queue count share: core *c* uses queue
//! *c mod queues*. The queue's ring sits behind a spin lock, so submitters
//! on two cores take turns adding; completions are still handled on the
//! queue's owner core, and a waiter on another core is woken through the
//! bus (its waker names its core). Nothing else is shared between queues.
//!
//! Data moves through the queue's preallocated bounce buffers (see
//! [`queue`]): the caller's buffer may live anywhere (the kernel heap is
//! not physically contiguous), and nothing is allocated per request. A
//! request longer than one slot's [`CHUNK`] is done chunk by chunk, in
//! order; several requests (futures) run at once, from any tasks and cores.
//!
//! Errors are values ([`BlkError`]): a bad length or block number is
//! refused before anything is sent; the device's `IOERR` and `UNSUPP`
//! come back to the request's caller only; a device that misbehaves (a
//! [`DeviceError`] from the virtqueue) is reset and taken out of service,
//! every request in flight fails, and the kernel goes on.
//!
//! Interrupts: the MSI-X handler only counts and raises the queue's
//! readiness; the completion task drains the used ring, re-arms the
//! interrupt (`EVENT_IDX`: `used_event`) and checks the ring again before
//! it waits (the lost-interrupt handshake of `Virtqueue::enable_interrupts`).
//!
//! Notifications: a request made on its queue's owner core while others
//! are in flight there does not ring the doorbell itself; it raises the
//! queue's readiness, and the completion task's drain, which runs after
//! the tasks of that turn, rings it once for every request added
//! meanwhile (the waiters a drain wakes typically submit again at once:
//! at queue depth 32, `bench disk` counts about one doorbell write per 30
//! requests instead of one per 3). A request with nothing else in flight,
//! or from another core than the owner, rings it at once; with
//! `EVENT_IDX` only when the device asked for it.

pub mod queue;

use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::{AtomicU64, Ordering};

use percore_poll::{Interest, Ready};
use percore_virtqueue::DeviceError;
use virtio_spec::F;
use virtio_spec::blk::F as BlkF;

use super::transport::{MODERN_DEVICE_BASE, QueueConfig, Transport, TransportError, VIRTIO_VENDOR};
use super::{COMPLETION_PRIORITY, feature_bit};
use crate::arch::irq::{self, MsiError};
use crate::arch::{CoreId, cpu};
use crate::drivers::pci::{self, Bdf, MsixError};
use crate::reactor::readiness::{self, Readiness, ReadinessError};
use crate::reactor::{self, SpawnOptions};
pub use queue::{CHUNK, Data, Kick, Queue, QueueError, QueueStats};

/// virtio's sector: the unit of capacity and of a request's `sector`.
pub const SECTOR: u64 = 512;
/// virtio device id of a block device.
const BLOCK_DEVICE: u16 = 2;
/// The transitional (0.9-era) PCI id; such a device may also offer the
/// modern interface, which is all this driver speaks.
const TRANSITIONAL_ID: u16 = 0x1001;
/// Request types and statuses (5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const S_OK: u16 = 0;
const S_IOERR: u16 = 1;
const S_UNSUPP: u16 = 2;
/// Device configuration offsets (5.2.4, `struct virtio_blk_config`).
const CONFIG_CAPACITY: u64 = 0;
const CONFIG_SEG_MAX: u64 = 12;
const CONFIG_BLK_SIZE: u64 = 20;
const CONFIG_NUM_QUEUES: u64 = 34;

/// What the driver asks for; only `VERSION_1` is required.
fn wanted_features() -> u64 {
    feature_bit(F::VERSION_1.bits().to_ne())
        | feature_bit(F::EVENT_IDX.bits().to_ne())
        | feature_bit(BlkF::MQ.bits().to_ne())
        | feature_bit(BlkF::FLUSH.bits().to_ne())
        | feature_bit(BlkF::BLK_SIZE.bits().to_ne())
        | feature_bit(BlkF::SEG_MAX.bits().to_ne())
        | feature_bit(BlkF::RO.bits().to_ne())
}

/// Why a request failed. Nothing is retried behind the caller's back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// There is no block device (none found, or it failed to start).
    NoDevice,
    /// The buffer is empty or not a multiple of the block size.
    BadLength { len: usize, block_size: u32 },
    /// The blocks `lba..lba + blocks` are not all on the device.
    OutOfRange {
        lba: u64,
        blocks: u64,
        capacity: u64,
    },
    /// The device is read-only.
    ReadOnly,
    /// The device reported an I/O error (`VIRTIO_BLK_S_IOERR`).
    Io,
    /// The device does not support the request (`VIRTIO_BLK_S_UNSUPP`).
    Unsupported,
    /// The device wrote a status that means nothing.
    BadStatus(u8),
    /// The device misbehaved and was taken out of service (this error, or
    /// an earlier one on any queue): every request fails from then on.
    Device(DeviceError),
}

/// Why the device could not be started (it has been reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No virtio-blk function on the PCI bus.
    NotFound,
    Transport(TransportError),
    Msix(MsixError),
    Irq(MsiError),
    Readiness(ReadinessError),
    Queue(QueueError),
    /// The block size is not a power of two in 512..=CHUNK.
    BadBlockSize(u32),
    /// The device offers no queue (or no MSI-X entry for one).
    NoQueues,
}

/// What the device reads back about one queue (for the `disk` command and
/// the tests).
#[derive(Clone, Copy, Debug)]
pub struct QueueInfo {
    pub index: u16,
    pub owner: CoreId,
    /// The vector allocated on the owner core.
    pub vector: u8,
    /// The MSI-X entry the device says the queue raises.
    pub msix_entry: u16,
    /// The core and vector that entry's message targets (read back from
    /// the table; `None` if masked or unreadable).
    pub target: Option<(CoreId, u8)>,
    pub size: u16,
    pub slots: usize,
    pub dma_bytes: usize,
}

/// The block device.
pub struct Disk {
    transport: Transport,
    /// Capacity in 512-byte sectors.
    capacity: u64,
    block_size: u32,
    read_only: bool,
    flush: bool,
    features: u64,
    seg_max: u32,
    queues: Vec<Queue>,
    /// Completions handled on each core.
    completions: Vec<AtomicU64>,
    /// The device error that took the device out of service.
    failure: spin::Once<DeviceError>,
}

static DISK: spin::Once<Result<Disk, InitError>> = spin::Once::new();
static TASKS: spin::Once<()> = spin::Once::new();

/// Finds the first virtio-blk device and starts it (once; later calls
/// return the same outcome). Needs the reactors: each queue's completion
/// task is spawned on its core.
pub fn init() -> Result<&'static Disk, InitError> {
    let disk = DISK
        .call_once(|| {
            let result = probe();
            match &result {
                Ok(disk) => log::info!(
                    "virtio-blk {}: {} MiB, {}-byte blocks{}, {} queues, features {:#x}",
                    disk.bdf(),
                    disk.capacity * SECTOR / (1024 * 1024),
                    disk.block_size,
                    if disk.read_only { ", read-only" } else { "" },
                    disk.queues.len(),
                    disk.features
                ),
                Err(InitError::NotFound) => {}
                Err(error) => log::error!("virtio-blk: not started: {error:?}"),
            }
            result
        })
        .as_ref()
        .map_err(|e| *e)?;
    TASKS.call_once(|| {
        for (index, queue) in disk.queues.iter().enumerate() {
            let options = SpawnOptions::new(reactor::priority(COMPLETION_PRIORITY)).pinned();
            drop(reactor::spawn_with(
                queue.owner,
                options,
                completions(index),
            ));
        }
    });
    Ok(disk)
}

/// The block device, once [`init`] started it.
pub fn device() -> Option<&'static Disk> {
    DISK.get()?.as_ref().ok()
}

fn probe() -> Result<Disk, InitError> {
    let function = pci::functions()
        .iter()
        .find(|f| {
            f.vendor == VIRTIO_VENDOR
                && (f.device == MODERN_DEVICE_BASE + BLOCK_DEVICE || f.device == TRANSITIONAL_ID)
        })
        .ok_or(InitError::NotFound)?;
    let transport = Transport::new(function).map_err(InitError::Transport)?;
    let mut vectors = Vec::new();
    let result = start(transport, &mut vectors);
    if result.is_err() {
        for (core, vector) in vectors {
            let _ = irq::free_vector(core, vector);
        }
    }
    result
}

/// What [`set_up`] learns.
struct Parts {
    capacity: u64,
    block_size: u32,
    read_only: bool,
    flush: bool,
    features: u64,
    seg_max: u32,
}

/// 3.1.1 on `transport`. On error the device is reset and MSI-X is off
/// before the queues' DMA memory is given back.
fn start(transport: Transport, vectors: &mut Vec<(CoreId, u8)>) -> Result<Disk, InitError> {
    let mut queues = Vec::new();
    match set_up(&transport, vectors, &mut queues) {
        Ok(parts) => Ok(Disk {
            transport,
            capacity: parts.capacity,
            block_size: parts.block_size,
            read_only: parts.read_only,
            flush: parts.flush,
            features: parts.features,
            seg_max: parts.seg_max,
            queues,
            completions: (0..cpu::online_cores())
                .map(|_| AtomicU64::new(0))
                .collect(),
            failure: spin::Once::new(),
        }),
        Err(error) => {
            let _ = transport.reset();
            transport.msix().set_enabled(false);
            drop(queues);
            Err(error)
        }
    }
}

fn set_up(
    transport: &Transport,
    vectors: &mut Vec<(CoreId, u8)>,
    queues: &mut Vec<Queue>,
) -> Result<Parts, InitError> {
    transport.begin().map_err(InitError::Transport)?;
    let msix = *transport.msix();
    for entry in 0..msix.entries() {
        msix.mask(entry, true).map_err(InitError::Msix)?;
    }
    msix.set_enabled(true);
    let required = feature_bit(F::VERSION_1.bits().to_ne());
    let features = transport
        .negotiate(wanted_features(), required)
        .map_err(InitError::Transport)?;
    let has = |flag: u128| features & feature_bit(flag) != 0;
    let config = read_config(transport)?;
    let block_size = match has(BlkF::BLK_SIZE.bits().to_ne()) {
        true => config.block_size,
        false => 512,
    };
    if !block_size.is_power_of_two() || !(512..=CHUNK as u32).contains(&block_size) {
        return Err(InitError::BadBlockSize(block_size));
    }
    let offered = match has(BlkF::MQ.bits().to_ne()) {
        true => config.num_queues.max(1),
        false => 1,
    };
    let count = offered
        .min(transport.num_queues())
        .min(cpu::online_cores() as u16)
        .min(msix.entries());
    if count == 0 {
        return Err(InitError::NoQueues);
    }
    let event_idx = has(F::EVENT_IDX.bits().to_ne());
    for index in 0..count {
        start_queue(transport, index, event_idx, vectors, queues)?;
    }
    transport.driver_ok().map_err(InitError::Transport)?;
    Ok(Parts {
        capacity: config.capacity,
        block_size,
        read_only: has(BlkF::RO.bits().to_ne()),
        flush: has(BlkF::FLUSH.bits().to_ne()),
        features,
        seg_max: config.seg_max,
    })
}

/// The fields of `virtio_blk_config` the driver uses.
struct BlkConfig {
    capacity: u64,
    seg_max: u32,
    block_size: u32,
    num_queues: u16,
}

fn read_config(transport: &Transport) -> Result<BlkConfig, InitError> {
    let config = transport
        .read_config(|base, len| {
            if len < CONFIG_NUM_QUEUES + 2 {
                return None;
            }
            // SAFETY: the device configuration block is mapped uncached at
            // `base` and is long enough (checked); each field is read with
            // its own width, the 64-bit capacity as two halves (4.1.3.1).
            unsafe {
                let u32_at = |at: u64| ((base + at) as *const u32).read_volatile();
                Some(BlkConfig {
                    capacity: u64::from(u32_at(CONFIG_CAPACITY))
                        | (u64::from(u32_at(CONFIG_CAPACITY + 4)) << 32),
                    seg_max: u32_at(CONFIG_SEG_MAX),
                    block_size: u32_at(CONFIG_BLK_SIZE),
                    num_queues: ((base + CONFIG_NUM_QUEUES) as *const u16).read_volatile(),
                })
            }
        })
        .map_err(InitError::Transport)?;
    config.ok_or(InitError::Transport(TransportError::MissingCapability(
        "device configuration (too short)",
    )))
}

/// Queue `index`: DMA memory (pushed onto `queues` at once, so that the
/// caller resets the device before it is freed), a vector on core `index`
/// and its MSI-X entry, the transport's set-up, then the entry unmasked.
fn start_queue(
    transport: &Transport,
    index: u16,
    event_idx: bool,
    vectors: &mut Vec<(CoreId, u8)>,
    queues: &mut Vec<Queue>,
) -> Result<(), InitError> {
    let msix = transport.msix();
    let owner = CoreId(index);
    let size = largest_power_of_two(transport.max_queue_size(index).min(queue::QUEUE_SIZE));
    let source = readiness::define_source(owner).map_err(InitError::Readiness)?;
    queues.push(Queue::new(index, owner, size, event_idx, source).map_err(InitError::Queue)?);
    let queue = &queues[usize::from(index)];
    let vector =
        irq::allocate_vector(owner, on_interrupt, usize::from(index)).map_err(InitError::Irq)?;
    vectors.push((owner, vector));
    queue.vector.store(vector, Ordering::Relaxed);
    let message = irq::msi_message(owner, vector).map_err(InitError::Irq)?;
    msix.program(index, message).map_err(InitError::Msix)?;
    let notify = transport
        .setup_queue(&QueueConfig {
            index,
            size,
            addresses: queue.ring_addresses(),
            msix_entry: index,
        })
        .map_err(InitError::Transport)?;
    queue.attach(notify);
    msix.mask(index, false).map_err(InitError::Msix)
}

fn largest_power_of_two(n: u16) -> u16 {
    match n {
        0 => 0,
        n => 1 << (15 - n.leading_zeros()),
    }
}

/// A queue's MSI-X handler (on its owner core, interrupts masked): counts
/// and raises the queue's readiness; the completion task does the rest.
fn on_interrupt(index: usize) {
    let Some(queue) = device().and_then(|d| d.queues.get(index)) else {
        return;
    };
    queue.stats.interrupts.fetch_add(1, Ordering::Relaxed);
    if cpu::core_id() != queue.owner {
        queue
            .stats
            .foreign_interrupts
            .fetch_add(1, Ordering::Relaxed);
    }
    readiness::raise(queue.source, Ready::READABLE);
}

/// A queue's completion task, pinned to its owner core.
async fn completions(index: usize) {
    let Some(disk) = device() else { return };
    let queue = &disk.queues[index];
    let mut ready = match Readiness::register(queue.source, Interest::READABLE) {
        Ok(ready) => ready,
        Err(error) => {
            log::error!("virtio-blk queue {index}: no completions: {error:?}");
            return;
        }
    };
    loop {
        ready.ready().await;
        match queue.drain() {
            Ok(count) => {
                if let Some(counter) = disk.completions.get(cpu::core_id().index()) {
                    counter.fetch_add(count, Ordering::Relaxed);
                }
            }
            Err(error) => disk.fail(error),
        }
    }
}

/// A request's data.
enum Io<'a> {
    Flush,
    Write(&'a [u8]),
    Read(&'a mut [u8]),
}

/// Frees (or abandons, if in flight) a taken slot when the request's
/// future ends or is dropped.
struct SlotGuard<'a> {
    queue: &'a Queue,
    slot: usize,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.queue.abandon(self.slot);
    }
}

impl Disk {
    /// The PCI function.
    pub fn bdf(&self) -> Bdf {
        self.transport.function().bdf
    }

    /// Bytes per block: the unit of `lba` and of buffer lengths.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Blocks on the device.
    pub fn blocks(&self) -> u64 {
        self.capacity * SECTOR / u64::from(self.block_size)
    }

    /// Whether the device refuses writes (`VIRTIO_BLK_F_RO`).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the device has a write cache to flush (`VIRTIO_BLK_F_FLUSH`).
    pub fn has_flush(&self) -> bool {
        self.flush
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The device's most data segments per request (`seg_max`; this
    /// driver uses one).
    pub fn seg_max(&self) -> u32 {
        self.seg_max
    }

    /// The queues, by index.
    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    /// The queue core `core`'s requests go to.
    pub fn queue_of(&self, core: CoreId) -> usize {
        core.index() % self.queues.len()
    }

    /// Completions handled on core `core` so far.
    pub fn completions_on(&self, core: CoreId) -> u64 {
        self.completions
            .get(core.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The device error that took the device out of service, if one did.
    pub fn failure(&self) -> Option<DeviceError> {
        self.failure.get().copied()
    }

    /// What the device and its MSI-X table say about queue `index`.
    pub fn queue_info(&self, index: usize) -> Option<QueueInfo> {
        let queue = self.queues.get(index)?;
        let msix_entry = self.transport.queue_vector(queue.index);
        Some(QueueInfo {
            index: queue.index,
            owner: queue.owner,
            vector: queue.vector.load(Ordering::Relaxed),
            msix_entry,
            target: pci::msix_route(self.transport.msix(), msix_entry),
            size: queue.size(),
            slots: queue.slots(),
            dma_bytes: queue.dma_bytes(),
        })
    }

    /// Reads `buf.len()` bytes (whole blocks) from block `lba` on.
    pub async fn read(&self, lba: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        let sector = self.check(lba, buf.len())?;
        let queue = self.queue_here();
        for (i, chunk) in buf.chunks_mut(CHUNK).enumerate() {
            let at = sector + (i * CHUNK) as u64 / SECTOR;
            self.request(queue, T_IN, at, Io::Read(chunk)).await?;
        }
        Ok(())
    }

    /// Writes `buf` (whole blocks) at block `lba` on. Durable only after a
    /// [`flush`](Self::flush).
    pub async fn write(&self, lba: u64, buf: &[u8]) -> Result<(), BlkError> {
        let sector = self.check(lba, buf.len())?;
        if self.read_only {
            return Err(BlkError::ReadOnly);
        }
        let queue = self.queue_here();
        for (i, chunk) in buf.chunks(CHUNK).enumerate() {
            let at = sector + (i * CHUNK) as u64 / SECTOR;
            self.request(queue, T_OUT, at, Io::Write(chunk)).await?;
        }
        Ok(())
    }

    /// Makes every completed write durable (`VIRTIO_BLK_T_FLUSH`). A device
    /// without `VIRTIO_BLK_F_FLUSH` has no volatile cache (its writes are
    /// durable on completion), so there is nothing to send.
    pub async fn flush(&self) -> Result<(), BlkError> {
        if !self.flush {
            return self.failure().map_or(Ok(()), |e| Err(BlkError::Device(e)));
        }
        self.request(self.queue_here(), T_FLUSH, 0, Io::Flush).await
    }

    fn queue_here(&self) -> &Queue {
        &self.queues[self.queue_of(cpu::core_id())]
    }

    /// The first sector of `len` bytes at block `lba`, if they are whole
    /// blocks on the device.
    fn check(&self, lba: u64, len: usize) -> Result<u64, BlkError> {
        let block_size = u64::from(self.block_size);
        if len == 0 || !(len as u64).is_multiple_of(block_size) {
            return Err(BlkError::BadLength {
                len,
                block_size: self.block_size,
            });
        }
        let blocks = len as u64 / block_size;
        if lba
            .checked_add(blocks)
            .is_none_or(|end| end > self.blocks())
        {
            return Err(BlkError::OutOfRange {
                lba,
                blocks,
                capacity: self.blocks(),
            });
        }
        Ok(lba * (block_size / SECTOR))
    }

    /// One request of at most one slot's worth of data.
    async fn request(
        &self,
        queue: &Queue,
        kind: u32,
        sector: u64,
        io: Io<'_>,
    ) -> Result<(), BlkError> {
        let slot = poll_fn(|cx| queue.poll_slot(cx)).await;
        let _guard = SlotGuard { queue, slot };
        let data = match &io {
            Io::Flush => Data::None,
            Io::Write(bytes) => {
                queue.copy_in(slot, bytes);
                Data::ToDevice(bytes.len() as u32)
            }
            Io::Read(bytes) => Data::FromDevice(bytes.len() as u32),
        };
        // On the queue's own core with requests already in flight, the
        // doorbell waits for the completion task's next drain (raised
        // here, it runs after the tasks of this turn): requests submitted
        // in one turn share one notification. Otherwise it rings now, so a
        // lone request (queue depth 1) waits for nothing.
        let kick = match cpu::core_id() == queue.owner
            && queue.stats.in_flight.load(Ordering::Relaxed) > 0
        {
            true => Kick::AtDrain,
            false => Kick::Now,
        };
        if queue.submit(slot, kind, sector, data, kick).is_err() {
            return Err(self.out_of_service());
        }
        if kick == Kick::AtDrain {
            readiness::raise(queue.source, Ready::READABLE);
        }
        let result = poll_fn(|cx| queue.poll_done(slot, cx)).await;
        match result {
            S_OK => {
                if let Io::Read(bytes) = io {
                    queue.copy_out(slot, bytes);
                }
                Ok(())
            }
            S_IOERR => Err(BlkError::Io),
            S_UNSUPP => Err(BlkError::Unsupported),
            queue::RESULT_FAILED => Err(self.out_of_service()),
            status => Err(BlkError::BadStatus(status as u8)),
        }
    }

    fn out_of_service(&self) -> BlkError {
        self.failure().map_or(BlkError::NoDevice, BlkError::Device)
    }

    /// The device misbehaved: reset it (it stops using every queue) and
    /// fail every request in flight. The device stays out of service.
    fn fail(&self, error: DeviceError) {
        if !self
            .transport
            .take_out_of_service(&self.failure, error, "virtio-blk")
        {
            return;
        }
        for queue in &self.queues {
            queue.fail_all();
        }
    }
}
