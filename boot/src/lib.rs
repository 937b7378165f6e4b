//! Turns the percore kernel ELF into bootable disk images.
//!
//! Two images come out of one kernel: a BIOS image (MBR, for legacy boot and
//! the fastest start under QEMU) and a UEFI image (GPT with an EFI system
//! partition). Either can be written to a USB stick as is. The kernel is
//! stripped of debug info first: a multi-megabyte debug kernel takes seconds
//! to load through BIOS disk services, and the symbols stay in the original
//! ELF for the debugger.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bootloader::{BootConfig, DiskImageBuilder};

/// The two disk images made from one kernel.
#[derive(Debug, Clone)]
pub struct Images {
    pub bios: PathBuf,
    pub uefi: PathBuf,
}

/// Why an image could not be made.
#[derive(Debug)]
pub enum ImageError {
    /// `llvm-objcopy` (rustup component `llvm-tools-preview`) is missing.
    ObjcopyMissing(String),
    /// `llvm-objcopy` ran and failed.
    StripFailed(String),
    /// The bootloader's image builder failed.
    Builder(String),
    /// A file or folder could not be written.
    Io(std::io::Error),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::ObjcopyMissing(why) => write!(
                f,
                "llvm-objcopy not found ({why}); run `rustup component add llvm-tools-preview`"
            ),
            ImageError::StripFailed(why) => write!(f, "stripping the kernel failed: {why}"),
            ImageError::Builder(why) => write!(f, "disk image builder failed: {why}"),
            ImageError::Io(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<std::io::Error> for ImageError {
    fn from(error: std::io::Error) -> Self {
        ImageError::Io(error)
    }
}

/// What the bootloader itself prints while loading: warnings only, and only on
/// the serial port. Its framebuffer logger is slow under emulation and its
/// trace output would bury the kernel's.
fn boot_config() -> BootConfig {
    let mut config = BootConfig::default();
    config.frame_buffer_logging = false;
    config.serial_logging = true;
    config.log_level = bootloader_boot_config::LevelFilter::Warn;
    config
}

/// Writes `<out_dir>/<name>-bios.img` and `<out_dir>/<name>-uefi.img` for
/// `kernel`, with `ramdisk` (the archive of user programs) loaded next to
/// it when given.
pub fn build_images(
    kernel: &Path,
    out_dir: &Path,
    name: &str,
    ramdisk: Option<&Path>,
) -> Result<Images, ImageError> {
    std::fs::create_dir_all(out_dir)?;
    let stripped = out_dir.join(format!("{name}.stripped"));
    strip_debuginfo(kernel, &stripped)?;
    let mut builder = DiskImageBuilder::new(stripped);
    builder.set_boot_config(&boot_config());
    if let Some(ramdisk) = ramdisk {
        builder.set_ramdisk(ramdisk.to_path_buf());
    }
    let images = Images {
        bios: out_dir.join(format!("{name}-bios.img")),
        uefi: out_dir.join(format!("{name}-uefi.img")),
    };
    builder
        .create_bios_image(&images.bios)
        .map_err(|e| ImageError::Builder(format!("{e:#}")))?;
    builder
        .create_uefi_image(&images.uefi)
        .map_err(|e| ImageError::Builder(format!("{e:#}")))?;
    Ok(images)
}

/// Copies `kernel` to `out` without debug sections.
pub fn strip_debuginfo(kernel: &Path, out: &Path) -> Result<(), ImageError> {
    let tools =
        llvm_tools::LlvmTools::new().map_err(|e| ImageError::ObjcopyMissing(format!("{e:?}")))?;
    let objcopy = tools
        .tool(&llvm_tools::exe("llvm-objcopy"))
        .ok_or_else(|| ImageError::ObjcopyMissing("not in the toolchain's llvm-tools".into()))?;
    let output = Command::new(&objcopy)
        .arg("--strip-debug")
        .arg(kernel)
        .arg(out)
        .output()?;
    if !output.status.success() {
        return Err(ImageError::StripFailed(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    Ok(())
}
