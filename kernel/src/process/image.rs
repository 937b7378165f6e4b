//! The programs the kernel can run: files of a cpio archive ("newc"
//! format, the one `cargo xtask` packs and the bootloader loads as its
//! ramdisk). The archive is parsed once at boot, with every offset checked
//! against its length; a malformed archive leaves the programs found
//! before the damage and is reported.

use alloc::vec::Vec;

/// One program: its name (the file name) and its ELF bytes.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    pub name: &'static str,
    pub bytes: &'static [u8],
}

/// Why the archive could not be read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// An entry header is cut off or has no `070701` magic.
    BadHeader { offset: usize },
    /// A header field is not hexadecimal.
    BadField { offset: usize },
    /// A name or file runs past the end.
    Truncated { offset: usize },
}

static PROGRAMS: spin::Once<Vec<Program>> = spin::Once::new();

const HEADER: usize = 110;

fn field(header: &[u8], index: usize, offset: usize) -> Result<usize, ArchiveError> {
    let text = &header[6 + index * 8..6 + (index + 1) * 8];
    let text = core::str::from_utf8(text).map_err(|_| ArchiveError::BadField { offset })?;
    usize::from_str_radix(text, 16).map_err(|_| ArchiveError::BadField { offset })
}

/// The regular files of a newc archive, in order, and whether it was read
/// to its trailer without damage.
pub fn parse(archive: &'static [u8]) -> (Vec<Program>, Result<(), ArchiveError>) {
    let mut programs = Vec::new();
    let mut offset = 0;
    loop {
        let Some(header) = archive.get(offset..offset + HEADER) else {
            return (programs, Err(ArchiveError::BadHeader { offset }));
        };
        if &header[..6] != b"070701" {
            return (programs, Err(ArchiveError::BadHeader { offset }));
        }
        let fields = (
            field(header, 1, offset),
            field(header, 6, offset),
            field(header, 11, offset),
        );
        let (mode, size, name_size) = match fields {
            (Ok(m), Ok(s), Ok(n)) => (m, s, n),
            _ => return (programs, Err(ArchiveError::BadField { offset })),
        };
        let name_start = offset + HEADER;
        let data_start = (name_start + name_size).next_multiple_of(4);
        let data_end = data_start.checked_add(size);
        let (Some(name), Some(data)) = (
            archive.get(name_start..(name_start + name_size).saturating_sub(1)),
            data_end.and_then(|end| archive.get(data_start..end)),
        ) else {
            return (programs, Err(ArchiveError::Truncated { offset }));
        };
        let Ok(name) = core::str::from_utf8(name) else {
            return (programs, Err(ArchiveError::BadField { offset }));
        };
        if name == "TRAILER!!!" {
            return (programs, Ok(()));
        }
        // Regular files only (S_IFREG); directories and the rest are skipped.
        if mode & 0o170_000 == 0o100_000 {
            let name = name.rsplit('/').next().unwrap_or(name);
            programs.push(Program { name, bytes: data });
        }
        offset = (data_start + size).next_multiple_of(4);
    }
}

/// Registers the programs of the boot archive (once; later calls are ignored).
pub fn init(archive: &'static [u8]) {
    let (programs, result) = parse(archive);
    if let Err(error) = result {
        log::error!(
            "programs: boot archive damaged ({error:?}); {} read before",
            programs.len()
        );
    }
    log::info!("programs: {} in the boot archive", programs.len());
    PROGRAMS.call_once(|| programs);
}

/// The program called `name`.
pub fn find(name: &str) -> Option<Program> {
    all().iter().find(|p| p.name == name).copied()
}

/// Every program, in archive order.
pub fn all() -> &'static [Program] {
    PROGRAMS.get().map_or(&[], |p| &p[..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    fn entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
        out.extend_from_slice(b"070701");
        let fields = [
            0,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    fn leak(v: Vec<u8>) -> &'static [u8] {
        alloc::boxed::Box::leak(v.into_boxed_slice())
    }

    #[test]
    fn files_are_found_and_directories_skipped() {
        let mut a = Vec::new();
        entry(&mut a, "bin", 0o040_755, &[]);
        entry(&mut a, "bin/hello", 0o100_755, b"ELF1");
        entry(&mut a, "spin", 0o100_755, b"ELF22");
        entry(&mut a, "TRAILER!!!", 0, &[]);
        let (programs, result) = parse(leak(a));
        assert_eq!(result, Ok(()));
        let names: Vec<_> = programs.iter().map(|p| (p.name, p.bytes)).collect();
        assert_eq!(names, [("hello", &b"ELF1"[..]), ("spin", &b"ELF22"[..])]);
    }

    #[test]
    fn damage_is_reported_not_followed() {
        let mut a = Vec::new();
        entry(&mut a, "hello", 0o100_755, b"ELF1");
        let good = a.len();
        entry(&mut a, "big", 0o100_755, &[7; 64]);
        // Claim a file far larger than the archive.
        a[good + 6 + 6 * 8..good + 6 + 7 * 8].copy_from_slice(b"7fffffff");
        let (programs, result) = parse(leak(a.clone()));
        assert_eq!(programs.len(), 1);
        assert_eq!(result, Err(ArchiveError::Truncated { offset: good }));
        a[good..good + 6].copy_from_slice(b"070702");
        assert_eq!(
            parse(leak(a)).1,
            Err(ArchiveError::BadHeader { offset: good })
        );
        assert_eq!(
            parse(leak(b"07070".to_vec())).1,
            Err(ArchiveError::BadHeader { offset: 0 })
        );
    }
}
