//! Disks for QEMU machines: raw image files, the `-drive`/`-device`
//! arguments that attach them as virtio-blk, and the host's check of what
//! a guest wrote (the pattern the in-QEMU disk tests write, see
//! `tests/src/disk.rs`, which has the same formula).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::build;
use crate::error::Error;
use crate::qemu::{Firmware, Machine};

/// Size of the disk `cargo xtask run --disk FILE` creates when FILE is missing.
pub const RUN_DISK_BYTES: u64 = 64 * 1024 * 1024;
/// Size of a test machine's disk.
pub const TEST_DISK_BYTES: u64 = 16 * 1024 * 1024;

/// How a machine's disk is attached.
#[derive(Clone, Debug, Default)]
pub struct DiskSpec {
    /// `readonly=on`: the device offers `VIRTIO_BLK_F_RO`.
    pub read_only: bool,
    /// `num-queues=N` (default: one per vCPU).
    pub queues: Option<u32>,
    /// Sectors on which QEMU's `blkdebug` driver fails every request with EIO.
    pub failing_sector: Option<u64>,
    /// Only requests of this `iotype` fail there (`write`, `flush`, ...;
    /// default: every kind).
    pub failing_iotype: Option<&'static str>,
    /// The drive's `cache=` mode (default: QEMU's, `writeback`).
    pub cache: Option<&'static str>,
}

/// The byte the disk tests write at byte `offset` of the disk. Keep in
/// step with `pattern` in `tests/src/disk.rs`.
pub fn pattern(offset: u64) -> u8 {
    let block = offset / 512;
    (block.wrapping_mul(131) ^ (offset % 512).wrapping_mul(7) ^ 0x5A) as u8
}

/// A raw image file under `target/`, removed when dropped.
pub struct TempImage {
    pub path: PathBuf,
    config: Option<PathBuf>,
}

impl TempImage {
    /// A zero-filled image of `bytes` named after `tag`.
    pub fn new(tag: &str, bytes: u64) -> Result<TempImage, Error> {
        let path = build::target_dir().join(format!("disk-{tag}-{}.img", std::process::id()));
        create(&path, bytes)?;
        Ok(TempImage { path, config: None })
    }

    /// QEMU arguments attaching this image as `spec` says (a blkdebug
    /// configuration file is written next to it when needed).
    pub fn qemu_args(&mut self, spec: &DiskSpec) -> Result<Vec<String>, Error> {
        let drive = match spec.failing_sector {
            None => format!("file={},format=raw", self.path.display()),
            Some(sector) => {
                let config = self.path.with_extension("blkdebug");
                std::fs::write(
                    &config,
                    // Event "none": the rule is active from the start, for
                    // every request that touches the sector.
                    format!(
                        "[inject-error]\nevent = \"none\"\nerrno = \"5\"\nsector = \"{sector}\"\n{}",
                        spec.failing_iotype
                            .map_or(String::new(), |t| format!("iotype = \"{t}\"\n"))
                    ),
                )?;
                let args = format!(
                    "driver=blkdebug,config={},image.driver=file,image.filename={}",
                    config.display(),
                    self.path.display()
                );
                self.config = Some(config);
                args
            }
        };
        Ok(attach_args(&drive, spec))
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
        }
    }
}

/// `-drive if=none,id=disk0,DRIVE -device virtio-blk-pci,drive=disk0,...`.
pub fn attach_args(drive: &str, spec: &DiskSpec) -> Vec<String> {
    let readonly = if spec.read_only { ",readonly=on" } else { "" };
    let cache = spec.cache.map_or(String::new(), |c| format!(",cache={c}"));
    let mut device = String::from("virtio-blk-pci,drive=disk0");
    if let Some(queues) = spec.queues {
        device.push_str(&format!(",num-queues={queues}"));
    }
    vec![
        "-drive".into(),
        format!("if=none,id=disk0,{drive}{readonly}{cache}"),
        "-device".into(),
        device,
    ]
}

/// Gives `machine` a fresh [`TEST_DISK_BYTES`] image attached as `spec`
/// says, and tells the guest what to expect (`opt/percore/expect-disk-*`).
/// The image lives as long as the returned value.
pub fn attach(machine: &mut Machine, spec: &DiskSpec, tag: &str) -> Result<TempImage, Error> {
    let mut image = TempImage::new(tag, TEST_DISK_BYTES)?;
    machine.extra.extend(image.qemu_args(spec)?);
    let mut expect = vec![("bytes", TEST_DISK_BYTES.to_string())];
    expect.extend(spec.queues.map(|q| ("queues", q.to_string())));
    expect.extend(spec.failing_sector.map(|s| ("bad-sector", s.to_string())));
    for (name, value) in expect {
        machine
            .fw_cfg
            .push((format!("opt/percore/expect-disk-{name}"), value));
    }
    Ok(image)
}

/// The test whose pattern the host checks in the image after the boot.
pub const PATTERN_TEST: &str = "disk_read_write_every_core";

/// Whether a test needs a machine with a disk.
pub fn needs_disk(test: &str) -> bool {
    test.starts_with("disk_")
}

/// The machines of `machine:NAME` tests (each boots for its tests alone).
pub fn own_machine(name: &str) -> Option<(Machine, DiskSpec)> {
    let machine = Machine::new(Firmware::Bios, 2);
    match name {
        "disk-readonly" => Some((
            machine,
            DiskSpec {
                read_only: true,
                ..DiskSpec::default()
            },
        )),
        // Sector 2048 (1 MiB in): inside the disk, away from block 0.
        "disk-blkdebug" => Some((
            machine,
            DiskSpec {
                failing_sector: Some(2048),
                ..DiskSpec::default()
            },
        )),
        _ => None,
    }
}

/// Creates a zero-filled (sparse) raw image of `bytes` at `path`.
pub fn create(path: &Path, bytes: u64) -> Result<(), Error> {
    let file = std::fs::File::create(path)
        .map_err(|e| Error::Other(format!("creating {}: {e}", path.display())))?;
    file.set_len(bytes)
        .map_err(|e| Error::Other(format!("sizing {}: {e}", path.display())))?;
    Ok(())
}

/// `run --disk FILE`: FILE attached, created with [`RUN_DISK_BYTES`] if missing.
pub fn run_args(path: &Path) -> Result<Vec<String>, Error> {
    if !path.exists() {
        create(path, RUN_DISK_BYTES)?;
        eprintln!(
            "xtask: created {} ({} MiB, zero-filled)",
            path.display(),
            RUN_DISK_BYTES >> 20
        );
    }
    Ok(attach_args(
        &format!("file={},format=raw", path.display()),
        &DiskSpec::default(),
    ))
}

/// Checks the guest's `disk-pattern OFFSET LEN` lines against the image:
/// every byte of each range must hold [`pattern`]. Returns how many bytes
/// were checked; an error names the first wrong byte.
pub fn check_pattern(image: &Path, lines: &[String]) -> Result<u64, String> {
    let ranges: Vec<(u64, u64)> = lines
        .iter()
        .filter_map(|l| {
            let mut words = l.strip_prefix("disk-pattern ")?.split_whitespace();
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        })
        .collect();
    if ranges.is_empty() {
        return Err("the guest reported no `disk-pattern` range".into());
    }
    let mut file =
        std::fs::File::open(image).map_err(|e| format!("opening {}: {e}", image.display()))?;
    let mut checked = 0;
    for (offset, len) in ranges {
        let mut bytes = vec![0u8; len as usize];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| format!("reading {len} bytes at {offset}: {e}"))?;
        if let Some(i) = (0..len).find(|&i| bytes[i as usize] != pattern(offset + i)) {
            let at = offset + i;
            return Err(format!(
                "the image holds {:#04x} at byte {at}, the guest wrote {:#04x}",
                bytes[i as usize],
                pattern(at)
            ));
        }
        checked += len;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_finds_a_wrong_byte() {
        let image = TempImage::new("unit", 8192).unwrap();
        let good: Vec<u8> = (0..8192).map(pattern).collect();
        std::fs::write(&image.path, &good).unwrap();
        let lines = vec!["disk-pattern 512 4096".to_string()];
        assert_eq!(check_pattern(&image.path, &lines), Ok(4096));
        let mut bad = good;
        bad[1000] ^= 1;
        std::fs::write(&image.path, &bad).unwrap();
        assert!(
            check_pattern(&image.path, &lines)
                .unwrap_err()
                .contains("byte 1000")
        );
        assert!(check_pattern(&image.path, &[]).is_err());
    }
}
