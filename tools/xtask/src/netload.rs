//! Host-side network load: a guest serving the contract's services (echo
//! on TCP and UDP port 7, HTTP on TCP port 80; percore's `serve echo,http`
//! or the Linux reference guest's `linux-ref serve`) behind QEMU's user
//! network, and the clients the load tests (`netload_tests.rs`) and the
//! network benchmark (`net_bench.rs`) drive against it. Every client is
//! bounded in count and time: sockets carry read, write and connect
//! timeouts ([`IO_TIMEOUT`]) and each function stops by itself.
//!
//! The guest ([`Served`]) gets a virtio-net device on QEMU's user network
//! with `restrict=on` and three `hostfwd`s bound to the host's loopback
//! only, on ports chosen free at start: TCP to guest port 7, UDP to port 7,
//! TCP to port 80. Nothing else is ever a target.
//!
//! slirp's `hostfwd` listening socket has a backlog of 1 (DESIGN.md): a
//! burst of connects overflows it, the host drops the SYNs and retries
//! them a second later, and a client would measure that, not the guest.
//! So the clients here pace themselves: they have at most one connection
//! handshake outstanding at a time and start the next only after the
//! previous one answered through the guest (an echo or a response), which
//! means slirp accepted it. [`listen_overflows`] reads the host's
//! `TcpExtListenOverflows` counter so a benchmark can show that it stayed
//! (nearly) still.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::build::{self, KernelKind};
use crate::error::Error;
use crate::linux;
use crate::net::TEST_MAC;
use crate::netns::{self, Namespace};
use crate::qemu::{self, Captured, Machine};
use crate::tools;

/// Read, write and connect timeout of every client socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// The fw_cfg file naming the services percore starts at boot.
pub const SERVE_FW_CFG: &str = "opt/percore/serve";
/// The boot configuration file that injects loss (`kernel/src/net/loss.rs`).
pub const LOSS_FW_CFG: &str = "opt/percore/netloss";
/// The contract's ready lines (their beginnings; percore's shell prompt may come
/// first on the same line).
const READY: [&str; 2] = [
    "serve: echo ready on tcp/7 udp/7",
    "serve: http ready on tcp/80",
];

/// The contract's address line, `net: ip=A.B.C.D/P gw=G.G.G.G via dhcp|static`.
const NET_LINE: &str = "net: ip=";
/// percore's last boot line; the ready lines must follow within
/// [`SERVE_AFTER_BOOT`].
const BOOTED: &str = "percore ready:";
const SERVE_AFTER_BOOT: Duration = Duration::from_secs(30);

/// Which guest serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// percore's kernel, `serve echo,http` at boot.
    Percore,
    /// The Linux reference guest's `linux-ref serve`.
    Linux,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Percore => "percore",
            Target::Linux => "linux",
        }
    }
}

/// Where the guest's services are: host ports on 127.0.0.1 forwarded by
/// slirp, or the guest's own address and ports inside a namespace (tap).
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// The address the clients connect to: 127.0.0.1 (slirp's forwards)
    /// or the guest's 10.9.0.2 inside the bench's namespace (tap).
    pub ip: Ipv4Addr,
    pub echo_tcp: u16,
    pub echo_udp: u16,
    pub http: u16,
    /// Whether the guest's UDP datagrams reach the host. Not on slirp
    /// with `restrict=on`: its `udp_input` drops every datagram from the
    /// guest but DHCP and TFTP, so UDP echo's answers never leave QEMU
    /// (datagrams to the guest do arrive).
    pub udp_replies: bool,
}

impl Ports {
    /// Three ports free on the host's loopback right now.
    fn free() -> Result<Ports, Error> {
        // All three held at once, so the two TCP ports differ.
        let echo_tcp = TcpListener::bind("127.0.0.1:0")?;
        let http = TcpListener::bind("127.0.0.1:0")?;
        let echo_udp = UdpSocket::bind("127.0.0.1:0")?;
        Ok(Ports {
            ip: Ipv4Addr::LOCALHOST,
            echo_tcp: echo_tcp.local_addr()?.port(),
            echo_udp: echo_udp.local_addr()?.port(),
            http: http.local_addr()?.port(),
            udp_replies: false,
        })
    }

    /// The guest's own services on the tap backend, reached from inside
    /// its namespace at [`netns::GUEST_IP`] (UDP answers arrive there).
    pub fn tap() -> Ports {
        Ports {
            ip: Ipv4Addr::from(netns::GUEST_IP),
            echo_tcp: 7,
            echo_udp: 7,
            http: 80,
            udp_replies: true,
        }
    }

    /// QEMU's `-netdev`/`-device` arguments: the user network with
    /// `restrict=on` and these ports forwarded from 127.0.0.1 only.
    pub fn qemu_args(&self) -> Vec<String> {
        let netdev = format!(
            "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{}-:7,hostfwd=udp:127.0.0.1:{}-:7,hostfwd=tcp:127.0.0.1:{}-:80",
            self.echo_tcp, self.echo_udp, self.http
        );
        let device = format!("virtio-net-pci,netdev=n0,mac={TEST_MAC}");
        vec!["-netdev".into(), netdev, "-device".into(), device]
    }

    /// The TCP echo service's address.
    pub fn echo(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.echo_tcp))
    }

    /// The HTTP service's address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.http))
    }

    /// The URL of `path` on the HTTP service.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.http)
    }
}

/// The network a served guest is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// QEMU's user network (slirp, `restrict=on`): one queue pair, the
    /// services reached through `hostfwd` ports on the host's 127.0.0.1.
    Slirp,
    /// A multi-queue tap in a network namespace of the run's own
    /// (`netns.rs`), one queue pair per core, RSS on; the clients run
    /// inside the namespace against the guest's 10.9.0.2 there.
    Tap,
}

impl Backend {
    /// Tap where it can be made (root, `/dev/net/tun`, `ip` on the path),
    /// else slirp and why not tap.
    pub fn best() -> (Backend, Option<String>) {
        match Backend::tap_unavailable() {
            None => (Backend::Tap, None),
            Some(why) => (Backend::Slirp, Some(why)),
        }
    }

    /// Why the tap backend cannot be used here, if it cannot.
    pub fn tap_unavailable() -> Option<String> {
        if !netns::is_root() {
            Some("not root (the tap backend makes a network namespace)".into())
        } else if !std::path::Path::new("/dev/net/tun").exists() {
            Some("no /dev/net/tun".into())
        } else if !crate::apt::on_path("ip") {
            Some("no `ip` (iproute2) on the path".into())
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Slirp => "slirp",
            Backend::Tap => "tap",
        }
    }

    /// The backend in words.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::Slirp => {
                "slirp (QEMU user network, restrict=on, one queue pair, hostfwd on 127.0.0.1)"
            }
            Backend::Tap => {
                "tap (a tap in a network namespace of the run's own, one queue pair per core, \
                 RSS on; clients inside the namespace against 10.9.0.2)"
            }
        }
    }
}

/// A guest serving echo and http, running until [`Served::stop`] (or
/// drop) kills its QEMU, or the host-side timeout does.
pub struct Served {
    pub ports: Ports,
    pub backend: Backend,
    /// Cores (vCPUs) the ready lines name.
    pub cores: u32,
    /// The guest's `net: ip=A.B.C.D/P gw=G.G.G.G via dhcp|static` line.
    pub net_line: Option<String>,
    /// The guest's line about its queue pairs (percore's `virtio-net ...
    /// N of M queue pair(s)`, the Linux guest's `linux-ref: eth0 ...`).
    pub queues_line: Option<String>,
    stop: Arc<AtomicBool>,
    qemu: Option<JoinHandle<Result<Captured, Error>>>,
    /// Dropped after QEMU has ended (fields drop after [`Drop::drop`]).
    namespace: Option<Namespace>,
}

impl Served {
    /// Boots `target` on `machine` (which gets the network device of
    /// `backend`: on tap, one queue pair per core, in a namespace made
    /// here), waits for both ready lines and returns the running guest.
    /// `limit` bounds the whole run of QEMU, clients included; `release`
    /// picks percore's optimised kernel.
    pub fn start(
        target: Target,
        machine: &Machine,
        backend: Backend,
        limit: Duration,
        release: bool,
    ) -> Result<Served, Error> {
        let mut machine = machine.clone();
        let (ports, namespace) = match backend {
            Backend::Slirp => {
                let ports = Ports::free()?;
                machine.extra.extend(ports.qemu_args());
                (ports, None)
            }
            Backend::Tap => {
                machine
                    .extra
                    .extend(netns::qemu_args(machine.smp, Some(TEST_MAC)));
                (Ports::tap(), Some(Namespace::for_queues(machine.smp)?))
            }
        };
        let (mut command, vars) = guest_command(target, machine, backend, release)?;
        if let Some(namespace) = &namespace {
            command = namespace.exec(&command);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let qemu = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let captured = watch(command, limit, &stop, &ready_tx);
                if let Some(vars) = vars {
                    let _ = std::fs::remove_file(vars);
                }
                captured
            })
        };
        let mut served = Served {
            ports,
            backend,
            cores: 0,
            net_line: None,
            queues_line: None,
            stop,
            qemu: Some(qemu),
            namespace,
        };
        match ready_rx.recv_timeout(limit) {
            Ok(lines) => {
                served.cores = lines
                    .iter()
                    .filter(|l| l.contains(READY[0]))
                    .find_map(|l| l.rsplit("cores=").next()?.trim().parse().ok())
                    .unwrap_or(0);
                // percore's shell prompt may come first on the same line.
                served.net_line = lines
                    .iter()
                    .find_map(|l| Some(l[l.find(NET_LINE)?..].to_string()));
                served.queues_line = lines
                    .iter()
                    .find(|l| l.contains("queue pair"))
                    .map(|l| l.trim().to_string());
                Ok(served)
            }
            Err(_) => {
                let captured = served.finish()?;
                Err(Error::Other(format!(
                    "{} never printed its ready lines ({:?}); its serial log:\n{}",
                    target.name(),
                    captured.exit,
                    tail(&captured.lines)
                )))
            }
        }
    }

    /// Runs `f` where the guest is reachable: on the tap backend on a
    /// thread that joined the namespace (sockets it makes, threads it
    /// spawns and programs it starts are all inside it), else here.
    pub fn within<T: Send>(&self, f: impl FnOnce() -> Outcome<T> + Send) -> Outcome<T> {
        let Some(namespace) = &self.namespace else {
            return f();
        };
        let path = format!("/run/netns/{}", namespace.name());
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = std::fs::File::open(&path).map_err(io(&path))?;
                    // SAFETY: setns on a descriptor we own; it changes only
                    // this thread's network namespace.
                    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(format!(
                            "joining {path}: {}",
                            std::io::Error::last_os_error()
                        ));
                    }
                    f()
                })
                .join()
                .unwrap_or_else(|_| Err("the client thread panicked".into()))
        })
    }

    /// Kills QEMU and returns its serial log.
    pub fn stop(mut self) -> Result<Captured, Error> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Captured, Error> {
        self.stop.store(true, Ordering::Relaxed);
        match self.qemu.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| Error::Other("the QEMU watcher panicked".into()))?,
            None => Err(Error::Other("QEMU already stopped".into())),
        }
    }
}

/// The QEMU command that boots `target` serving echo and http on
/// `machine`, and the OVMF variable copy to remove afterwards, if any.
fn guest_command(
    target: Target,
    mut machine: Machine,
    backend: Backend,
    release: bool,
) -> Result<(Command, Option<PathBuf>), Error> {
    match target {
        Target::Percore => {
            let ovmf = tools::ensure(machine.needs())?;
            let built = build::kernel(KernelKind::Kernel, release)?;
            machine
                .fw_cfg
                .push((SERVE_FW_CFG.into(), "echo,http".into()));
            if backend == Backend::Tap {
                machine
                    .fw_cfg
                    .push(("opt/percore/net".into(), netns::GUEST_CONFIG.into()));
            }
            let vars = qemu::vars_copy(&ovmf, "netload")?;
            Ok((machine.command(&built.images, &ovmf, &vars), Some(vars)))
        }
        Target::Linux => {
            let guest = linux::prepare()?;
            let settings = match backend {
                Backend::Slirp => "",
                Backend::Tap => linux::TAP_SETTINGS,
            };
            Ok((linux::command(&guest, &machine, "serve", settings), None))
        }
    }
}

/// Runs `command` within `limit`, sends the serial lines on `ready` once
/// both ready lines and the address line are there, and kills QEMU when `stop` is set (or when
/// a percore that has booted does not serve within [`SERVE_AFTER_BOOT`]:
/// it never will).
fn watch(
    command: Command,
    limit: Duration,
    stop: &AtomicBool,
    ready: &mpsc::Sender<Vec<String>>,
) -> Result<Captured, Error> {
    let mut told = false;
    let mut booted: Option<Instant> = None;
    let mut kill = |lines: &[String]| {
        let serving = READY.iter().all(|r| lines.iter().any(|l| l.contains(r)));
        // With DHCP the address may come after the listeners: wait for it.
        if !told && serving && lines.iter().any(|l| l.contains(NET_LINE)) {
            told = true;
            let _ = ready.send(lines.to_vec());
        }
        if !told && booted.is_none() && lines.iter().any(|l| l.starts_with(BOOTED)) {
            booted = Some(Instant::now());
        }
        let gave_up = !told && booted.is_some_and(|t| t.elapsed() > SERVE_AFTER_BOOT);
        gave_up || stop.load(Ordering::Relaxed)
    };
    qemu::run_captured_until(command, limit, false, &mut kill)
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.qemu.is_some() {
            let _ = self.finish();
        }
    }
}

/// The last 40 lines of a serial log, for messages.
pub fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A client failure: what went wrong, in words.
pub type Outcome<T> = Result<T, String>;

fn io(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// A TCP connection to `addr` with the client timeouts and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> Outcome<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(io("connect"))?;
    stream.set_nodelay(true).map_err(io("TCP_NODELAY"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(io("read timeout"))?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(io("write timeout"))?;
    Ok(stream)
}

/// Sends `data` on `stream` and reads the same bytes back.
fn exchange(stream: &mut TcpStream, data: &[u8], back: &mut [u8]) -> Outcome<()> {
    stream.write_all(data).map_err(io("write"))?;
    stream.read_exact(back).map_err(io("read the echo"))?;
    if back != data {
        return Err(format!(
            "the echo differs from the {} bytes sent",
            data.len()
        ));
    }
    Ok(())
}

/// `n` bytes of a stream numbered `seed`, distinct per seed and position.
fn pattern(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Percentiles of round trips, in ns.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50_ns: u64,
    pub p99_ns: u64,
}

fn latency(samples: &mut [u64]) -> Latency {
    samples.sort_unstable();
    let at = |q: usize| samples[(samples.len() - 1) * q / 100];
    Latency {
        p50_ns: at(50),
        p99_ns: at(99),
    }
}

/// Echo round trip: one connection, `n` ping-pongs of 64 bytes, each
/// checked; p50 and p99 of the round trips.
pub fn echo_round_trips(ports: &Ports, n: usize) -> Outcome<Latency> {
    let mut stream = connect(ports.echo())?;
    let mut back = [0u8; 64];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n.max(1) {
        let data = pattern(i as u64, 64);
        let start = Instant::now();
        exchange(&mut stream, &data, &mut back).map_err(|e| format!("round trip {i}: {e}"))?;
        samples.push(start.elapsed().as_nanos() as u64);
    }
    Ok(latency(&mut samples))
}

/// FNV-1a over `data`, continuing from `hash`.
fn fnv(mut hash: u64, data: &[u8]) -> u64 {
    for &b in data {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// What a bulk transfer moved.
#[derive(Clone, Copy, Debug)]
pub struct Bulk {
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Bulk {
    /// Megabits per second, one way.
    pub fn mbit_s(&self) -> u64 {
        (self.bytes as f64 * 8.0 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)) as u64
    }
}

/// Bulk: `bytes` through TCP echo, a writer thread sending a seeded
/// stream and shutting down its side, this thread reading everything back
/// until the guest closes; the checksums and byte counts of both ways
/// must match.
pub fn bulk(ports: &Ports, bytes: u64) -> Outcome<Bulk> {
    let stream = connect(ports.echo())?;
    let mut reader = stream.try_clone().map_err(io("clone"))?;
    let start = Instant::now();
    let writer = std::thread::spawn(move || -> Outcome<u64> {
        let mut stream = stream;
        let mut hash = FNV_START;
        let mut left = bytes;
        let mut seed = 0;
        while left > 0 {
            let chunk = pattern(seed, left.min(64 * 1024) as usize);
            hash = fnv(hash, &chunk);
            stream.write_all(&chunk).map_err(io("bulk write"))?;
            left -= chunk.len() as u64;
            seed += 1;
        }
        stream.shutdown(Shutdown::Write).map_err(io("shutdown"))?;
        Ok(hash)
    });
    let mut hash = FNV_START;
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let read = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                hash = fnv(hash, &buf[..n]);
                got += n as u64;
            }
            Err(e) => break Err(format!("bulk read after {got} bytes: {e}")),
        }
    };
    let elapsed = start.elapsed();
    let sent = writer
        .join()
        .map_err(|_| String::from("the writer thread panicked"))??;
    read?;
    if got != bytes {
        return Err(format!("sent {bytes} bytes, {got} came back"));
    }
    if hash != sent {
        return Err(format!(
            "checksum of the bytes sent {sent:#x}, of the bytes back {hash:#x}"
        ));
    }
    Ok(Bulk { bytes, elapsed })
}

/// Raises the soft limit on open files to `wanted` (within the hard limit).
fn want_files(wanted: u64) -> Outcome<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to write to.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err("getrlimit".into());
    }
    if limit.rlim_cur >= wanted {
        return Ok(());
    }
    if limit.rlim_max < wanted {
        return Err(format!(
            "{wanted} open files needed, the hard limit is {}",
            limit.rlim_max
        ));
    }
    limit.rlim_cur = wanted;
    // SAFETY: `limit` is a valid rlimit within the hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err("setrlimit".into());
    }
    Ok(())
}

/// Opens `n` echo connections one after another, each confirmed by a
/// 16-byte echo before the next connect (the pacing of the module doc).
pub fn open_paced(ports: &Ports, n: usize) -> Outcome<Vec<TcpStream>> {
    want_files(n as u64 + 256)?;
    let mut streams = Vec::with_capacity(n);
    let mut back = [0u8; 16];
    for i in 0..n {
        let mut stream = connect(ports.echo()).map_err(|e| format!("connection {i}: {e}"))?;
        exchange(&mut stream, &pattern(i as u64 + 1, 16), &mut back)
            .map_err(|e| format!("connection {i}: {e}"))?;
        streams.push(stream);
    }
    Ok(streams)
}

/// N concurrent connections: `n` paced connections held open together;
/// then each sends `bytes` of its own pattern before any reads, and each
/// reads its own back.
pub fn concurrent(ports: &Ports, n: usize, bytes: usize) -> Outcome<()> {
    let mut streams = open_paced(ports, n)?;
    let data: Vec<Vec<u8>> = (0..n).map(|i| pattern(1000 + i as u64, bytes)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        stream
            .write_all(&data[i])
            .map_err(|e| format!("connection {i}: write: {e}"))?;
    }
    let mut back = vec![0u8; bytes];
    for (i, stream) in streams.iter_mut().enumerate() {
        stream
            .read_exact(&mut back)
            .map_err(|e| format!("connection {i}: read: {e}"))?;
        if back != data[i] {
            return Err(format!("connection {i}: its echo holds other bytes"));
        }
    }
    Ok(())
}

/// Churn: `n` short connections one after another, each connect, a
/// 32-byte exchange, close; the rate in connections per second.
pub fn churn(ports: &Ports, n: usize) -> Outcome<u64> {
    churn_parallel(ports, n, 1)
}

/// Churn from `clients` threads at once, each making its share of the `n`
/// short connections one after another (so at most `clients` handshakes
/// are in flight: not for slirp's backlog of 1); the rate in connections
/// per second.
pub fn churn_parallel(ports: &Ports, n: usize, clients: usize) -> Outcome<u64> {
    let clients = clients.clamp(1, n.max(1));
    let start = Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || -> Outcome<()> {
                    let mut back = [0u8; 32];
                    for i in (c..n).step_by(clients) {
                        let mut stream =
                            connect(ports.echo()).map_err(|e| format!("connection {i}: {e}"))?;
                        exchange(&mut stream, &pattern(i as u64, 32), &mut back)
                            .map_err(|e| format!("connection {i}: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        threads.into_iter().try_for_each(|t| {
            t.join()
                .unwrap_or_else(|_| Err("a churn thread panicked".into()))
        })
    })?;
    Ok((n as f64 / start.elapsed().as_secs_f64().max(1e-9)) as u64)
}

/// Half-close, `rounds` times over: a writer sends `bytes` and shuts its
/// side down (`shutdown(Write)`); the reader must get every byte back and
/// then the guest's close. Returns the slowest round. Several rounds,
/// because what this catches is rare: a segment lost on the way out while
/// the guest's side is in CLOSE-WAIT, which smoltcp 0.12.0 never sent
/// again (3 rounds of about 380 under slirp; see
/// `third_party/smoltcp/PERCORE.md`).
pub fn half_close(ports: &Ports, bytes: usize, rounds: usize) -> Outcome<Duration> {
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let start = Instant::now();
        half_close_once(ports, bytes).map_err(|e| format!("round {round}: {e}"))?;
        slowest = slowest.max(start.elapsed());
    }
    Ok(slowest)
}

fn half_close_once(ports: &Ports, bytes: usize) -> Outcome<()> {
    let stream = connect(ports.echo())?;
    let mut reader = stream.try_clone().map_err(io("clone"))?;
    let data = pattern(77, bytes);
    let sent = data.clone();
    let writer = std::thread::spawn(move || -> Outcome<()> {
        let mut stream = stream;
        stream.write_all(&sent).map_err(io("write"))?;
        stream.shutdown(Shutdown::Write).map_err(io("shutdown"))
    });
    let mut back = Vec::new();
    let read = reader.read_to_end(&mut back);
    writer
        .join()
        .map_err(|_| String::from("the writer thread panicked"))??;
    read.map_err(|e| format!("after {} bytes back: {e}", back.len()))?;
    if back != data {
        return Err(format!(
            "sent {} bytes and half-closed; {} came back{}",
            data.len(),
            back.len(),
            if back.len() == data.len() {
                ", other bytes"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Ends `stream` with a reset (`SO_LINGER` 0, then close).
fn reset(stream: TcpStream) -> Outcome<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid struct linger of the size passed; the
    // socket is open.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!("SO_LINGER: {}", std::io::Error::last_os_error()));
    }
    drop(stream);
    Ok(())
}

/// Vanishing clients: `n` clients each start a transfer of 1 MiB through
/// echo, read a part of it back and reset the connection (`SO_LINGER` 0:
/// an RST, with data still in flight both ways); after each, a fresh
/// connection must still be echoed; a connection open across all of them
/// must still be echoed, and the HTTP server must answer.
pub fn vanish(ports: &Ports, n: usize) -> Outcome<()> {
    // A connection open across all the resets must still be served after them.
    let mut bystander = connect(ports.echo())?;
    let mut back = [0u8; 64];
    exchange(&mut bystander, &pattern(8, 64), &mut back)?;
    for i in 0..n {
        let mut stream = connect(ports.echo())?;
        let data = pattern(500 + i as u64, 1 << 20);
        let mut writer = stream.try_clone().map_err(io("clone"))?;
        // Write from a thread: the guest's echo stalls once this side stops
        // reading, so the write may block until the reset.
        let sending = std::thread::spawn(move || {
            let _ = writer.write_all(&data);
        });
        let mut part = vec![0u8; 64 * 1024 + i * 4096];
        stream
            .read_exact(&mut part)
            .map_err(|e| format!("client {i}: reading the first bytes back: {e}"))?;
        reset(stream)?;
        let _ = sending.join();
        let mut fresh = connect(ports.echo()).map_err(|e| format!("after reset {i}: {e}"))?;
        exchange(&mut fresh, &pattern(9, 64), &mut back)
            .map_err(|e| format!("after reset {i}: {e}"))?;
    }
    exchange(&mut bystander, &pattern(10, 64), &mut back)
        .map_err(|e| format!("the connection open across the resets: {e}"))?;
    let (status, _) = http_get(ports, "/")?;
    if status != 200 {
        return Err(format!("after the resets GET / answered {status}"));
    }
    Ok(())
}

/// UDP echo: `n` datagrams of distinct content, each answered with the
/// same bytes (up to 3 tries each: UDP may drop).
pub fn udp_echo(ports: &Ports, n: usize) -> Outcome<()> {
    let local = if ports.ip.is_loopback() {
        Ipv4Addr::LOCALHOST
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    let socket = UdpSocket::bind((local, 0)).map_err(io("bind"))?;
    socket
        .connect((ports.ip, ports.echo_udp))
        .map_err(io("connect"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io("read timeout"))?;
    let mut back = [0u8; 2048];
    for i in 0..n {
        let data = pattern(3000 + i as u64, 16 + i % 1200);
        let answered = (0..3).any(|_| {
            socket.send(&data).is_ok()
                && loop {
                    match socket.recv(&mut back) {
                        // A late answer to an earlier try: read on.
                        Ok(len) if back[..len] != data[..] => continue,
                        Ok(_) => break true,
                        Err(_) => break false,
                    }
                }
        });
        if !answered {
            return Err(format!(
                "datagram {i} ({} bytes): no echo in 3 tries",
                data.len()
            ));
        }
    }
    Ok(())
}

/// A GET over a fresh connection (`Connection: close`): status and body.
pub fn http_get(ports: &Ports, path: &str) -> Outcome<(u16, Vec<u8>)> {
    let mut stream = connect(ports.http_addr())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: percore\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io("write"))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io("read"))?;
    parse_response(&response)
}

/// Status and body of one whole response (`Content-Length` bodies).
fn parse_response(response: &[u8]) -> Outcome<(u16, Vec<u8>)> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no response head in {} bytes", response.len()))?;
    let head = String::from_utf8_lossy(&response[..end]);
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3)?.parse().ok())
        .ok_or_else(|| format!("bad status line: {:?}", head.lines().next()))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or("no Content-Length")?;
    let body = &response[end + 4..];
    if body.len() != length {
        return Err(format!(
            "Content-Length {length}, {} bytes of body",
            body.len()
        ));
    }
    Ok((status, body.to_vec()))
}

/// The guest's `/stats`, parsed.
fn stats(ports: &Ports) -> Outcome<serde_json::Value> {
    let (status, body) = http_get(ports, "/stats")?;
    if status != 200 {
        return Err(format!("GET /stats answered {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("/stats is not JSON: {e}"))
}

/// The first number named `heap_used_bytes` in the guest's `/stats`.
pub fn heap_used(ports: &Ports) -> Outcome<u64> {
    find_number(&stats(ports)?, "heap_used_bytes")
        .ok_or_else(|| "no heap_used_bytes in /stats".into())
}

/// The sum of every number named `key` in the guest's `/stats` (one per
/// core for the network's counters).
pub fn stat_sum(ports: &Ports, key: &str) -> Outcome<u64> {
    let found = numbers(&stats(ports)?, key);
    if found.is_empty() {
        return Err(format!("no {key} in /stats"));
    }
    Ok(found.iter().sum())
}

/// Every number named `key` anywhere in `value`, in document order.
fn numbers(value: &serde_json::Value, key: &str) -> Vec<u64> {
    fn walk(value: &serde_json::Value, key: &str, found: &mut Vec<u64>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v.as_u64() {
                        Some(n) if k == key => found.push(n),
                        _ => walk(v, key, found),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, key, found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(value, key, &mut found);
    found
}

/// The first number named `key` anywhere in `value`.
fn find_number(value: &serde_json::Value, key: &str) -> Option<u64> {
    numbers(value, key).first().copied()
}

/// Runs a Debian tool (`curl`, `nc`, `wrk`) with a host-side time limit:
/// its stdout, or why not.
pub fn tool(program: &str, args: &[&str], stdin: &[u8], limit: Duration) -> Outcome<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e} (cargo xtask setup installs it)"))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).map_err(io("stdin"))?;
    }
    let start = Instant::now();
    while child.try_wait().map_err(io(program))?.is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{program} did not finish in {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(io(program))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// What wrk measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wrk {
    pub requests: u64,
    pub requests_per_s: u64,
    /// Socket errors (connect, read, write, timeout) and non-2xx/3xx responses.
    pub errors: u64,
}

/// How wrk loads the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrkMode {
    /// `connections` keep-alive connections, opened [`PACE_MS`] apart (one
    /// wrk thread each, [`PACED_LUA`]); no request is sent before the last
    /// one is open, so the measured time is all load.
    KeepAlive { connections: u32 },
    /// One request per connection (`Connection: close`) on `connections`
    /// connections at a time: wrk reconnects at once after each response,
    /// so this many handshakes can be waiting in slirp's accept queue,
    /// which holds two ([`CLOSE_CONNECTIONS`]).
    Close { connections: u32 },
}

/// Milliseconds between two of wrk's connects in [`WrkMode::KeepAlive`].
pub const PACE_MS: u32 = 10;
/// Connections of [`WrkMode::Close`]: as many as slirp's accept queue
/// holds (backlog 1: Linux queues backlog + 1 = 2 handshakes).
pub const CLOSE_CONNECTIONS: u32 = 2;

/// wrk's script for [`WrkMode::KeepAlive`] (arguments: pace in ms, thread
/// count). wrk runs `init` in its main thread just before it starts each
/// thread, so sleeping there spaces the threads' connects (one connection
/// per thread); `delay`, asked before every request, holds the requests
/// until the moment the last thread has started, which is when wrk starts
/// its clock. The thread's number goes from one `init` to the next through
/// an environment variable (each thread has a Lua state of its own).
pub const PACED_LUA: &str = r#"local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } percore_timeval;
int gettimeofday(percore_timeval *tv, void *tz);
int usleep(unsigned int usec);
int setenv(const char *name, const char *value, int overwrite);
]]
local tv = ffi.new("percore_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end
local go_at = 0
function init(args)
  local pace, threads = tonumber(args[1]), tonumber(args[2])
  local k = tonumber(os.getenv("PERCORE_WRK_THREAD") or "0")
  ffi.C.setenv("PERCORE_WRK_THREAD", tostring(k + 1), 1)
  ffi.C.usleep(pace * 1000)
  go_at = now_ms() + (threads - k - 1) * pace + 10
end
function delay()
  return math.max(0, go_at - now_ms())
end
"#;

/// HTTP load with wrk, `GET /` for `seconds`, as `mode` says.
pub fn wrk(ports: &Ports, mode: WrkMode, seconds: u32) -> Outcome<Wrk> {
    let url = ports.http_url("/");
    let duration = format!("{seconds}s");
    let mut args: Vec<String> = vec!["-d".into(), duration, "--timeout".into(), "10s".into()];
    match mode {
        WrkMode::KeepAlive { connections } => {
            let script = build::target_dir()
                .join("netload")
                .join("paced-connects.lua");
            std::fs::create_dir_all(script.parent().unwrap_or(&script))
                .and_then(|()| std::fs::write(&script, PACED_LUA))
                .map_err(io("writing wrk's script"))?;
            let n = connections.to_string();
            args.extend(["-t".into(), n.clone(), "-c".into(), n.clone()]);
            args.extend(["-s".into(), script.display().to_string(), url]);
            args.extend(["--".into(), PACE_MS.to_string(), n]);
        }
        WrkMode::Close { connections } => {
            let n = connections.to_string();
            let threads = connections.clamp(1, 2).to_string();
            args.extend(["-t".into(), threads, "-c".into(), n]);
            args.extend(["-H".into(), "Connection: close".into(), url]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let limit = Duration::from_secs(u64::from(seconds) + 30);
    let out = tool("wrk", &args, b"", limit)?;
    parse_wrk(&String::from_utf8_lossy(&out))
}

fn parse_wrk(text: &str) -> Outcome<Wrk> {
    let mut wrk = Wrk::default();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            wrk.requests_per_s = rest.trim().parse::<f64>().unwrap_or(0.0) as u64;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            wrk.errors += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            wrk.errors += rest.trim().parse::<u64>().unwrap_or(0);
        } else if let Some((count, _)) = line.split_once(" requests in ") {
            wrk.requests = count.trim().parse().unwrap_or(0);
        }
    }
    if wrk.requests == 0 {
        return Err(format!("wrk made no requests:\n{text}"));
    }
    Ok(wrk)
}

/// The host's `TcpExtListenOverflows` (connections dropped because a
/// listening socket's queue was full, such as slirp's), from
/// `/proc/net/netstat`.
pub fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        return names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "ListenOverflows")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a host-side stand-in for the guest's echo misbehaves.
    #[derive(Clone, Copy)]
    enum Fault {
        None,
        /// Flips one bit of every 1000th byte.
        FlipBits,
        /// Keeps back the last bytes it was sent once the peer half-closes.
        DropTail,
    }

    /// An echo server on the host's loopback (port 0, threads) standing in
    /// for the guest, so the clients' checks can be seen to fail.
    fn echo_server(fault: Fault) -> Ports {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut seen = 0usize;
                    loop {
                        let n = match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let mut n = n;
                        match fault {
                            Fault::None => {}
                            Fault::FlipBits => {
                                for (i, b) in buf[..n].iter_mut().enumerate() {
                                    if (seen + i) % 1000 == 999 {
                                        *b ^= 1;
                                    }
                                }
                            }
                            // Hold back a part of each read that ends a
                            // burst; the half-closing client misses it.
                            Fault::DropTail => n -= n.min(7),
                        }
                        seen += n;
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = stream.shutdown(Shutdown::Write);
                });
            }
        });
        Ports {
            ip: Ipv4Addr::LOCALHOST,
            echo_tcp: port,
            echo_udp: 0,
            http: 0,
            udp_replies: false,
        }
    }

    #[test]
    fn clients_pass_a_good_echo_and_fail_a_bad_one() {
        let good = echo_server(Fault::None);
        assert!(echo_round_trips(&good, 50).is_ok());
        assert!(bulk(&good, 1 << 20).is_ok());
        assert!(half_close(&good, 100_000, 3).is_ok());
        assert!(concurrent(&good, 20, 1024).is_ok());
        assert!(churn(&good, 20).is_ok());
        assert!(churn_parallel(&good, 20, 4).is_ok());
        let flipping = echo_server(Fault::FlipBits);
        assert!(echo_round_trips(&flipping, 50).is_err());
        assert!(bulk(&flipping, 1 << 20).is_err());
        assert!(concurrent(&flipping, 5, 2000).is_err());
        // Nobody listens: every client's first connect is refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let closed = Ports {
            echo_tcp: port,
            ..good
        };
        assert!(churn_parallel(&closed, 8, 4).is_err());
        let dropping = echo_server(Fault::DropTail);
        assert!(half_close(&dropping, 100_000, 3).is_err());
        assert!(bulk(&dropping, 1 << 20).is_err());
    }

    #[test]
    fn wrk_output_parses() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n\
            \x20 12345 requests in 5.00s, 2.00MB read\n\
            \x20 Socket errors: connect 1, read 2, write 0, timeout 3\n\
            \x20 Non-2xx or 3xx responses: 4\nRequests/sec:   2469.12\nTransfer/sec:    400KB\n";
        let wrk = parse_wrk(text).unwrap();
        assert_eq!(
            (wrk.requests, wrk.requests_per_s, wrk.errors),
            (12345, 2469, 10)
        );
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn responses_parse() {
        let mut out = Vec::new();
        percore_http::respond(
            percore_http::Status::NotFound,
            "text/plain",
            b"no\n",
            false,
            &mut out,
        );
        assert_eq!(parse_response(&out).unwrap(), (404, b"no\n".to_vec()));
        assert!(parse_response(&out[..out.len() - 1]).is_err());
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn heap_is_found_anywhere_in_stats() {
        let json = serde_json::json!({"cores": [{"core": 0}], "mem": {"heap_used_bytes": 42}});
        assert_eq!(find_number(&json, "heap_used_bytes"), Some(42));
        assert_eq!(find_number(&json, "missing"), None);
    }

    #[test]
    fn patterns_differ_by_seed_and_fnv_chains() {
        assert_ne!(pattern(1, 64), pattern(2, 64));
        assert_eq!(pattern(1, 64), pattern(1, 64));
        let data = pattern(3, 100);
        assert_eq!(
            fnv(fnv(FNV_START, &data[..40]), &data[40..]),
            fnv(FNV_START, &data)
        );
    }

    #[test]
    fn forwards_are_loopback_only_and_restricted() {
        let ports = Ports::free().unwrap();
        let args = ports.qemu_args();
        assert!(args[1].starts_with("user,id=n0,restrict=on,"));
        assert_eq!(args[1].matches("hostfwd=").count(), 3);
        assert_eq!(args[1].matches("hostfwd=tcp:127.0.0.1:").count(), 2);
        assert_eq!(args[1].matches("hostfwd=udp:127.0.0.1:").count(), 1);
        assert_ne!(ports.echo_tcp, ports.http);
    }
}
