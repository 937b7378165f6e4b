//! The tap backend: a network namespace of its own for each QEMU run
//! (`percore-<pid>-<n>`), a multi-queue tap inside it (`tap0`,
//! 10.9.0.1/24 on the host side; the guest is 10.9.0.2), QEMU started
//! inside it with one tap queue per virtio-net queue pair, and raw
//! Ethernet frames from the host side through an AF_PACKET socket on the
//! tap. Nothing touches the machine's own interfaces: every address is
//! inside the namespace, which [`Namespace`] deletes when dropped (on
//! failure and timeout too: the caller kills QEMU first, then drops it).
//!
//! Needs root (CI runs as root); [`Namespace::create`] says so clearly
//! otherwise.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{self, Error};

/// The tap device inside the namespace.
pub const TAP: &str = "tap0";
/// The namespace's side of the tap, and the guest's address.
pub const HOST_ADDRESS: &str = "10.9.0.1/24";
pub const HOST_IP: [u8; 4] = [10, 9, 0, 1];
pub const GUEST_IP: [u8; 4] = [10, 9, 0, 2];
/// The guest's static configuration (fw_cfg `opt/percore/net`).
pub const GUEST_CONFIG: &str = "ip=10.9.0.2/24 gw=10.9.0.1";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a multi-queue tap; deleted on drop.
pub struct Namespace {
    name: String,
}

fn ip(args: &[&str]) -> Result<(), Error> {
    let mut command = Command::new("ip");
    command.args(args);
    let output = command.output().map_err(|error| Error::Spawn {
        command: error::display(&command),
        error,
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            what: "ip".into(),
            command: error::display(&command),
            status: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

/// Whether this process may create network namespaces (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Namespace {
    /// `ip netns add percore-<pid>-<n>`, then inside it: loopback up, a
    /// multi-queue tap with [`HOST_ADDRESS`] and no IPv6 link-local
    /// address (so the host sends the guest nothing of its own), up.
    pub fn create() -> Result<Namespace, Error> {
        Namespace::for_queues(2)
    }

    /// [`Namespace::create`] with a tap for QEMU's `queues=N`: multi-queue
    /// when N is above 1, single-queue for 1 (QEMU opens a tap of one
    /// queue without `IFF_MULTI_QUEUE`, which a multi-queue tap refuses).
    pub fn for_queues(queues: u32) -> Result<Namespace, Error> {
        if !is_root() {
            return Err(Error::Other(
                "the tap backend needs root: it creates a network namespace and a tap \
                 device in it (`ip netns add`); run as root, or use --net for QEMU's \
                 user network"
                    .into(),
            ));
        }
        sweep();
        let name = format!(
            "percore-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        // From here on the guard deletes the namespace, whatever fails.
        let namespace = Namespace { name };
        let n = namespace.name.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        let mut tuntap = vec!["-n", n, "tuntap", "add", "dev", TAP, "mode", "tap"];
        if queues > 1 {
            tuntap.push("multi_queue");
        }
        ip(&tuntap)?;
        ip(&["-n", n, "link", "set", TAP, "addrgenmode", "none"])?;
        ip(&["-n", n, "addr", "add", HOST_ADDRESS, "dev", TAP])?;
        ip(&["-n", n, "link", "set", TAP, "up"])?;
        Ok(namespace)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `command` run inside the namespace (`ip netns exec NAME ...`).
    pub fn exec(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", &self.name])
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// Sets the tap's MTU (the largest frame the host side may send is
    /// MTU + 14).
    pub fn set_mtu(&self, mtu: u32) -> Result<(), Error> {
        ip(&[
            "-n",
            &self.name,
            "link",
            "set",
            TAP,
            "mtu",
            &mtu.to_string(),
        ])
    }

    /// The tap's MAC address (the host side's).
    pub fn tap_mac(&self) -> Result<[u8; 6], Error> {
        let output = Command::new("ip")
            .args(["-n", &self.name, "-o", "link", "show", TAP])
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .and_then(parse_mac)
            .ok_or_else(|| Error::Other(format!("no MAC for {TAP} in `{}`", text.trim())))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(error) = ip(&["netns", "delete", &self.name]) {
            eprintln!("xtask: deleting network namespace {}: {error}", self.name);
        }
    }
}

/// Deletes namespaces `percore-<pid>-<n>` whose process is gone (an
/// xtask killed with SIGKILL cannot run its guards). Only names of that
/// form are touched.
fn sweep() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("percore-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u32>().ok().and(pid.parse::<u32>().ok()));
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            eprintln!("xtask: deleting network namespace {name} (left by a process that is gone)");
            let _ = ip(&["netns", "delete", &name]);
        }
    }
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Runs `command` (QEMU in a namespace) to its end; SIGINT, SIGTERM or
/// SIGHUP to xtask meanwhile kill QEMU instead of xtask, so that the
/// caller's [`Namespace`] guard still runs.
pub fn status_guarded(command: &mut Command) -> io::Result<std::process::ExitStatus> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(signal, on_stop_signal as *const () as libc::sighandler_t) };
    }
    let mut child = command.spawn()?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if STOP.load(Ordering::Relaxed) {
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a namespace of this name exists.
pub fn exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// `52:54:00:c0:ff:ee` as bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.try_into().ok()
}

/// QEMU's arguments for the tap backend with `queues` queue pairs: the
/// tap inside the namespace (opened by QEMU there), a virtio-net device
/// with multiqueue, RSS, and an MSI-X entry per queue plus the
/// configuration and control ones.
pub fn qemu_args(queues: u32, mac: Option<&str>) -> Vec<String> {
    qemu_args_with(queues, mac, "")
}

/// [`qemu_args`] with more options for the virtio-net device (e.g.
/// `csum=off,guest_csum=off`: no checksum offloads offered).
pub fn qemu_args_with(queues: u32, mac: Option<&str>, options: &str) -> Vec<String> {
    let netdev =
        format!("tap,id=n0,ifname={TAP},script=no,downscript=no,queues={queues},vhost=off");
    let mut device = format!(
        "virtio-net-pci,netdev=n0,mq=on,rss=on,vectors={}",
        2 * queues + 2
    );
    if let Some(mac) = mac {
        device.push_str(&format!(",mac={mac}"));
    }
    if !options.is_empty() {
        device.push_str(&format!(",{options}"));
    }
    vec!["-netdev".into(), netdev, "-device".into(), device]
}

/// An AF_PACKET socket bound to the tap inside a namespace: raw Ethernet
/// frames out to the guest, and every frame the guest sends.
pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// Opens the socket from a thread that joins the namespace (`setns`
    /// changes only the calling thread; the socket stays in the namespace
    /// it was made in).
    pub fn open(namespace: &Namespace) -> io::Result<RawSocket> {
        let path = format!("/run/netns/{}", namespace.name());
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = std::fs::File::open(&path)?;
                    // SAFETY: plain system calls on descriptors we own;
                    // `addr` is a properly sized, zeroed sockaddr_ll.
                    unsafe {
                        if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                            return Err(io::Error::last_os_error());
                        }
                        let protocol = (libc::ETH_P_ALL as u16).to_be();
                        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol));
                        if fd < 0 {
                            return Err(io::Error::last_os_error());
                        }
                        let fd = OwnedFd::from_raw_fd(fd);
                        let name = std::ffi::CString::new(TAP).expect("no NUL");
                        let index = libc::if_nametoindex(name.as_ptr());
                        if index == 0 {
                            return Err(io::Error::last_os_error());
                        }
                        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
                        addr.sll_family = libc::AF_PACKET as u16;
                        addr.sll_protocol = protocol;
                        addr.sll_ifindex = index as i32;
                        let bound = libc::bind(
                            fd.as_raw_fd(),
                            (&raw const addr).cast(),
                            std::mem::size_of::<libc::sockaddr_ll>() as u32,
                        );
                        if bound != 0 {
                            return Err(io::Error::last_os_error());
                        }
                        Ok(RawSocket { fd })
                    }
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the setns thread panicked")))
        })
    }

    /// Sends one frame as given (the host kernel refuses frames shorter
    /// than an Ethernet header, or longer than the MTU allows).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is valid for its length; the fd is open.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The next frame the tap received (from the guest) for which `want`
    /// says yes, waiting at most `limit`.
    pub fn recv_matching(
        &self,
        limit: Duration,
        want: &mut dyn FnMut(&[u8]) -> bool,
    ) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut poll = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, left.as_millis().max(1) as i32) };
            if ready < 0 {
                return Err(io::Error::last_os_error());
            }
            if ready == 0 {
                continue;
            }
            // SAFETY: sockaddr_ll is plain integers; all zeroes is valid.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `addr` are valid for the lengths given.
            let got = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut addr).cast(),
                    &mut len,
                )
            };
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            // Our own frames show up too (outgoing); only the guest's count.
            if addr.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let frame = &buf[..got as usize];
            if want(frame) {
                return Ok(Some(frame.to_vec()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_gets_one_tap_queue_and_two_vectors_per_pair() {
        let args = qemu_args(4, Some("52:54:00:c0:ff:ee"));
        assert_eq!(
            args[1],
            "tap,id=n0,ifname=tap0,script=no,downscript=no,queues=4,vhost=off"
        );
        assert_eq!(
            args[3],
            "virtio-net-pci,netdev=n0,mq=on,rss=on,vectors=10,mac=52:54:00:c0:ff:ee"
        );
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("52:54:00:c0:ff:ee"),
            Some([0x52, 0x54, 0, 0xc0, 0xff, 0xee])
        );
        assert_eq!(parse_mac("52:54:00"), None);
        assert_eq!(parse_mac("zz:54:00:c0:ff:ee"), None);
    }

    #[test]
    fn commands_are_wrapped_in_the_namespace() {
        let namespace = std::mem::ManuallyDrop::new(Namespace {
            name: "percore-test".into(),
        });
        let mut command = Command::new("qemu-system-x86_64");
        command.args(["-m", "512M"]);
        let wrapped = namespace.exec(&command);
        let args: Vec<_> = wrapped.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(wrapped.get_program(), "ip");
        assert_eq!(
            args,
            [
                "netns",
                "exec",
                "percore-test",
                "qemu-system-x86_64",
                "-m",
                "512M"
            ]
        );
    }
}
