//! User page tables: one level-4 table per address space, whose upper half
//! (entries 256..512) is the kernel's, copied at creation (the kernel's
//! virtual space lives in level-4 slots that exist from boot on, so the
//! copies stay in step). The lower half holds only user pages, every level
//! marked user-accessible, each leaf with the rights of one [`Access`]:
//! never writable and executable at once.
//!
//! The tables are edited through the bootloader's physical-memory window
//! with the `x86_64` crate's `OffsetPageTable`. Leaf frames belong to the
//! caller (`process`), which allocates them with [`alloc_frame`] and frees
//! them; the tables' own frames are freed when the [`Table`] is dropped.

use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::TranslateResult;
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr as X86Phys, VirtAddr};

use super::paging::{self, Frames};
use crate::arch::user::Access;
use crate::mem::{self, MemoryError, PAGE_SIZE, PhysAddr};

/// One past the last user address (the lower canonical half).
const USER_END: u64 = 1 << 47;

/// The kernel-window pointer to physical address `phys`.
fn window(phys: u64) -> *mut u8 {
    (paging::phys_offset() + phys) as *mut u8
}

/// Takes a zeroed frame.
pub fn alloc_frame() -> Result<PhysAddr, MemoryError> {
    let frame = mem::with(|m| m.frames.allocate())?.ok_or(MemoryError::OutOfFrames)?;
    // SAFETY: the frame was just handed to us; the window maps it writable.
    unsafe { core::ptr::write_bytes(window(frame.0), 0, PAGE_SIZE as usize) };
    Ok(frame)
}

/// Gives back a frame from [`alloc_frame`].
///
/// # Safety
/// Nothing may map or use `frame` any more.
pub unsafe fn free_frame(frame: PhysAddr) {
    // SAFETY: forwarded to the caller.
    let _ = mem::with(|m| unsafe { m.frames.free(frame) });
}

/// Copies `bytes` into frame `frame` at `offset` (through the kernel window).
pub fn write_frame(frame: PhysAddr, offset: usize, bytes: &[u8]) {
    let end = offset.saturating_add(bytes.len());
    assert!(end <= PAGE_SIZE as usize, "write past the end of a frame");
    // SAFETY: the range is inside one frame the caller owns; the window maps it.
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), window(frame.0).add(offset), bytes.len())
    };
}

/// Where the kernel reaches frame `frame` (its physical-memory window):
/// a pointer to its first byte, valid for a page. For memory the kernel
/// keeps shared with a process for good (its ring pair): the caller moves
/// bytes through it only by copies, never by a Rust reference.
pub fn frame_ptr(frame: PhysAddr) -> *mut u8 {
    window(frame.0)
}

/// Frames handed out (all of them, kernel and user), for leak checks.
pub fn frames_in_use() -> u64 {
    mem::with(|m| m.frames.allocated_frames()).unwrap_or(0)
}

/// A user address space's page table.
pub struct Table {
    l4: u64,
}

impl Table {
    /// An empty lower half over the kernel's upper half.
    pub fn new() -> Result<Table, MemoryError> {
        let l4 = alloc_frame()?.0;
        let kernel = window(paging::kernel_l4()).cast::<PageTable>();
        let table = window(l4).cast::<PageTable>();
        // SAFETY: both are level-4 tables reached through the window; the
        // new one is ours alone, the kernel's is only read (its upper-half
        // entries change only at boot).
        unsafe {
            for i in 256..512 {
                (&mut (*table))[i] = (&(*kernel))[i].clone();
            }
        }
        Ok(Table { l4 })
    }

    fn mapper(&mut self) -> OffsetPageTable<'_> {
        // SAFETY: `l4` is this table's own level-4 frame; `&mut self` makes
        // this the only reference to it.
        let l4 = unsafe { &mut *window(self.l4).cast::<PageTable>() };
        // SAFETY: the window maps all physical memory at this offset.
        unsafe { OffsetPageTable::new(l4, VirtAddr::new(paging::phys_offset())) }
    }

    /// Maps the page at `page` (lower half, page-aligned) to `frame`.
    pub fn map(&mut self, page: u64, frame: PhysAddr, access: Access) -> Result<(), MemoryError> {
        if page >= USER_END || !page.is_multiple_of(PAGE_SIZE) {
            return Err(MemoryError::MapFailed);
        }
        let mut flags = Flags::PRESENT | Flags::USER_ACCESSIBLE;
        match access {
            Access::Read => flags |= Flags::NO_EXECUTE,
            Access::ReadWrite => flags |= Flags::NO_EXECUTE | Flags::WRITABLE,
            Access::ReadExecute => {}
        }
        let parents = Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE;
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
        let frame = PhysFrame::containing_address(X86Phys::new(frame.0));
        let mut mapper = self.mapper();
        mem::with(|m| {
            // SAFETY: a lower-half page of this address space (never the
            // kernel's) to a frame the caller owns.
            unsafe {
                mapper.map_to_with_table_flags(
                    page,
                    frame,
                    flags,
                    parents,
                    &mut Frames(&mut m.frames),
                )
            }
            .map(|flush| flush.flush())
            .map_err(|_| MemoryError::MapFailed)
        })?
    }

    /// Unmaps the page at `page`; returns the frame it mapped.
    pub fn unmap(&mut self, page: u64) -> Option<PhysAddr> {
        if page >= USER_END {
            return None;
        }
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
        let (frame, flush) = self.mapper().unmap(page).ok()?;
        flush.flush();
        Some(PhysAddr(frame.start_address().as_u64()))
    }

    /// The frame and rights of the page holding `addr`, if it is a mapped
    /// user page.
    pub fn lookup(&mut self, addr: u64) -> Option<(PhysAddr, Access)> {
        if addr >= USER_END {
            return None;
        }
        match self.mapper().translate(VirtAddr::new(addr)) {
            TranslateResult::Mapped { frame, flags, .. }
                if flags.contains(Flags::USER_ACCESSIBLE) =>
            {
                let access = if flags.contains(Flags::WRITABLE) {
                    Access::ReadWrite
                } else if flags.contains(Flags::NO_EXECUTE) {
                    Access::Read
                } else {
                    Access::ReadExecute
                };
                Some((PhysAddr(frame.start_address().as_u64()), access))
            }
            _ => None,
        }
    }

    /// Makes this the running core's address space (a no-op if it is).
    pub fn activate(&self) {
        load(self.l4);
    }

    /// Whether this is the running core's address space.
    pub fn is_active(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.l4
    }
}

/// Loads `l4` into CR3 unless it is there (a reload flushes the TLB).
fn load(l4: u64) {
    if Cr3::read().0.start_address().as_u64() != l4 {
        let frame = PhysFrame::containing_address(X86Phys::new(l4));
        // SAFETY: `l4` is the kernel's table or a user table whose upper
        // half is the kernel's: the kernel keeps running unchanged.
        unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    }
}

/// Frees the lower-half tables under `table` (at `level`, 4 to 2); the
/// leaf frames are the owner's.
fn free_tables(table: u64, level: u8) {
    let entries = if level == 4 { 256 } else { 512 };
    for i in 0..entries {
        // SAFETY: `table` is a page table of a dropped address space,
        // reached through the window; nothing else uses it any more.
        let entry = unsafe { &(&*window(table).cast::<PageTable>())[i] };
        if level > 2 && entry.flags().contains(Flags::PRESENT) {
            free_tables(entry.addr().as_u64(), level - 1);
        } else if level == 2 && entry.flags().contains(Flags::PRESENT) {
            // SAFETY: a level-1 table of this address space alone.
            unsafe { free_frame(PhysAddr(entry.addr().as_u64())) };
        }
    }
    if level < 4 {
        // SAFETY: as above.
        unsafe { free_frame(PhysAddr(table)) };
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if self.is_active() {
            load(paging::kernel_l4());
        }
        free_tables(self.l4, 4);
        // SAFETY: the level-4 frame is no longer loaded anywhere (an
        // address space runs on one core, this one).
        unsafe { free_frame(PhysAddr(self.l4)) };
    }
}
