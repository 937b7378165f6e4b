//! Finding (and, where allowed, installing) QEMU and the OVMF UEFI firmware.
//! QEMU 8.1 or later is wanted: its TCG emulates x2APIC, so the x2APIC
//! machine of the test matrix needs no KVM.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apt::{self, on_path};
use crate::error::Error;

pub const QEMU: &str = "qemu-system-x86_64";

/// OVMF firmware: the code image and a template for its variable store.
#[derive(Clone, Debug)]
pub struct Ovmf {
    pub code: PathBuf,
    pub vars: PathBuf,
}

/// Known OVMF locations (Debian/Ubuntu, Fedora, Arch), newest layout first.
const OVMF_CANDIDATES: &[(&str, &str)] = &[
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
    (
        "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
        "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
    ),
];

fn find_ovmf() -> Option<Ovmf> {
    if let (Some(code), Some(vars)) = (
        std::env::var_os("PERCORE_OVMF_CODE"),
        std::env::var_os("PERCORE_OVMF_VARS"),
    ) {
        return Some(Ovmf {
            code: code.into(),
            vars: vars.into(),
        });
    }
    OVMF_CANDIDATES
        .iter()
        .find(|(code, vars)| Path::new(code).is_file() && Path::new(vars).is_file())
        .map(|(code, vars)| Ovmf {
            code: code.into(),
            vars: vars.into(),
        })
}

/// A QEMU release, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct QemuVersion(pub u32, pub u32);

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The first QEMU whose TCG emulates x2APIC (`-cpu max,+x2apic`).
pub const QEMU_X2APIC: QemuVersion = QemuVersion(8, 1);

/// What a command needs of QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any QEMU that boots percore (an older one only draws a warning).
    AnyQemu,
    /// x2APIC under TCG: QEMU 8.1 or later, or the command fails.
    X2apic,
}

/// `qemu-system-x86_64 --version`: "QEMU emulator version 10.0.2 (...)".
fn parse_version(text: &str) -> Option<QemuVersion> {
    let rest = text.split("version ").nth(1)?;
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    Some(QemuVersion(numbers.next()?.ok()?, numbers.next()?.ok()?))
}

/// The version of the QEMU on PATH, if there is one that answers.
pub fn qemu_version() -> Option<QemuVersion> {
    let out = Command::new(QEMU).arg("--version").output().ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

/// What to install, and how, when QEMU or OVMF is missing.
fn instructions() -> String {
    let debian = if apt::is_debian_bookworm() {
        format!(
            "sudo apt-get install -y ovmf && {}",
            apt::backports_commands("qemu-system-x86")
        )
    } else {
        "sudo apt-get install -y qemu-system-x86 ovmf".into()
    };
    format!(
        "percore needs QEMU {QEMU_X2APIC} or later (qemu-system-x86_64) and the OVMF UEFI firmware. Install them with:
  Debian/Ubuntu: {debian}
  Fedora:        sudo dnf install -y qemu-system-x86 edk2-ovmf
(or point PERCORE_OVMF_CODE and PERCORE_OVMF_VARS at your OVMF files)"
    )
}

/// One line saying that `found` is too old, with the commands that fix it.
fn too_old_message(found: QemuVersion) -> String {
    let fix = if apt::is_debian_bookworm() {
        apt::backports_commands("qemu-system-x86")
    } else {
        "sudo apt-get update && sudo apt-get install -y qemu-system-x86 (Debian/Ubuntu), sudo dnf upgrade -y qemu-system-x86 (Fedora), or put a newer qemu-system-x86_64 first on PATH".into()
    };
    format!(
        "QEMU {found} is too old: x2APIC under TCG needs QEMU {QEMU_X2APIC} or later; install it with: {fix}"
    )
}

/// Installs QEMU and OVMF with apt-get; on Debian 12 QEMU comes from
/// `bookworm-backports` (Debian 12's own QEMU 7.2 has no x2APIC under TCG).
fn apt_install(installer: apt::Installer) -> Result<(), Error> {
    eprintln!("xtask: installing QEMU {QEMU_X2APIC} or later and OVMF with apt-get");
    if apt::is_debian_bookworm() {
        installer.enable_backports()?;
        installer.update()?;
        installer.install(&["ovmf", "curl", "netcat-openbsd"], None)?;
        installer.install(&["qemu-system-x86"], Some(apt::BACKPORTS))
    } else {
        installer.update()?;
        installer.install(&["qemu-system-x86", "ovmf", "curl", "netcat-openbsd"], None)
    }
}

/// Makes sure QEMU and OVMF are present, installing them when possible (a
/// QEMU of at least [`QEMU_X2APIC`]). An older QEMU is upgraded when `need`
/// is [`Need::X2apic`] and fails the command if it cannot be; with
/// [`Need::AnyQemu`] it only draws a warning.
pub fn ensure(need: Need) -> Result<Ovmf, Error> {
    let too_old = || !qemu_version().is_some_and(|v| v >= QEMU_X2APIC);
    if !on_path(QEMU) || find_ovmf().is_none() || (need == Need::X2apic && too_old()) {
        match apt::Installer::find() {
            Some(installer) => apt_install(installer)?,
            None if !on_path(QEMU) || find_ovmf().is_none() => {
                return Err(Error::MissingTool(instructions()));
            }
            None => {}
        }
    }
    if !on_path(QEMU) {
        return Err(Error::MissingTool(format!(
            "{QEMU} still not found after installing.\n{}",
            instructions()
        )));
    }
    let ovmf = find_ovmf().ok_or_else(|| {
        Error::MissingTool(format!("OVMF firmware not found.\n{}", instructions()))
    })?;
    match qemu_version() {
        Some(v) if v >= QEMU_X2APIC => {}
        found => {
            let message = too_old_message(found.unwrap_or(QemuVersion(0, 0)));
            match need {
                Need::X2apic => return Err(Error::MissingTool(message)),
                Need::AnyQemu => eprintln!("xtask: warning: {message}"),
            }
        }
    }
    Ok(ovmf)
}

/// `cargo xtask setup`: installs (or checks) what booting and testing
/// percore needs (QEMU, OVMF, and the network tests' wrk, curl and
/// netcat-openbsd), and says which QEMU will be used.
pub fn setup(args: &mut crate::args::Args) -> Result<(), Error> {
    std::mem::take(args).finish()?;
    let ovmf = ensure(Need::X2apic)?;
    apt::ensure_net_tools()?;
    let version = qemu_version().map_or_else(|| "?".into(), |v| v.to_string());
    println!(
        "QEMU {version} ({QEMU}); OVMF {}; KVM {}",
        ovmf.code.display(),
        if kvm_available() {
            "available"
        } else {
            "not available (TCG only)"
        }
    );
    Ok(())
}

/// Whether KVM can be used: hardware virtualisation in the CPU flags and a
/// usable /dev/kvm. (Some machines expose a /dev/kvm without vmx/svm that is
/// slower than TCG and breaks OVMF; those are not used.)
pub fn kvm_available() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hw = flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    hw && std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        let debian = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n";
        assert_eq!(parse_version(debian), Some(QemuVersion(10, 0)));
        let old = parse_version("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)");
        assert!(old.is_some_and(|v| v < QEMU_X2APIC));
        assert!(QemuVersion(8, 1) >= QEMU_X2APIC && QemuVersion(9, 0) > QEMU_X2APIC);
        assert_eq!(parse_version("no version here"), None);
    }
}
