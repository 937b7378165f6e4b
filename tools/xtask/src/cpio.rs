//! Writing a cpio archive in the "newc" format, the one the Linux kernel
//! unpacks as its initramfs (Documentation/driver-api/early-userspace/
//! buffer-format.rst): each entry is a 110-byte ASCII header of hex fields,
//! the NUL-terminated name and the data, each padded to 4 bytes.

/// What an entry is.
pub enum Entry<'a> {
    Dir,
    File { data: &'a [u8], executable: bool },
    Symlink { target: &'a str },
    CharDevice { major: u32, minor: u32 },
}

/// An archive being built in memory.
#[derive(Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

impl Archive {
    /// Adds `path` (relative, no leading `/`), owned by root.
    pub fn add(&mut self, path: &str, entry: Entry<'_>) {
        let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match entry {
            Entry::Dir => (S_IFDIR | 0o755, &[], (0, 0)),
            Entry::File { data, executable } => (
                S_IFREG | if executable { 0o755 } else { 0o644 },
                data,
                (0, 0),
            ),
            Entry::Symlink { target } => (S_IFLNK | 0o777, target.as_bytes(), (0, 0)),
            Entry::CharDevice { major, minor } => (S_IFCHR | 0o600, &[], (major, minor)),
        };
        self.next_inode += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        self.header(self.next_inode, mode, nlink, data.len(), rdev, path);
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Ends the archive with its trailer and returns it.
    pub fn finish(mut self) -> Vec<u8> {
        self.header(0, 0, 1, 0, (0, 0), "TRAILER!!!");
        self.bytes
    }

    fn header(
        &mut self,
        inode: u32,
        mode: u32,
        nlink: u32,
        size: usize,
        rdev: (u32, u32),
        name: &str,
    ) {
        let size = u32::try_from(size).expect("initramfs files are far below 4 GiB");
        let name_size = name.len() as u32 + 1;
        // ino mode uid gid nlink mtime filesize devmajor devminor
        // rdevmajor rdevminor namesize check
        let fields = [
            inode, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name_size, 0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_headers_names_and_padding() {
        let mut archive = Archive::default();
        archive.add("bin", Entry::Dir);
        archive.add(
            "bin/hi",
            Entry::File {
                data: b"echo",
                executable: true,
            },
        );
        archive.add("dev/console", Entry::CharDevice { major: 5, minor: 1 });
        let bytes = archive.finish();
        assert!(bytes.starts_with(b"07070100000001000041ED"));
        assert_eq!(bytes.len() % 4, 0);
        // Header (110) + "bin\0" (4) = 114, padded to 116.
        assert_eq!(&bytes[116..122], b"070701");
        let file = &bytes[116..];
        assert_eq!(&file[14..22], b"000081ED");
        assert_eq!(&file[54..62], b"00000004"); // size
        assert_eq!(&file[110..117], b"bin/hi\0");
        assert_eq!(&file[120..124], b"echo");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("0000000500000001")); // rdev 5:1
        assert!(text.ends_with("TRAILER!!!\0\0\0\0"));
    }
}
