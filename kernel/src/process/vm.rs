//! A process's address space: its page table (arch) and the frames mapped
//! in it, with the rules every user mapping keeps.
//!
//! - User mappings lie in `[USER_BASE, USER_TOP)` only: the first page
//!   (null) and the whole upper half (the kernel's) are never user pages.
//! - W^X: a page is readable, read-write or read-execute ([`Access`]),
//!   never writable and executable.
//! - A stack sits above an unmapped guard page that nothing else may be
//!   mapped over, so running off its end is a page fault, not an overwrite.
//! - Every frame mapped here is owned here and freed when the address
//!   space drops; the page table frees its own tables.
//! - Pinned pages ([`AddressSpace::pin`]) cannot be unmapped until they
//!   are unpinned: the kernel holds their frames to reach them directly
//!   (a ring pair), so they must stay the frames the process sees.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use percore_abi::{USER_BASE, USER_TOP};

use crate::arch::user::{self, Access, Table};
use crate::mem::{MemoryError, PAGE_SIZE, PhysAddr};

/// Why a mapping was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmError {
    /// Not inside `[USER_BASE, USER_TOP)`, or `start + len` overflows.
    OutOfRange,
    /// Not page-aligned.
    Misaligned,
    /// Overlaps a page already mapped, or a stack's guard page.
    Overlap,
    /// The address is not mapped.
    NotMapped,
    /// Out of frames or page-table memory.
    NoMemory,
    /// Pinned by the kernel ([`AddressSpace::pin`]).
    Pinned,
}

impl From<MemoryError> for VmError {
    fn from(_: MemoryError) -> VmError {
        VmError::NoMemory
    }
}

/// One process's user address space.
pub struct AddressSpace {
    table: Table,
    /// Every mapped page and the frame behind it.
    pages: BTreeMap<u64, PhysAddr>,
    /// Guard pages: kept unmapped for good.
    guards: BTreeSet<u64>,
    /// Pages whose frames the kernel holds: not unmapped while pinned.
    pinned: BTreeSet<u64>,
}

impl AddressSpace {
    /// An empty address space (the kernel half only).
    pub fn new() -> Result<AddressSpace, VmError> {
        Ok(AddressSpace {
            table: Table::new()?,
            pages: BTreeMap::new(),
            guards: BTreeSet::new(),
            pinned: BTreeSet::new(),
        })
    }

    /// The pages `[start, start + len)` as a range of page addresses,
    /// after checking it is page-aligned and inside the user region.
    fn pages_of(start: u64, len: u64) -> Result<core::ops::Range<u64>, VmError> {
        if !start.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(VmError::Misaligned);
        }
        let end = start.checked_add(len).ok_or(VmError::OutOfRange)?;
        if start < USER_BASE || end > USER_TOP || len == 0 {
            return Err(VmError::OutOfRange);
        }
        Ok(start..end)
    }

    /// Maps fresh zeroed frames over `[start, start + len)` (page-aligned)
    /// with `access`. Nothing is mapped if any page is taken.
    pub fn map_zeroed(&mut self, start: u64, len: u64, access: Access) -> Result<(), VmError> {
        let range = Self::pages_of(start, len)?;
        if self.pages.range(range.clone()).next().is_some()
            || self.guards.range(range.clone()).next().is_some()
        {
            return Err(VmError::Overlap);
        }
        for page in range.step_by(PAGE_SIZE as usize) {
            let frame = user::alloc_frame()?;
            if let Err(error) = self.table.map(page, frame, access) {
                // SAFETY: the frame was never mapped.
                unsafe { user::free_frame(frame) };
                return Err(error.into());
            }
            self.pages.insert(page, frame);
        }
        Ok(())
    }

    /// Unmaps `[start, start + len)` (page-aligned, every page mapped by
    /// [`map_zeroed`](Self::map_zeroed)) and frees its frames.
    pub fn unmap(&mut self, start: u64, len: u64) -> Result<(), VmError> {
        let range = Self::pages_of(start, len)?;
        if range
            .clone()
            .step_by(PAGE_SIZE as usize)
            .any(|page| !self.pages.contains_key(&page))
        {
            return Err(VmError::NotMapped);
        }
        if self.pinned.range(range.clone()).next().is_some() {
            return Err(VmError::Pinned);
        }
        for page in range.step_by(PAGE_SIZE as usize) {
            if let Some(frame) = self.pages.remove(&page) {
                self.table.unmap(page);
                // SAFETY: the frame was mapped only here and is unmapped now.
                unsafe { user::free_frame(frame) };
            }
        }
        Ok(())
    }

    /// Pins the mapped pages `[start, start + len)` (page-aligned) and
    /// returns their frames in order: until [`unpin`](Self::unpin), they
    /// stay mapped to exactly these frames (`unmap` refuses them), so the
    /// kernel may reach the memory through the frames.
    pub fn pin(&mut self, start: u64, len: u64) -> Result<Vec<PhysAddr>, VmError> {
        let range = Self::pages_of(start, len)?;
        let frames = range
            .clone()
            .step_by(PAGE_SIZE as usize)
            .map(|page| self.pages.get(&page).copied().ok_or(VmError::NotMapped))
            .collect::<Result<Vec<_>, _>>()?;
        self.pinned.extend(range.step_by(PAGE_SIZE as usize));
        Ok(frames)
    }

    /// Lets the pages `[start, start + len)` be unmapped again (the kernel
    /// no longer reaches them through their frames).
    pub fn unpin(&mut self, start: u64, len: u64) {
        if let Ok(range) = Self::pages_of(start, len) {
            for page in range.step_by(PAGE_SIZE as usize) {
                self.pinned.remove(&page);
            }
        }
    }

    /// Maps a stack of `size` bytes ending at `top` (both page-aligned),
    /// writable, with an unmapped guard page below it. Returns the initial
    /// stack pointer (`top`).
    pub fn map_stack(&mut self, top: u64, size: u64) -> Result<u64, VmError> {
        let bottom = top.checked_sub(size).ok_or(VmError::OutOfRange)?;
        let guard = bottom.checked_sub(PAGE_SIZE).ok_or(VmError::OutOfRange)?;
        Self::pages_of(guard, PAGE_SIZE)?;
        if self.pages.contains_key(&guard) {
            return Err(VmError::Overlap);
        }
        self.map_zeroed(bottom, size, Access::ReadWrite)?;
        self.guards.insert(guard);
        Ok(top)
    }

    /// Writes `bytes` at `addr` through the frames (whatever the pages'
    /// rights: this is the loader filling a fresh image, not a user copy).
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), VmError> {
        let mut done = 0usize;
        while done < bytes.len() {
            let at = addr.checked_add(done as u64).ok_or(VmError::OutOfRange)?;
            let page = at - at % PAGE_SIZE;
            let frame = *self.pages.get(&page).ok_or(VmError::NotMapped)?;
            let offset = (at - page) as usize;
            let chunk = (PAGE_SIZE as usize - offset).min(bytes.len() - done);
            user::write_frame(frame, offset, &bytes[done..done + chunk]);
            done += chunk;
        }
        Ok(())
    }

    /// The rights of the page holding `addr`, if it is mapped.
    pub fn access(&mut self, addr: u64) -> Option<Access> {
        self.table.lookup(addr).map(|(_, access)| access)
    }

    /// Makes this the running core's address space.
    pub fn activate(&self) {
        self.table.activate();
    }

    /// Pages mapped.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Whether `page` is a stack guard page.
    pub fn is_guard(&self, addr: u64) -> bool {
        self.guards.contains(&(addr - addr % PAGE_SIZE))
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        for (page, frame) in core::mem::take(&mut self.pages) {
            self.table.unmap(page);
            // SAFETY: the frame was mapped only here and is unmapped now.
            unsafe { user::free_frame(frame) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teardown_frees_every_frame() {
        let before = user::frames_in_use();
        {
            let mut space = AddressSpace::new().unwrap();
            space
                .map_zeroed(0x40_0000, 3 * PAGE_SIZE, Access::ReadExecute)
                .unwrap();
            space.map_stack(0x7000_0000, 4 * PAGE_SIZE).unwrap();
            assert_eq!(user::frames_in_use(), before + 7);
            assert_eq!(space.page_count(), 7);
        }
        assert_eq!(user::frames_in_use(), before);
    }

    #[test]
    fn only_the_user_region_is_mappable() {
        let mut space = AddressSpace::new().unwrap();
        let rw = Access::ReadWrite;
        assert_eq!(space.map_zeroed(0, PAGE_SIZE, rw), Err(VmError::OutOfRange));
        assert_eq!(
            space.map_zeroed(USER_TOP, PAGE_SIZE, rw),
            Err(VmError::OutOfRange)
        );
        assert_eq!(
            space.map_zeroed(USER_TOP - PAGE_SIZE, 2 * PAGE_SIZE, rw),
            Err(VmError::OutOfRange)
        );
        assert_eq!(
            space.map_zeroed(0xFFFF_8000_0000_0000, PAGE_SIZE, rw),
            Err(VmError::OutOfRange)
        );
        assert_eq!(
            space.map_zeroed(u64::MAX - 0xFFF, PAGE_SIZE, rw),
            Err(VmError::OutOfRange)
        );
        assert_eq!(
            space.map_zeroed(0x40_0010, PAGE_SIZE, rw),
            Err(VmError::Misaligned)
        );
        assert_eq!(
            space.map_zeroed(USER_TOP - PAGE_SIZE, PAGE_SIZE, rw),
            Ok(())
        );
    }

    #[test]
    fn overlaps_and_guard_pages_are_refused() {
        let mut space = AddressSpace::new().unwrap();
        let top = 0x7000_0000;
        space.map_stack(top, 2 * PAGE_SIZE).unwrap();
        let guard = top - 3 * PAGE_SIZE;
        assert!(space.is_guard(guard));
        assert_eq!(space.access(guard), None);
        assert_eq!(
            space.map_zeroed(guard, PAGE_SIZE, Access::ReadWrite),
            Err(VmError::Overlap)
        );
        assert_eq!(
            space.map_zeroed(top - PAGE_SIZE, PAGE_SIZE, Access::Read),
            Err(VmError::Overlap)
        );
        assert_eq!(space.access(top - PAGE_SIZE), Some(Access::ReadWrite));
    }

    #[test]
    fn pinned_pages_stay_until_unpinned() {
        let mut space = AddressSpace::new().unwrap();
        let at = 0x40_0000;
        space
            .map_zeroed(at, 3 * PAGE_SIZE, Access::ReadWrite)
            .unwrap();
        assert_eq!(
            space.pin(at, 4 * PAGE_SIZE),
            Err(VmError::NotMapped),
            "every page must be mapped"
        );
        let frames = space.pin(at, 3 * PAGE_SIZE).unwrap();
        assert_eq!(frames.len(), 3);
        for (i, frame) in frames.iter().enumerate() {
            let page = at + i as u64 * PAGE_SIZE;
            assert_eq!(space.table.lookup(page).map(|(f, _)| f), Some(*frame));
        }
        assert_eq!(space.unmap(at, 3 * PAGE_SIZE), Err(VmError::Pinned));
        assert_eq!(space.unmap(at + PAGE_SIZE, PAGE_SIZE), Err(VmError::Pinned));
        assert_eq!(
            space.map_zeroed(at, PAGE_SIZE, Access::ReadWrite),
            Err(VmError::Overlap)
        );
        assert_eq!(space.access(at), Some(Access::ReadWrite), "still mapped");
        space.unpin(at, 3 * PAGE_SIZE);
        assert_eq!(space.unmap(at, 3 * PAGE_SIZE), Ok(()));
        assert_eq!(space.page_count(), 0);
    }

    #[test]
    fn written_bytes_land_across_pages() {
        let mut space = AddressSpace::new().unwrap();
        space
            .map_zeroed(0x40_0000, 2 * PAGE_SIZE, Access::Read)
            .unwrap();
        space.write(0x40_0ffe, &[1, 2, 3, 4]).unwrap();
        space.activate();
        let mut back = [0u8; 6];
        // SAFETY: a simulated copy from the active table.
        let left = unsafe { user::copy_from_user(&mut back, 0x40_0ffd) };
        assert_eq!((left, back), (0, [0, 1, 2, 3, 4, 0]));
        assert_eq!(space.write(0x40_2000, &[1]), Err(VmError::NotMapped));
    }
}
