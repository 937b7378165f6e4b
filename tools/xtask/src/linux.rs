//! The Linux reference guest: Debian's cloud kernel and `busybox-static`
//! (fetched with `apt-get download` and unpacked with `dpkg -x` into
//! `target/linux-ref/`, once), the reference programs of `tools/linux-ref`
//! (a static musl binary), packed into an initramfs, booted on the same QEMU
//! machine as percore's benchmarks. The disk figure needs the kernel's
//! virtio-blk driver, a module in Debian's cloud kernel: the modules it
//! takes ([`VIRTIO_MODULES`], [`DISK_MODULES`]) go into the initramfs, and
//! `/init` loads them (and mounts devtmpfs for `/dev/vda`) only when a disk
//! figure runs. The network servers (`serve`, the network benchmark's
//! reference) need virtio-net ([`NET_MODULES`]); `/init` loads it and
//! configures `eth0` statically as QEMU's user network would by DHCP
//! (10.0.2.15/24, gateway 10.0.2.2), the address percore's contract names,
//! or on the tap backend as the kernel command line says ([`TAP_SETTINGS`]:
//! 10.9.0.2/24, gateway 10.9.0.1), with busybox's `ip`, says how many
//! queue pairs `eth0` uses (Linux's virtio-net enables one per vCPU, up to
//! what the device offers, by itself: no `ethtool -L` needed, and busybox
//! has none) and prints the contract's `net: ...` line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::apt;
use crate::build;
use crate::cpio::{Archive, Entry};
use crate::error::{self, Error};
use crate::qemu::{self, Captured, Exit, Machine};

/// Debian's meta-package that names the current cloud kernel.
const KERNEL_META: &str = "linux-image-cloud-amd64";
const BUSYBOX: &str = "busybox-static";
const MUSL: &str = "x86_64-unknown-linux-musl";

/// The guest's /init (run by busybox's sh): the first program measures boot
/// time, then the figures named on the kernel command line (`linux_ref=`,
/// passed to init as an environment variable) run and end the machine
/// through isa-debug-exit. Should that fail, poweroff ends it (QEMU exits 0,
/// which the host takes as a failure). For the disk figure it first loads
/// the virtio modules, in the order of their file names; for `serve` the
/// virtio-net ones, and it configures the network.
const INIT: &str = "#!/bin/sh
/bin/linux-ref boot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
case \"$linux_ref\" in *disk*|*serve*)
  /bin/busybox mount -t devtmpfs devtmpfs /dev
  for module in /lib/modules/virtio/*.ko; do /bin/busybox insmod $module; done;;
esac
case \"$linux_ref\" in *disk*)
  for module in /lib/modules/disk/*.ko; do /bin/busybox insmod $module; done;;
esac
case \"$linux_ref\" in *serve*)
  for module in /lib/modules/net/*.ko; do /bin/busybox insmod $module; done
  ip=${linux_ref_ip:-10.0.2.15/24}; gw=${linux_ref_gw:-10.0.2.2}
  /bin/busybox ip link set lo up
  /bin/busybox ip link set eth0 up
  /bin/busybox ip addr add $ip dev eth0
  /bin/busybox ip route add default via $gw
  rx=$(/bin/busybox ls /sys/class/net/eth0/queues | /bin/busybox grep -c rx-)
  tx=$(/bin/busybox ls /sys/class/net/eth0/queues | /bin/busybox grep -c tx-)
  echo \"linux-ref: eth0 uses $rx rx and $tx tx queue(s) ($rx queue pair(s) in use)\"
  echo \"net: ip=$ip gw=$gw via static\";;
esac
/bin/linux-ref --exit-qemu $linux_ref
/bin/busybox poweroff -f
";

/// The kernel command line's settings for the tap backend (`netns.rs`):
/// `/init` gives `eth0` the guest's address in the namespace instead of
/// the user network's.
pub const TAP_SETTINGS: &str = "linux_ref_ip=10.9.0.2/24 linux_ref_gw=10.9.0.1";

/// The virtio transport modules both the disk figure and the servers
/// need, under the kernel package's `lib/modules/VERSION/kernel/`, in the
/// order they load (each needs the ones before it); the initramfs holds
/// them in `lib/modules/virtio/`.
const VIRTIO_MODULES: [&str; 5] = [
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
];

/// The disk figure's driver (after [`VIRTIO_MODULES`]), in `lib/modules/disk/`.
const DISK_MODULES: [&str; 1] = ["drivers/block/virtio_blk.ko"];

/// virtio-net and what it needs, in load order (after [`VIRTIO_MODULES`]),
/// in `lib/modules/net/`.
const NET_MODULES: [&str; 3] = [
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

/// A bootable guest: kernel image and initramfs.
pub struct Guest {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
}

fn cache_dir() -> PathBuf {
    build::target_dir().join("linux-ref")
}

/// Fetches (once) and unpacks the Debian packages, builds the reference
/// programs and packs the initramfs.
pub fn prepare() -> Result<Guest, Error> {
    let kernel_root = unpacked(&kernel_package()?)?;
    let busybox_root = unpacked(BUSYBOX)?;
    let kernel = std::fs::read_dir(kernel_root.join("boot"))?
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or_else(|| Error::Other(format!("no vmlinuz-* in {}", kernel_root.display())))?;
    let busybox = std::fs::read(busybox_root.join("bin/busybox"))?;
    let reference = std::fs::read(reference_programs()?)?;
    let mut modules = Vec::new();
    for (dir, list) in [
        ("virtio", &VIRTIO_MODULES[..]),
        ("disk", &DISK_MODULES[..]),
        ("net", &NET_MODULES[..]),
    ] {
        modules.extend(kernel_modules(&kernel_root, dir, list)?);
    }

    let mut archive = Archive::default();
    for dir in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "lib",
        "lib/modules",
        "lib/modules/virtio",
        "lib/modules/disk",
        "lib/modules/net",
    ] {
        archive.add(dir, Entry::Dir);
    }
    for (name, data) in &modules {
        archive.add(
            name,
            Entry::File {
                data,
                executable: false,
            },
        );
    }
    // The kernel opens /dev/console for init's stdio before anything mounts devtmpfs.
    archive.add("dev/console", Entry::CharDevice { major: 5, minor: 1 });
    let exe = |data| Entry::File {
        data,
        executable: true,
    };
    archive.add("bin/busybox", exe(&busybox));
    archive.add("bin/sh", Entry::Symlink { target: "busybox" });
    archive.add("bin/linux-ref", exe(&reference));
    archive.add("init", exe(INIT.as_bytes()));
    let initramfs = cache_dir().join("initramfs.cpio");
    std::fs::create_dir_all(cache_dir())?;
    std::fs::write(&initramfs, archive.finish())?;
    Ok(Guest { kernel, initramfs })
}

/// The modules `list` of the unpacked kernel package, named
/// `lib/modules/DIR/N-NAME.ko` so that their names sort in load order.
fn kernel_modules(
    kernel_root: &Path,
    dir: &str,
    list: &[&str],
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let versions = kernel_root.join("lib/modules");
    let version = std::fs::read_dir(&versions)?
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| p.join("kernel/drivers").is_dir())
        .ok_or_else(|| Error::Other(format!("no kernel modules in {}", versions.display())))?;
    list.iter()
        .enumerate()
        .map(|(i, module)| {
            let path = version.join("kernel").join(module);
            let data = std::fs::read(&path)
                .map_err(|e| Error::Other(format!("reading {}: {e}", path.display())))?;
            let file = module.rsplit('/').next().unwrap_or(module);
            Ok((format!("lib/modules/{dir}/{i}-{file}"), data))
        })
        .collect()
}

/// The versioned kernel package the meta-package depends on, e.g.
/// `linux-image-6.1.0-57-cloud-amd64`.
fn kernel_package() -> Result<String, Error> {
    let depends = |out: &[u8]| {
        String::from_utf8_lossy(out).lines().find_map(|l| {
            let name = l.trim().strip_prefix("Depends: ")?;
            (name.starts_with("linux-image-") && name.ends_with("-cloud-amd64"))
                .then(|| name.to_string())
        })
    };
    let query = || {
        Command::new("apt-cache")
            .args(["depends", KERNEL_META])
            .output()
    };
    if let Some(name) = depends(&query()?.stdout) {
        return Ok(name);
    }
    refresh_package_lists()?;
    depends(&query()?.stdout).ok_or_else(|| {
        Error::Other(format!(
            "apt-cache knows no {KERNEL_META}: is Debian's archive in the apt sources?"
        ))
    })
}

/// `apt-get update`, which `apt-get download` needs on a fresh machine.
fn refresh_package_lists() -> Result<(), Error> {
    match apt::Installer::find() {
        Some(installer) => installer.update(),
        None => Err(Error::MissingTool(
            "apt's package lists are empty; run: sudo apt-get update".into(),
        )),
    }
}

/// `target/linux-ref/PACKAGE/`: the package fetched and unpacked, once.
fn unpacked(package: &str) -> Result<PathBuf, Error> {
    let root = cache_dir().join(package);
    let stamp = root.join(".unpacked");
    if stamp.is_file() {
        return Ok(root);
    }
    let debs = cache_dir().join("debs");
    std::fs::create_dir_all(&debs)?;
    let download = || {
        let mut command = Command::new("apt-get");
        command.args(["download", "-q", package]).current_dir(&debs);
        if apt::is_root() {
            // apt's download user cannot write into target/; as root, say so
            // instead of drawing a warning.
            command.args(["-o", "APT::Sandbox::User=root"]);
        }
        error::run(&format!("apt-get download {package}"), &mut command)
    };
    if download().is_err() {
        refresh_package_lists()?;
        download()?;
    }
    let deb = std::fs::read_dir(&debs)?
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_")))
        })
        .ok_or_else(|| Error::Other(format!("apt-get download left no {package}_*.deb")))?;
    let _ = std::fs::remove_dir_all(&root);
    error::run(
        &format!("unpacking {}", deb.display()),
        Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
    )?;
    std::fs::write(&stamp, b"")?;
    Ok(root)
}

/// Builds `tools/linux-ref` as a static musl binary; returns its path.
fn reference_programs() -> Result<PathBuf, Error> {
    let mut command = build::cargo();
    command.args([
        "build",
        "--package",
        "percore-linux-ref",
        "--release",
        "--target",
        MUSL,
    ]);
    error::run("building the reference programs", &mut command)?;
    Ok(build::target_dir()
        .join(MUSL)
        .join("release")
        .join("linux-ref"))
}

/// Boots `guest` on `machine`, running `figures` (comma-separated names of
/// `linux-ref` figures). A guest that does not finish in `timeout` or ends
/// in any other way than through its exit device is an error, with its
/// serial log.
pub fn boot(
    guest: &Guest,
    machine: &Machine,
    figures: &str,
    timeout: Duration,
) -> Result<Captured, Error> {
    boot_with(guest, machine, figures, "", timeout)
}

/// [`boot`] with `settings` added to the kernel command line: `NAME=VALUE`
/// words the kernel does not know reach the figures as environment
/// variables (`linux_ref_disk_ms=2000`).
pub fn boot_with(
    guest: &Guest,
    machine: &Machine,
    figures: &str,
    settings: &str,
    timeout: Duration,
) -> Result<Captured, Error> {
    let captured = qemu::run_captured(command(guest, machine, figures, settings), timeout, false)?;
    if captured.exit != Exit::Success {
        return Err(Error::Other(format!(
            "the Linux reference guest did not finish ({:?}); its serial log:\n{}",
            captured.exit,
            captured.lines.join("\n")
        )));
    }
    Ok(captured)
}

/// The QEMU command that boots `guest` on `machine` running `figures`
/// with `settings` (see [`boot_with`]); for a guest that does not end by
/// itself (`serve`), which the caller runs and stops.
pub fn command(guest: &Guest, machine: &Machine, figures: &str, settings: &str) -> Command {
    let append =
        format!("console=ttyS0 panic=-1 quiet rdinit=/init linux_ref={figures} {settings}");
    machine.linux_command(&guest.kernel, &guest.initramfs, &append)
}

/// The guest's files and their sizes, for messages.
pub fn describe(guest: &Guest) -> String {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len() / 1024);
    format!(
        "{} ({} KiB), initramfs {} KiB",
        guest.kernel.display(),
        size(&guest.kernel),
        size(&guest.initramfs)
    )
}
