//! Loading a program image: a static x86_64 ELF executable (`ET_EXEC`,
//! linked at a fixed address) checked segment by segment before anything
//! is mapped. The parser is the `elf` crate (zero-copy, returns errors on
//! truncated or inconsistent tables rather than panicking); the rules
//! about addresses and rights are ours:
//!
//! - every `PT_LOAD` segment's file bytes lie inside the file;
//! - `filesz <= memsz`;
//! - `vaddr + memsz` does not overflow and stays in the user region;
//! - no segment is writable and executable;
//! - segments do not overlap each other (by page);
//! - the entry point lies in an executable segment.

use alloc::vec::Vec;

use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::file::Class;
use percore_abi::{USER_BASE, USER_TOP};

use super::vm::{AddressSpace, VmError};
use crate::arch::user::Access;
use crate::mem::PAGE_SIZE;

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not a parsable ELF file (truncated, bad magic, bad tables).
    Malformed,
    /// Not a 64-bit little-endian x86_64 executable.
    NotExecutable,
    /// A segment's file bytes run past the end of the file.
    SegmentOutsideFile,
    /// A segment has more file bytes than memory bytes.
    FileLargerThanMemory,
    /// `vaddr + memsz` overflows.
    AddressOverflow,
    /// A segment reaches below the user base or above the user top.
    OutsideUserRegion,
    /// A segment is writable and executable.
    WritableAndExecutable,
    /// Two segments share a page.
    Overlap,
    /// No loadable segment, or more than [`MAX_SEGMENTS`].
    SegmentCount,
    /// The entry point is not inside an executable segment.
    EntryNotExecutable,
    /// Mapping failed (out of memory).
    NoMemory,
}

/// More `PT_LOAD` segments than a sane static program has.
pub const MAX_SEGMENTS: usize = 16;

/// One checked `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    pub access: Access,
}

impl Segment {
    /// The pages the segment covers, `[first, end)`.
    fn pages(&self) -> (u64, u64) {
        let first = self.vaddr - self.vaddr % PAGE_SIZE;
        // Cannot overflow: vaddr + memsz <= USER_TOP was checked.
        let end = (self.vaddr + self.memsz).next_multiple_of(PAGE_SIZE);
        (first, end)
    }
}

/// A checked image: where it starts and what to map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub entry: u64,
    pub segments: Vec<Segment>,
}

/// Checks `bytes` as a program image (nothing is mapped).
pub fn parse(bytes: &[u8]) -> Result<Image, ElfError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(|_| ElfError::Malformed)?;
    let header = &file.ehdr;
    if header.class != Class::ELF64 || header.e_machine != EM_X86_64 || header.e_type != ET_EXEC {
        return Err(ElfError::NotExecutable);
    }
    let table = file.segments().ok_or(ElfError::SegmentCount)?;
    let mut segments: Vec<Segment> = Vec::new();
    for header in table.iter().filter(|h| h.p_type == PT_LOAD) {
        if segments.len() == MAX_SEGMENTS {
            return Err(ElfError::SegmentCount);
        }
        let file_end = header
            .p_offset
            .checked_add(header.p_filesz)
            .ok_or(ElfError::SegmentOutsideFile)?;
        if file_end > bytes.len() as u64 {
            return Err(ElfError::SegmentOutsideFile);
        }
        if header.p_filesz > header.p_memsz {
            return Err(ElfError::FileLargerThanMemory);
        }
        let end = header
            .p_vaddr
            .checked_add(header.p_memsz)
            .ok_or(ElfError::AddressOverflow)?;
        if header.p_vaddr < USER_BASE || end > USER_TOP {
            return Err(ElfError::OutsideUserRegion);
        }
        let access = match (header.p_flags & PF_W != 0, header.p_flags & PF_X != 0) {
            (true, true) => return Err(ElfError::WritableAndExecutable),
            (true, false) => Access::ReadWrite,
            (false, true) => Access::ReadExecute,
            (false, false) => Access::Read,
        };
        let segment = Segment {
            vaddr: header.p_vaddr,
            memsz: header.p_memsz,
            offset: header.p_offset,
            filesz: header.p_filesz,
            access,
        };
        let (first, end) = segment.pages();
        if segment.memsz > 0
            && segments.iter().any(|s| {
                let (f, e) = s.pages();
                first < e && f < end
            })
        {
            return Err(ElfError::Overlap);
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(ElfError::SegmentCount);
    }
    let entry = header.e_entry;
    if !segments
        .iter()
        .any(|s| s.access.executable() && (s.vaddr..s.vaddr + s.memsz).contains(&entry))
    {
        return Err(ElfError::EntryNotExecutable);
    }
    Ok(Image { entry, segments })
}

/// Checks `bytes` and maps its segments into `space` (zero-filled past
/// each segment's file bytes). Returns the entry point.
pub fn load(bytes: &[u8], space: &mut AddressSpace) -> Result<u64, ElfError> {
    let image = parse(bytes)?;
    for segment in image.segments.iter().filter(|s| s.memsz > 0) {
        let (first, end) = segment.pages();
        space
            .map_zeroed(first, end - first, segment.access)
            .map_err(|error| match error {
                VmError::NoMemory => ElfError::NoMemory,
                _ => ElfError::Overlap,
            })?;
        // Within the file: checked by `parse`.
        let data = &bytes[segment.offset as usize..(segment.offset + segment.filesz) as usize];
        space
            .write(segment.vaddr, data)
            .map_err(|_| ElfError::NoMemory)?;
    }
    Ok(image.entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const BASE: u64 = 0x40_0000;

    /// A program header as (type, flags, offset, vaddr, filesz, memsz).
    type Ph = (u32, u32, u64, u64, u64, u64);

    /// A hand-made ELF64 executable: header, program headers, then
    /// `payload` bytes at offset 0x1000.
    fn elf(entry: u64, phs: &[Ph], payload: usize) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000 + payload];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little-endian
        b[6] = 1; // version
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
        for (i, &(kind, flags, offset, vaddr, filesz, memsz)) in phs.iter().enumerate() {
            let p = 64 + i * 56;
            b[p..p + 4].copy_from_slice(&kind.to_le_bytes());
            b[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
            b[p + 8..p + 16].copy_from_slice(&offset.to_le_bytes());
            b[p + 16..p + 24].copy_from_slice(&vaddr.to_le_bytes());
            b[p + 24..p + 32].copy_from_slice(&vaddr.to_le_bytes());
            b[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
            b[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
            b[p + 48..p + 56].copy_from_slice(&0x1000u64.to_le_bytes());
        }
        b
    }

    const RX: u32 = 5; // PF_R | PF_X
    const RW: u32 = 6;

    fn text(vaddr: u64, size: u64) -> Ph {
        (PT_LOAD, RX, 0x1000, vaddr, size, size)
    }

    #[test]
    fn a_good_image_loads_and_is_zero_filled() {
        let mut bytes = elf(
            BASE,
            &[
                text(BASE, 16),
                (PT_LOAD, RW, 0x1010, BASE + 0x1000, 4, 0x2000),
            ],
            32,
        );
        bytes[0x1010..0x1014].copy_from_slice(&[9, 8, 7, 6]);
        bytes[0x1000] = 0xCC;
        let before = crate::arch::user::frames_in_use();
        {
            let mut space = AddressSpace::new().unwrap();
            assert_eq!(load(&bytes, &mut space), Ok(BASE));
            assert_eq!(space.page_count(), 3);
            assert_eq!(space.access(BASE), Some(Access::ReadExecute));
            assert_eq!(space.access(BASE + 0x2000), Some(Access::ReadWrite));
            space.activate();
            let mut data = [0u8; 6];
            // SAFETY: a simulated copy from the active table.
            unsafe { crate::arch::user::copy_from_user(&mut data, BASE + 0x1000) };
            assert_eq!(data, [9, 8, 7, 6, 0, 0]);
        }
        assert_eq!(crate::arch::user::frames_in_use(), before);
    }

    #[test]
    fn bad_images_are_refused_with_their_reason() {
        let cases: &[(&str, Vec<u8>, ElfError)] = &[
            ("empty", Vec::new(), ElfError::Malformed),
            (
                "truncated header",
                elf(BASE, &[text(BASE, 16)], 16)[..40].to_vec(),
                ElfError::Malformed,
            ),
            (
                "segment outside the file",
                elf(BASE, &[(PT_LOAD, RX, 0x1000, BASE, 0x100, 0x100)], 16),
                ElfError::SegmentOutsideFile,
            ),
            (
                "offset + filesz overflows",
                elf(BASE, &[(PT_LOAD, RX, u64::MAX - 4, BASE, 16, 16)], 16),
                ElfError::SegmentOutsideFile,
            ),
            (
                "filesz > memsz",
                elf(BASE, &[(PT_LOAD, RX, 0x1000, BASE, 16, 8)], 16),
                ElfError::FileLargerThanMemory,
            ),
            (
                "vaddr + memsz overflows",
                elf(
                    BASE,
                    &[
                        text(BASE, 16),
                        (PT_LOAD, RW, 0x1000, u64::MAX - 8, 0, 0x100),
                    ],
                    16,
                ),
                ElfError::AddressOverflow,
            ),
            (
                "kernel-half segment",
                elf(
                    BASE,
                    &[
                        text(BASE, 16),
                        (PT_LOAD, RW, 0x1000, 0xFFFF_8000_0000_0000, 0, 0x100),
                    ],
                    16,
                ),
                ElfError::OutsideUserRegion,
            ),
            (
                "across the user top",
                elf(
                    BASE,
                    &[
                        text(BASE, 16),
                        (PT_LOAD, RW, 0x1000, USER_TOP - 0x10, 0, 0x100),
                    ],
                    16,
                ),
                ElfError::OutsideUserRegion,
            ),
            (
                "null page",
                elf(0, &[text(0, 16)], 16),
                ElfError::OutsideUserRegion,
            ),
            (
                "writable and executable",
                elf(BASE, &[(PT_LOAD, 7, 0x1000, BASE, 16, 16)], 16),
                ElfError::WritableAndExecutable,
            ),
            (
                "entry in data",
                elf(
                    BASE + 0x1000,
                    &[text(BASE, 16), (PT_LOAD, RW, 0x1000, BASE + 0x1000, 16, 16)],
                    16,
                ),
                ElfError::EntryNotExecutable,
            ),
            (
                "entry past text",
                elf(BASE + 16, &[text(BASE, 16)], 16),
                ElfError::EntryNotExecutable,
            ),
            (
                "overlapping segments",
                elf(
                    BASE,
                    &[text(BASE, 16), (PT_LOAD, RW, 0x1000, BASE + 0x800, 16, 16)],
                    16,
                ),
                ElfError::Overlap,
            ),
            ("no segments", elf(BASE, &[], 16), ElfError::SegmentCount),
        ];
        for (what, bytes, error) in cases {
            assert_eq!(parse(bytes), Err(*error), "{what}");
            let mut space = AddressSpace::new().unwrap();
            assert_eq!(load(bytes, &mut space), Err(*error), "{what}");
            assert_eq!(space.page_count(), 0, "{what}");
        }
    }

    #[test]
    fn header_fields_are_checked() {
        let mut wrong_machine = elf(BASE, &[text(BASE, 16)], 16);
        wrong_machine[18] = 3; // EM_386
        assert_eq!(parse(&wrong_machine), Err(ElfError::NotExecutable));
        let mut shared_object = elf(BASE, &[text(BASE, 16)], 16);
        shared_object[16] = 3; // ET_DYN
        assert_eq!(parse(&shared_object), Err(ElfError::NotExecutable));
        let mut table_past_end = elf(BASE, &[text(BASE, 16)], 16);
        table_past_end[32..40].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
        assert_eq!(parse(&table_past_end), Err(ElfError::Malformed));
    }
}
