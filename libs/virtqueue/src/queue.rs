//! The driver's half of one split virtqueue (virtio 1.2, 2.7).
//!
//! Ownership of the shared words, and the ordering that hands them over:
//!
//! | word | written by | read by | ordering |
//! |---|---|---|---|
//! | descriptors, `avail.ring[]` | driver | device | plain (Relaxed), published by `avail.idx` |
//! | `avail.idx` | driver | device | Release store / device's Acquire (2.7.13: barrier before the idx update) |
//! | `used.ring[]` | device | driver | plain (Relaxed), published by `used.idx` |
//! | `used.idx` | device | driver | device's Release / Acquire load here |
//! | `avail.flags`, `used_event` | driver | device | Relaxed + full fence in the handshakes |
//! | `used.flags`, `avail_event` | device | driver | Relaxed + full fence in the handshakes |
//!
//! The two notification decisions are each half of a store-fence-load
//! (Dekker) handshake: the driver publishes `avail.idx`, fences, then reads
//! `avail_event`; the device publishes `avail_event`, fences, then re-reads
//! `avail.idx` before it sleeps. Whatever the interleaving, one of them sees
//! the other's store, so a request is never left unseen with nobody
//! notified. Interrupts mirror it with `used_event` and `used.idx`.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use virtio_spec::virtq::{AvailF, DescF, UsedF};

use crate::chain::Descriptors;
use crate::error::{AddError, ConfigError, DeviceError};
use crate::event::need_event;
use crate::layout::Layout;
use crate::memory::QueueMemory;
use crate::notify::Notify;
use crate::sync::fence;
use crate::token::{Completion, RequestId, Segment};

/// The driver side of one split virtqueue in memory `M`.
///
/// Everything is allocated in [`new`](Self::new); adding, kicking and
/// polling never allocate. A queue of `N` entries costs
/// [`Layout::size`] bytes of shared memory (`26 * N + 16` for `N >= 2`:
/// 6 672 bytes for 256 entries) plus `10 * N` bytes of private state and this struct.
///
/// ```
/// use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
/// let layout = Layout::new(8).unwrap();
/// let mut q = Virtqueue::new(HostRegion::new(layout, 0x4000).unwrap(), 8, true).unwrap();
/// // A virtio-blk read: header (device reads), data + status (device writes).
/// let id = q.add(&[Segment::new(0x10_0000, 16)], &[Segment::new(0x20_0000, 4096), Segment::new(0x10_0010, 1)]).unwrap();
/// let mut kicks = 0;
/// assert!(q.kick(&mut || kicks += 1)); // a fresh device wants to hear about entry 0
/// assert_eq!(q.in_flight(), 1);
/// assert_eq!(q.poll_used(), Ok(None)); // nothing completed yet
/// # let _ = id;
/// ```
pub struct Virtqueue<M: QueueMemory> {
    memory: M,
    layout: Layout,
    descriptors: Descriptors,
    event_idx: bool,
    /// `avail.idx` as last published.
    avail_idx: u16,
    /// `avail.idx` at the last notification decision.
    kicked_idx: u16,
    /// Entries published since the last decision, to force a notification
    /// before `need_event`'s u16 arithmetic could wrap.
    unkicked: u32,
    /// Used entries consumed so far (free-running like `used.idx`).
    last_used: u16,
    in_flight: u16,
    broken: Option<DeviceError>,
}

impl<M: QueueMemory> core::fmt::Debug for Virtqueue<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Virtqueue")
            .field("queue_size", &self.queue_size())
            .field("event_idx", &self.event_idx)
            .field("avail_idx", &self.avail_idx)
            .field("last_used", &self.last_used)
            .field("in_flight", &self.in_flight)
            .field("free", &self.descriptors.free())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<M: QueueMemory> Virtqueue<M> {
    /// A queue of `queue_size` entries in `memory`, with `event_idx` set iff
    /// `VIRTIO_F_EVENT_IDX` was negotiated. Zeroes the rings' index and
    /// flag words; every descriptor starts free.
    ///
    /// ```
    /// use percore_virtqueue::{ConfigError, HostRegion, Layout, Virtqueue};
    /// let small = HostRegion::new(Layout::new(4).unwrap(), 0).unwrap();
    /// assert!(matches!(Virtqueue::new(small, 8, false), Err(ConfigError::TooSmall { .. })));
    /// ```
    pub fn new(memory: M, queue_size: u16, event_idx: bool) -> Result<Self, ConfigError> {
        let layout = Layout::new(queue_size)?;
        if memory.size() < layout.size() {
            return Err(ConfigError::TooSmall {
                need: layout.size(),
                have: memory.size(),
            });
        }
        if !memory.device_address().is_multiple_of(Layout::ALIGN as u64) {
            return Err(ConfigError::Misaligned(memory.device_address()));
        }
        let queue = Virtqueue {
            descriptors: Descriptors::new(queue_size)?,
            memory,
            layout,
            event_idx,
            avail_idx: 0,
            kicked_idx: 0,
            unkicked: 0,
            last_used: 0,
            in_flight: 0,
            broken: None,
        };
        queue.clear_ring_words();
        Ok(queue)
    }

    /// Device addresses of the descriptor table, the available ring (the
    /// "driver area") and the used ring (the "device area"), to program
    /// into the transport (`queue_desc`, `queue_driver`, `queue_device`).
    ///
    /// ```
    /// use percore_virtqueue::{HostRegion, Layout, Virtqueue};
    /// let q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0x4000).unwrap(), 8, false).unwrap();
    /// assert_eq!(q.addresses(), [0x4000, 0x4000 + 128, 0x4000 + 152]);
    /// ```
    pub fn addresses(&self) -> [u64; 3] {
        let base = self.memory.device_address();
        [
            self.layout.desc_offset(),
            self.layout.avail_offset(),
            self.layout.used_offset(),
        ]
        .map(|offset| base + offset as u64)
    }

    /// Entries in the queue.
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Virtqueue};
    /// let q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// assert_eq!(q.queue_size(), 8);
    /// ```
    pub fn queue_size(&self) -> u16 {
        self.layout.queue_size()
    }

    /// Free descriptors: a request of that many segments or fewer fits now.
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
    /// let mut q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// q.add(&[Segment::new(0, 1)], &[Segment::new(8, 1)]).unwrap();
    /// assert_eq!(q.free_descriptors(), 6);
    /// ```
    pub fn free_descriptors(&self) -> u16 {
        self.descriptors.free()
    }

    /// Requests added and not yet completed (or abandoned by a reset).
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Virtqueue};
    /// let q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// assert_eq!(q.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// The device error that broke the queue, if one did.
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Virtqueue};
    /// let q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// assert_eq!(q.broken(), None);
    /// ```
    pub fn broken(&self) -> Option<DeviceError> {
        self.broken
    }

    /// Adds a request: `readable` segments (the device reads them), then
    /// `writable` ones (the device writes them), as one descriptor chain,
    /// and publishes it in the available ring. The device may pick it up at
    /// once if it polls; call [`kick`](Self::kick) to notify it (once after
    /// a batch of adds is enough).
    ///
    /// ```
    /// # use percore_virtqueue::{AddError, HostRegion, Layout, Segment, Virtqueue};
    /// let mut q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// let a = q.add(&[Segment::new(0x1000, 16)], &[Segment::new(0x2000, 512)]).unwrap();
    /// let b = q.add(&[], &[Segment::new(0x3000, 512)]).unwrap();
    /// assert_ne!(a, b);
    /// assert_eq!(q.add(&[], &[]), Err(AddError::Empty));
    /// ```
    pub fn add(
        &mut self,
        readable: &[Segment],
        writable: &[Segment],
    ) -> Result<RequestId, AddError> {
        if self.broken.is_some() {
            return Err(AddError::Broken);
        }
        let segments = readable.len() + writable.len();
        if segments == 0 {
            return Err(AddError::Empty);
        }
        if segments > usize::from(self.queue_size()) {
            return Err(AddError::TooManySegments {
                segments,
                queue_size: self.queue_size(),
            });
        }
        if segments > usize::from(self.descriptors.free()) {
            return Err(AddError::Full {
                needed: segments,
                free: self.descriptors.free(),
            });
        }
        if readable.iter().chain(writable).any(|s| s.len == 0) {
            return Err(AddError::ZeroLength);
        }
        let capacity = writable
            .iter()
            .fold(0u32, |sum, s| sum.saturating_add(s.len));
        let (memory, layout) = (&self.memory, &self.layout);
        let mut parts = readable
            .iter()
            .map(|s| (s, DescF::empty()))
            .chain(writable.iter().map(|s| (s, DescF::WRITE)));
        // `segments <= free <= queue_size <= 32768`, so it fits a u16.
        let head = self
            .descriptors
            .take(segments as u16, capacity, |desc, next| {
                let Some((segment, flags)) = parts.next() else {
                    return;
                };
                let flags = match next {
                    Some(_) => flags | DescF::NEXT,
                    None => flags,
                };
                let at = layout.desc(desc);
                memory.store_u64(at, segment.addr, Relaxed);
                memory.store_u32(at + 8, segment.len, Relaxed);
                memory.store_u16(at + 12, flags.bits().to_ne(), Relaxed);
                memory.store_u16(at + 14, next.unwrap_or(0), Relaxed);
            });
        let slot = self.avail_idx & (self.queue_size() - 1);
        self.memory
            .store_u16(self.layout.avail_ring(slot), head, Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // Release: the descriptors and the ring slot above are visible to a
        // device that reads this idx with Acquire (2.7.13, step 4's barrier).
        self.memory
            .store_u16(self.layout.avail_idx(), self.avail_idx, Release);
        self.unkicked += 1;
        self.in_flight += 1;
        Ok(RequestId(head))
    }

    /// Decides whether the device needs a notification for the requests
    /// added since the last kick, and if so rings `doorbell`. Returns
    /// whether it rang.
    ///
    /// With `EVENT_IDX` the device asks to hear about one entry
    /// (`avail_event`) and is notified iff an added entry is that one
    /// ([`need_event`]); otherwise it is notified unless `used.flags` says
    /// `NO_NOTIFY`.
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
    /// let mut q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, true).unwrap();
    /// let mut rung = 0;
    /// assert!(!q.kick(&mut || rung += 1)); // nothing added: no notification
    /// q.add(&[Segment::new(0x1000, 8)], &[]).unwrap();
    /// assert!(q.kick(&mut || rung += 1));
    /// q.add(&[Segment::new(0x1000, 8)], &[]).unwrap();
    /// assert!(!q.kick(&mut || rung += 1)); // the device has not run since: it will find entry 1 after 0
    /// assert_eq!(rung, 1);
    /// ```
    pub fn kick(&mut self, doorbell: &mut impl Notify) -> bool {
        // Full fence: our `avail.idx` store must be globally visible before
        // we read the device's `avail_event` / `used.flags`. The device does
        // the mirror image (store `avail_event`, fence, re-read `avail.idx`
        // before sleeping), so at least one side sees the other's store.
        fence(SeqCst);
        let need = if self.unkicked >= 1 << 16 {
            // `need_event`'s u16 window would wrap: always notify.
            true
        } else if self.event_idx {
            let event = self.memory.load_u16(self.layout.avail_event(), Relaxed);
            need_event(event, self.avail_idx, self.kicked_idx)
        } else {
            let flags = self.memory.load_u16(self.layout.used_flags(), Relaxed);
            self.unkicked != 0 && flags & UsedF::NO_NOTIFY.bits().to_ne() == 0
        };
        self.kicked_idx = self.avail_idx;
        self.unkicked = 0;
        if need {
            doorbell.notify();
        }
        need
    }

    /// Takes the next completion off the used ring, if the device has
    /// published one, after validating everything the device wrote.
    ///
    /// A misbehaving device gets a [`DeviceError`] and breaks the queue:
    /// from then on `add` refuses and `poll_used` returns the same error
    /// until [`reset`](Self::reset).
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Virtqueue};
    /// let mut q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// assert_eq!(q.poll_used(), Ok(None));
    /// ```
    pub fn poll_used(&mut self) -> Result<Option<Completion>, DeviceError> {
        if let Some(error) = self.broken {
            return Err(error);
        }
        // Acquire: pairs with the device's barrier before its `used.idx`
        // update (2.7.8.2), so the element below is the one it wrote.
        let used_idx = self.memory.load_u16(self.layout.used_idx(), Acquire);
        let pending = used_idx.wrapping_sub(self.last_used);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.in_flight {
            return Err(self.break_with(DeviceError::UsedIdxJump {
                used_idx,
                last_used: self.last_used,
                in_flight: self.in_flight,
            }));
        }
        let at = self
            .layout
            .used_ring(self.last_used & (self.queue_size() - 1));
        let id = self.memory.load_u32(at, Relaxed);
        let len = self.memory.load_u32(at + 4, Relaxed);
        let Some(capacity) = self.descriptors.in_flight(id) else {
            return Err(self.break_with(if id < u32::from(self.queue_size()) {
                DeviceError::NotInFlight { id }
            } else {
                DeviceError::BadId { id }
            }));
        };
        if len > capacity {
            return Err(self.break_with(DeviceError::BadLength { id, len, capacity }));
        }
        // `in_flight` returned `Some`, so `id` is a descriptor index.
        let head = id as u16;
        self.descriptors.release(head);
        self.in_flight -= 1;
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some(Completion {
            id: RequestId(head),
            written: len,
        }))
    }

    /// Asks the device not to interrupt: `avail.flags = NO_INTERRUPT`, or
    /// with `EVENT_IDX`, `used_event` set to the entry just behind what the
    /// driver consumed, which the device's used index can reach again only
    /// after 2^16 more completions (so at worst one spurious interrupt per
    /// 65 536 completions while disabled). Both are hints (2.7.7): the
    /// caller must still tolerate an interrupt.
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Virtqueue};
    /// let mut q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, true).unwrap();
    /// q.disable_interrupts();
    /// assert!(q.enable_interrupts()); // nothing completed: safe to sleep
    /// ```
    pub fn disable_interrupts(&mut self) {
        if self.event_idx {
            let behind = self.last_used.wrapping_sub(1);
            self.memory
                .store_u16(self.layout.used_event(), behind, Relaxed);
        } else {
            let flags = AvailF::NO_INTERRUPT.bits().to_ne();
            self.memory
                .store_u16(self.layout.avail_flags(), flags, Relaxed);
        }
    }

    /// Arms the interrupt for the next completion, then re-checks the used
    /// ring: returns `true` if it is still empty, so the caller may sleep
    /// until the interrupt, or `false` if completions arrived meanwhile (poll
    /// them, and call this again before sleeping).
    ///
    /// This is the lost-interrupt handshake (the readiness queue's
    /// `prepare_wait`): a completion published before the device could see
    /// the armed event would raise no interrupt, so the driver must look
    /// after arming. With `EVENT_IDX` an interrupt is one-shot: re-arm
    /// after each one.
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Virtqueue};
    /// let mut q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// assert!(q.enable_interrupts());
    /// ```
    #[must_use = "sleep only if this returns true"]
    pub fn enable_interrupts(&mut self) -> bool {
        if self.event_idx {
            // Interrupt when the device publishes the entry numbered
            // `last_used`: the first one we have not consumed.
            self.memory
                .store_u16(self.layout.used_event(), self.last_used, Relaxed);
        } else {
            self.memory.store_u16(self.layout.avail_flags(), 0, Relaxed);
        }
        // Full fence: the store above before the load below. The device
        // publishes `used.idx`, fences, then reads `used_event` / flags.
        fence(SeqCst);
        self.memory.load_u16(self.layout.used_idx(), Acquire) == self.last_used
    }

    /// Forgets every request in flight, calling `abandoned(id)` for each so
    /// the caller can fail them, and returns the queue to its state after
    /// [`new`](Self::new) (rings zeroed, every descriptor free, not broken).
    ///
    /// Call it only when the device no longer uses the queue: after a
    /// device reset (2.4), typically after a [`DeviceError`].
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, Segment, Virtqueue};
    /// let mut q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0).unwrap(), 8, false).unwrap();
    /// let id = q.add(&[Segment::new(0x1000, 8)], &[]).unwrap();
    /// let mut failed = Vec::new();
    /// q.reset(|id| failed.push(id));
    /// assert_eq!(failed, [id]);
    /// assert_eq!(q.free_descriptors(), 8);
    /// ```
    pub fn reset(&mut self, abandoned: impl FnMut(RequestId)) {
        let mut abandoned = abandoned;
        self.descriptors
            .abandon_all(|head| abandoned(RequestId(head)));
        self.avail_idx = 0;
        self.kicked_idx = 0;
        self.unkicked = 0;
        self.last_used = 0;
        self.in_flight = 0;
        self.broken = None;
        self.clear_ring_words();
    }

    /// The memory the queue lives in (a simulator reads the rings here).
    ///
    /// ```
    /// # use percore_virtqueue::{HostRegion, Layout, QueueMemory, Virtqueue};
    /// let q = Virtqueue::new(HostRegion::new(Layout::new(8).unwrap(), 0x4000).unwrap(), 8, false).unwrap();
    /// assert_eq!(q.memory().device_address(), 0x4000);
    /// ```
    pub fn memory(&self) -> &M {
        &self.memory
    }

    fn break_with(&mut self, error: DeviceError) -> DeviceError {
        self.broken = Some(error);
        error
    }

    /// Zeroes the index, flag and event words of both rings.
    fn clear_ring_words(&self) {
        let l = &self.layout;
        for at in [
            l.avail_flags(),
            l.avail_idx(),
            l.used_event(),
            l.used_flags(),
            l.used_idx(),
            l.avail_event(),
        ] {
            self.memory.store_u16(at, 0, Relaxed);
        }
    }
}
