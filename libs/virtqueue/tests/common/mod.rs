//! A simulated virtio device for host tests: it reads the available ring
//! and descriptor chains out of the queue's memory exactly as a device
//! would (through device addresses), moves data through a simulated bus,
//! and writes used elements, honestly or as garbage.

#![allow(dead_code)] // each test file uses a different part of the simulator

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::fence;

use percore_virtqueue::{Layout, QueueMemory, Segment, need_event};

/// Device-visible memory for data buffers, starting at device address `base`.
pub struct Bus {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl Bus {
    pub fn new(base: u64) -> Self {
        Bus {
            base,
            bytes: Vec::new(),
        }
    }

    /// A new buffer of `len` bytes filled with `fill`.
    pub fn alloc(&mut self, len: u32, fill: u8) -> Segment {
        let addr = self.base + self.bytes.len() as u64;
        self.bytes.extend(std::iter::repeat_n(fill, len as usize));
        Segment::new(addr, len)
    }

    pub fn slice(&self, s: Segment) -> &[u8] {
        let start = (s.addr - self.base) as usize;
        &self.bytes[start..start + s.len as usize]
    }

    pub fn slice_mut(&mut self, s: Segment) -> &mut [u8] {
        let start = (s.addr - self.base) as usize;
        &mut self.bytes[start..start + s.len as usize]
    }
}

/// A request as the device sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRequest {
    pub head: u16,
    pub readable: Vec<Segment>,
    pub writable: Vec<Segment>,
}

impl DeviceRequest {
    pub fn capacity(&self) -> u32 {
        self.writable.iter().map(|s| s.len).sum()
    }
}

/// The device half of one queue.
pub struct SimDevice {
    pub layout: Layout,
    pub event_idx: bool,
    /// Available entries consumed.
    pub last_avail: u16,
    /// `used.idx` as published.
    pub used_idx: u16,
    /// Fetched, not yet completed.
    pub pending: Vec<DeviceRequest>,
    /// Interrupts raised.
    pub interrupts: u32,
}

impl SimDevice {
    pub fn new(queue_size: u16, event_idx: bool) -> Self {
        SimDevice {
            layout: Layout::new(queue_size).unwrap(),
            event_idx,
            last_avail: 0,
            used_idx: 0,
            pending: Vec::new(),
            interrupts: 0,
        }
    }

    /// Entries the driver published that the device has not fetched.
    pub fn unseen(&self, mem: &impl QueueMemory) -> u16 {
        mem.load_u16(self.layout.avail_idx(), Acquire)
            .wrapping_sub(self.last_avail)
    }

    /// Fetches every newly available request (walking its chain).
    pub fn fetch(&mut self, mem: &impl QueueMemory) -> usize {
        let avail = mem.load_u16(self.layout.avail_idx(), Acquire);
        let mut n = 0;
        while self.last_avail != avail {
            let slot = self.last_avail & (self.layout.queue_size() - 1);
            let head = mem.load_u16(self.layout.avail_ring(slot), Relaxed);
            self.pending.push(self.walk(mem, head));
            self.last_avail = self.last_avail.wrapping_add(1);
            n += 1;
        }
        n
    }

    fn walk(&self, mem: &impl QueueMemory, head: u16) -> DeviceRequest {
        let mut req = DeviceRequest {
            head,
            readable: Vec::new(),
            writable: Vec::new(),
        };
        let mut desc = head;
        for _ in 0..self.layout.queue_size() {
            let at = self.layout.desc(desc);
            let seg = Segment::new(mem.load_u64(at, Relaxed), mem.load_u32(at + 8, Relaxed));
            let flags = mem.load_u16(at + 12, Relaxed);
            if flags & 2 != 0 {
                req.writable.push(seg);
            } else {
                assert!(req.writable.is_empty(), "readable after writable");
                req.readable.push(seg);
            }
            if flags & 1 == 0 {
                return req;
            }
            desc = mem.load_u16(at + 14, Relaxed);
        }
        panic!("descriptor chain loops");
    }

    /// Completes pending request `i`: fills `written` bytes of its writable
    /// segments with its head number and publishes the used element.
    pub fn complete(&mut self, mem: &impl QueueMemory, bus: &mut Bus, i: usize, written: u32) {
        let req = self.pending.remove(i);
        let mut left = written;
        for &s in &req.writable {
            let n = left.min(s.len);
            bus.slice_mut(s)[..n as usize].fill(req.head as u8);
            left -= n;
        }
        assert_eq!(left, 0, "test asked to write more than the buffers hold");
        self.complete_raw(mem, u32::from(req.head), written);
    }

    /// Writes any used element and publishes it, then decides on an
    /// interrupt (2.7.10).
    pub fn complete_raw(&mut self, mem: &impl QueueMemory, id: u32, len: u32) {
        let slot = self.used_idx & (self.layout.queue_size() - 1);
        let at = self.layout.used_ring(slot);
        mem.store_u32(at, id, Relaxed);
        mem.store_u32(at + 4, len, Relaxed);
        let old = self.used_idx;
        self.used_idx = self.used_idx.wrapping_add(1);
        self.publish_used(mem, old);
    }

    /// Publishes `used.idx` (Release), fences, reads the driver's wish.
    pub fn publish_used(&mut self, mem: &impl QueueMemory, old: u16) {
        mem.store_u16(self.layout.used_idx(), self.used_idx, Release);
        fence(SeqCst);
        let interrupt = if self.event_idx {
            need_event(
                mem.load_u16(self.layout.used_event(), Relaxed),
                self.used_idx,
                old,
            )
        } else {
            mem.load_u16(self.layout.avail_flags(), Relaxed) & 1 == 0
        };
        if interrupt {
            self.interrupts += 1;
        }
    }

    /// Sets `used.idx` to anything (a garbage device), without an element.
    pub fn set_used_idx(&mut self, mem: &impl QueueMemory, idx: u16) {
        self.used_idx = idx;
        mem.store_u16(self.layout.used_idx(), idx, Release);
    }

    /// While busy: ask not to be notified (flag mode only; in event-idx
    /// mode `avail_event` simply goes stale, as on a real device).
    pub fn busy(&self, mem: &impl QueueMemory) {
        if !self.event_idx {
            mem.store_u16(self.layout.used_flags(), 1, Relaxed);
        }
    }

    /// Going to sleep: ask to be notified of the next entry, fence, and
    /// re-check the available ring. Returns `true` if it may sleep.
    pub fn prepare_sleep(&self, mem: &impl QueueMemory) -> bool {
        if self.event_idx {
            mem.store_u16(self.layout.avail_event(), self.last_avail, Relaxed);
        } else {
            mem.store_u16(self.layout.used_flags(), 0, Relaxed);
        }
        fence(SeqCst);
        self.unseen(mem) == 0
    }
}
