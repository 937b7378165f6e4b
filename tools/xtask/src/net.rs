//! Network devices for QEMU machines: a virtio-net device on QEMU's user
//! network (slirp) with `restrict=on`, so no frame leaves QEMU. Host port
//! forwards (`hostfwd`) are bound to the host's loopback only; the guest
//! reaches the host only through `guestfwd` (10.0.2.100:PORT to a
//! loopback port), which works with `restrict=on`.

use crate::qemu::Machine;

/// The MAC address the test machines give their device (not QEMU's
/// default, so the guest's check means something).
pub const TEST_MAC: &str = "52:54:00:c0:ff:ee";
/// Where the guest reaches a host server through `guestfwd`.
pub const GUESTFWD_ADDR: &str = "10.0.2.100";
/// The fw_cfg file naming the sample services to start at boot.
pub const SERVE_FILE: &str = "opt/percore/serve";

/// A transport protocol of a forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One `hostfwd`: `127.0.0.1:host` on the host to `guest` in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    pub proto: Proto,
    pub host: u16,
    pub guest: u16,
}

impl Forward {
    pub fn tcp(host: u16, guest: u16) -> Forward {
        Forward {
            proto: Proto::Tcp,
            host,
            guest,
        }
    }
}

/// The samples' forwards for `cargo xtask run --net`: http 8080 -> 80,
/// echo 7007 -> 7 (TCP and UDP).
pub const RUN_FORWARDS: [Forward; 3] = [
    Forward {
        proto: Proto::Tcp,
        host: 8080,
        guest: 80,
    },
    Forward {
        proto: Proto::Tcp,
        host: 7007,
        guest: 7,
    },
    Forward {
        proto: Proto::Udp,
        host: 7007,
        guest: 7,
    },
];

/// `-netdev user,...,restrict=on -device virtio-net-pci,...` with the
/// given `mac` (QEMU's default when `None`) and `hostfwd` TCP ports
/// (`127.0.0.1:PORT` on the host to `PORT` in the guest).
pub fn args(mac: Option<&str>, hostfwd: &[u16]) -> Vec<String> {
    let forwards: Vec<Forward> = hostfwd.iter().map(|&p| Forward::tcp(p, p)).collect();
    args_with(mac, &forwards, &[])
}

/// [`args`] with any forwards, and `guestfwd`s from
/// `10.0.2.100:guest_port` in the guest to `127.0.0.1:host_port`.
///
/// A `guestfwd` is one QEMU character device: it connects to the host
/// port once, when QEMU starts, and carries one guest connection for
/// QEMU's whole life. The host closing its end does not reach the guest
/// as a FIN, so a guest client must know where the response ends
/// (`Content-Length`), and a test that connects out more than once needs
/// one `guestfwd` per connection (the host server then sees one
/// connection per forward, all made at boot).
pub fn args_with(mac: Option<&str>, forwards: &[Forward], guestfwd: &[(u16, u16)]) -> Vec<String> {
    let mut netdev = String::from("user,id=n0,restrict=on");
    for f in forwards {
        let proto = match f.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        netdev.push_str(&format!(
            ",hostfwd={proto}:127.0.0.1:{}-:{}",
            f.host, f.guest
        ));
    }
    for (guest, host) in guestfwd {
        netdev.push_str(&format!(
            ",guestfwd=tcp:{GUESTFWD_ADDR}:{guest}-tcp:127.0.0.1:{host}"
        ));
    }
    let mut device = String::from("virtio-net-pci,netdev=n0");
    if let Some(mac) = mac {
        device.push_str(&format!(",mac={mac}"));
    }
    vec!["-netdev".into(), netdev, "-device".into(), device]
}

/// The commands that reach the samples through [`RUN_FORWARDS`].
pub fn run_instructions() -> String {
    [
        "xtask: the guest serves echo and http (fw_cfg opt/percore/serve=echo,http); from the host:",
        "    curl http://127.0.0.1:8080/",
        "    curl http://127.0.0.1:8080/stats",
        "    echo hello | nc -N 127.0.0.1 7007        # TCP echo",
        "    echo hello | nc -u -w1 127.0.0.1 7007    # UDP echo",
    ]
    .join("\n")
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

    #[test]
    fn forwards_and_guestfwd_stay_on_loopback() {
        let args = args_with(None, &RUN_FORWARDS, &[(8000, 40000), (8001, 40000)]);
        assert!(args[1].contains("hostfwd=tcp:127.0.0.1:8080-:80"));
        assert!(args[1].contains("hostfwd=udp:127.0.0.1:7007-:7"));
        assert!(args[1].contains("guestfwd=tcp:10.0.2.100:8000-tcp:127.0.0.1:40000"));
        assert!(args[1].contains("guestfwd=tcp:10.0.2.100:8001-tcp:127.0.0.1:40000"));
        assert!(args[1].contains("restrict=on"));
    }
}
