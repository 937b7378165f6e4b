//! Network devices for QEMU machines: a virtio-net device on QEMU's user
//! network (slirp) with `restrict=on`, so no frame leaves QEMU; `cargo
//! xtask run --net` may add host port forwards, bound to the host's
//! loopback only.

use crate::qemu::Machine;

/// The MAC address the test machines give their device (not QEMU's
/// default, so the guest's check means something).
pub const TEST_MAC: &str = "52:54:00:c0:ff:ee";

/// `-netdev user,...,restrict=on -device virtio-net-pci,...` with the
/// given `mac` (QEMU's default when `None`) and `hostfwd` TCP ports
/// (`127.0.0.1:PORT` on the host to `PORT` in the guest).
pub fn args(mac: Option<&str>, hostfwd: &[u16]) -> Vec<String> {
    let mut netdev = String::from("user,id=n0,restrict=on");
    for port in hostfwd {
        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:{port}"));
    }
    let mut device = String::from("virtio-net-pci,netdev=n0");
    if let Some(mac) = mac {
        device.push_str(&format!(",mac={mac}"));
    }
    vec!["-netdev".into(), netdev, "-device".into(), device]
}

/// Gives `machine` a network device with [`TEST_MAC`] and tells the guest
/// what to expect (`opt/percore/expect-net-mac`).
pub fn attach(machine: &mut Machine) {
    machine.extra.extend(args(Some(TEST_MAC), &[]));
    machine
        .fw_cfg
        .push(("opt/percore/expect-net-mac".into(), TEST_MAC.into()));
}

/// Whether a test needs a machine with a network device.
pub fn needs_net(test: &str) -> bool {
    test.starts_with("net_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_network_is_always_restricted() {
        let args = args(None, &[8080]);
        assert_eq!(args[0], "-netdev");
        assert!(args[1].contains("restrict=on"));
        assert!(args[1].contains("hostfwd=tcp:127.0.0.1:8080-:8080"));
        assert_eq!(args[3], "virtio-net-pci,netdev=n0");
    }
}
