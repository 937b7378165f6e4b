//! Building the kernel, the test kernel and their disk images.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::args::Args;
use crate::error::{self, Error};

/// The workspace root (where the top-level Cargo.toml is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tools/xtask sits two levels below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// `cargo` as invoked by the user (the one running xtask).
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// Which kernel binary to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// `percore-kernel`: the kernel users run.
    Kernel,
    /// `percore-tests`: the in-QEMU test kernel.
    Tests,
}

impl KernelKind {
    fn package(self) -> &'static str {
        match self {
            KernelKind::Kernel => "percore-kernel",
            KernelKind::Tests => "percore-tests",
        }
    }
}

/// A built kernel: its ELF (with symbols) and its two disk images.
pub struct Built {
    pub elf: PathBuf,
    pub images: percore_boot::Images,
}

/// The ring-3 programs packed into every image (binaries of
/// `userspace/programs`).
pub const PROGRAMS: [&str; 14] = [
    "hello", "spin", "badptr", "regs", "badmem", "canary", "uring", "fuzz", "ubench", "fpu",
    "echo", "http", "client", "dlog",
];

/// Builds the user programs and packs them into a cpio archive (the
/// ramdisk the bootloader loads next to the kernel, where the kernel finds
/// them by name). They are built for `x86_64-unknown-none`, always with the
/// release profile (small images), and linked static and non-PIE at a
/// fixed address by `userspace/runtime/link.ld` (`userspace/programs/build.rs`).
pub fn programs() -> Result<PathBuf, Error> {
    let mut command = cargo();
    command.args(["build", "--package", "percore-programs", "--release"]);
    error::run("building the user programs", &mut command)?;
    let dir = target_dir().join("x86_64-unknown-none").join("release");
    let mut archive = crate::cpio::Archive::default();
    for name in PROGRAMS {
        let data = std::fs::read(dir.join(name))?;
        archive.add(
            name,
            crate::cpio::Entry::File {
                data: &data,
                executable: true,
            },
        );
    }
    let out = target_dir().join("images").join("programs.cpio");
    std::fs::create_dir_all(target_dir().join("images"))?;
    std::fs::write(&out, archive.finish())?;
    Ok(out)
}

/// Builds `kind` (debug or release) and its BIOS and UEFI images, with the
/// user programs as the ramdisk.
pub fn kernel(kind: KernelKind, release: bool) -> Result<Built, Error> {
    let ramdisk = programs()?;
    let mut command = cargo();
    command.args(["build", "--package", kind.package()]);
    if release {
        command.arg("--release");
    }
    error::run(&format!("building {}", kind.package()), &mut command)?;
    let profile = if release { "release" } else { "debug" };
    let elf = target_dir()
        .join("x86_64-unknown-none")
        .join(profile)
        .join(kind.package());
    let out = target_dir().join("images").join(profile);
    let images = percore_boot::build_images(&elf, &out, kind.package(), Some(&ramdisk))
        .map_err(|e| Error::Other(format!("making disk images for {}: {e}", elf.display())))?;
    Ok(Built { elf, images })
}

/// `cargo xtask image`: release images, copied to `--out`, with USB instructions.
pub fn image(args: &mut Args) -> Result<(), Error> {
    let out: Option<PathBuf> = args.option("--out")?;
    let debug = args.flag("--debug");
    std::mem::take(args).finish()?;
    let built = kernel(KernelKind::Kernel, !debug)?;
    let out = out.unwrap_or_else(|| target_dir().join("images"));
    std::fs::create_dir_all(&out)?;
    let bios = out.join("percore-bios.img");
    let uefi = out.join("percore-uefi.img");
    std::fs::copy(&built.images.bios, &bios)?;
    std::fs::copy(&built.images.uefi, &uefi)?;
    println!("wrote {}", bios.display());
    println!("wrote {}", uefi.display());
    println!();
    println!("To boot real hardware, write one image to a USB stick (UEFI for modern machines,");
    println!("BIOS for legacy boot). Find the stick's device with `lsblk` first:");
    println!();
    println!(
        "    sudo dd if={} of=/dev/sdX bs=4M conv=fsync status=progress",
        uefi.display()
    );
    println!();
    println!("WARNING: dd overwrites the whole target device without asking. Make sure");
    println!("/dev/sdX is the USB stick and not one of your disks.");
    println!("The kernel prints to the first serial port (COM1, 115200 8N1).");
    Ok(())
}

/// `cargo xtask bench`: host benchmarks of every library crate;
/// `cargo xtask bench smp [--smp N]`: the in-kernel SMP benchmark;
/// `bench reactor`, `bench cases`: the reactor's costs, the workload cases;
/// `bench disk`: the virtio-blk disk (`disk_bench.rs`).
pub fn bench(args: &mut Args) -> Result<(), Error> {
    if let Some(which) = args.next_positional() {
        return match which.as_str() {
            "smp" => crate::test::guest_bench(args, "bench_smp"),
            "reactor" => crate::test::guest_bench(args, "bench_reactor"),
            "user" => crate::test::guest_bench(args, "bench_user"),
            "compare" => crate::compare::run(args),
            "disk" => crate::disk_bench::run(args),
            "net" => crate::net_bench::run(args),
            // The workload cases: medians of three boots.
            "cases" => crate::test::guest_bench_boots(args, "bench_cases", 3),
            other => Err(Error::Usage(format!(
                "unknown benchmark `{other}` (try `smp`, `reactor`, `user`, `cases`, `disk`, `net` or `compare`)"
            ))),
        };
    }
    std::mem::take(args).finish()?;
    for package in crate::test::library_packages()? {
        let mut command = cargo();
        command.args(["bench", "--package", &package]);
        error::run(&format!("benchmarks of {package}"), &mut command)?;
    }
    Ok(())
}

/// The crates that only build for `x86_64-unknown-none`.
pub const BARE_METAL_PACKAGES: [&str; 4] = [
    "percore-kernel",
    "percore-tests",
    "percore-runtime",
    "percore-programs",
];

/// `cargo xtask lint`: formatting and clippy, warnings denied.
pub fn lint(args: &mut Args) -> Result<(), Error> {
    std::mem::take(args).finish()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    error::run("cargo fmt --check", &mut fmt)?;
    let violations = crate::layers::check(&workspace_root())?;
    for v in &violations {
        eprintln!("{}:{}: {}", v.file.display(), v.line, v.what);
    }
    if !violations.is_empty() {
        return Err(Error::Other(format!(
            "{} layering violations (see tools/xtask/src/layers.rs)",
            violations.len()
        )));
    }
    println!("xtask: kernel layers point down");
    let mut host = cargo();
    host.args(["clippy", "--workspace", "--all-targets"]);
    for package in BARE_METAL_PACKAGES {
        host.args(["--exclude", package]);
    }
    host.args(["--", "-D", "warnings"]);
    error::run("clippy on the host crates", &mut host)?;
    let mut bare = cargo();
    bare.arg("clippy");
    for package in BARE_METAL_PACKAGES {
        bare.args(["--package", package]);
    }
    bare.args(["--", "-D", "warnings"]);
    error::run("clippy on the kernel crates", &mut bare)?;
    let mut simulated = cargo();
    simulated.args([
        "clippy",
        "--package",
        "percore-kernel",
        "--lib",
        "--tests",
        "--target",
        &host_target()?,
        "--",
        "-D",
        "warnings",
    ]);
    error::run("clippy on the kernel built for the host", &mut simulated)
}

/// The host's target triple (where the kernel's library runs on the
/// simulated arch for unit tests).
pub fn host_target() -> Result<String, Error> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|error| Error::Spawn {
            command: String::from("rustc -vV"),
            error,
        })?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| Error::Other(String::from("`rustc -vV` named no host")))
}
