//! Finding (and, where allowed, installing) QEMU and the OVMF UEFI firmware.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{self, Error};

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

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn passwordless_sudo() -> bool {
    on_path("sudo")
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

const INSTRUCTIONS: &str = "\
percore needs QEMU (qemu-system-x86_64) and the OVMF UEFI firmware. Install them with:
  Debian/Ubuntu: sudo apt-get install -y qemu-system-x86 ovmf
  Fedora:        sudo dnf install -y qemu-system-x86 edk2-ovmf
(or point PERCORE_OVMF_CODE and PERCORE_OVMF_VARS at your OVMF files)";

/// Installs the Debian packages through apt-get, as root or with sudo.
fn apt_install() -> Result<(), Error> {
    let sudo = if is_root() {
        false
    } else if passwordless_sudo() {
        true
    } else {
        return Err(Error::MissingTool(INSTRUCTIONS.into()));
    };
    let apt = |args: &[&str]| {
        let mut command = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    eprintln!("xtask: QEMU or OVMF missing; installing qemu-system-x86 and ovmf with apt-get");
    error::run("apt-get update", &mut apt(&["update", "-q"]))?;
    error::run(
        "installing QEMU and OVMF",
        &mut apt(&["install", "-y", "-q", "qemu-system-x86", "ovmf"]),
    )
}

/// Makes sure QEMU and OVMF are present, installing them when possible.
pub fn ensure() -> Result<Ovmf, Error> {
    if !on_path(QEMU) || find_ovmf().is_none() {
        if on_path("apt-get") {
            apt_install()?;
        } else {
            return Err(Error::MissingTool(INSTRUCTIONS.into()));
        }
    }
    if !on_path(QEMU) {
        return Err(Error::MissingTool(format!(
            "{QEMU} still not found after installing.\n{INSTRUCTIONS}"
        )));
    }
    find_ovmf()
        .ok_or_else(|| Error::MissingTool(format!("OVMF firmware not found.\n{INSTRUCTIONS}")))
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
