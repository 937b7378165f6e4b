//! Host-driven tests of the user programs' sockets with real clients
//! (modelled on [`crate::net_host`]): the kernel users run boots on QEMU's
//! user network with a `hostfwd` port to guest port 7, its shell (over the
//! serial line) starts the ring-3 `echo` program on both cores (`run echo
//! 0 7`, `run echo 1 7`), and the host:
//!
//! - sends a line through `nc` and gets it back (three times: connections
//!   are steered to either core);
//! - opens a connection, then `kill`s both echo processes while it is
//!   open: the kernel closes the connection (the host reads the end of
//!   the stream or a reset), and a new `echo` on each core listens on the
//!   same port again (the killed ones released their sockets) and echoes;
//! - starts the ring-3 `http` on both cores (guest port 8080): `curl /`
//!   gets exactly the kernel sample's index page (both answer through
//!   `percore-http`), a malformed request gets `400` and the connection
//!   closes, and `/` is served afterwards;
//! - runs the ring-3 `client` on each core: it downloads 1 MiB from a
//!   server on the host (`guestfwd` 10.0.2.100:8000 for core 1, :8001 for
//!   core 0: a `guestfwd` carries one connection, see `net::args_with`)
//!   and checks the FNV-1a 64 the server sent; the host checks the figure
//!   the client printed too.
//!
//! UDP is not tested through slirp (see `net_host`: `restrict=on` drops the
//! guest's datagrams).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::build::{self, KernelKind};
use crate::error::Error;
use crate::net::{Forward, GUESTFWD_ADDR, TEST_MAC, args_with};
use crate::net_host::{
    BOOT, Guest, PAYLOAD_BYTES, STEP, curl_index_in, echo_line, fnv1a64, malformed, payload,
    serve_payload, spawn,
};
use crate::qemu::{Firmware, Machine};
use crate::test::Tally;
use crate::tools;

/// The filter that selects these tests.
pub const NAME: &str = "user_net";
/// The guest's ports for the host's payload server (guestfwd 10.0.2.100):
/// the client on core 1 uses the first, the one on core 0 the second.
const PAYLOAD_PORTS: [u16; 2] = [8000, 8001];
/// The guest port of the user `http` program.
const HTTP_PORT: u16 = 8080;

pub fn run(tally: &mut Tally) -> Result<(), Error> {
    if !crate::apt::on_path("nc") {
        tally.skip_one(
            &format!("qemu/{NAME}/*"),
            "nc not installed (apt-get install netcat-openbsd)",
        );
        return Ok(());
    }
    let started = Instant::now();
    let ovmf = tools::ensure(tools::Need::AnyQemu)?;
    let built = build::kernel(KernelKind::Kernel, false)?;
    let free = || -> Result<u16, Error> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (echo, http) = (free()?, free()?);
    let data = payload();
    let expected = fnv1a64(&data);
    let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    let server_port = server.local_addr()?.port();
    std::thread::spawn(move || serve_payload(server, data));
    let mut machine = Machine::new(Firmware::Bios, 2);
    machine.extra.extend(args_with(
        Some(TEST_MAC),
        &[Forward::tcp(echo, 7), Forward::tcp(http, HTTP_PORT)],
        &PAYLOAD_PORTS.map(|port| (port, server_port)),
    ));
    let mut command = machine.command(&built.images, &ovmf, &ovmf.vars);
    command.args(["-serial", "stdio"]);
    let mut guest = spawn(command)?;
    let name = |test: &str| format!("qemu/{NAME}/{test}");
    let checks: Vec<(&str, Result<String, String>)> = match start_both(&mut guest) {
        Err(why) => vec![("boot_and_run_echo", Err(why))],
        Ok(pids) => vec![
            ("boot_and_run_echo", Ok(format!("pids {pids:?}"))),
            ("nc_tcp_echo_user", nc_three(echo)),
            (
                "kill_mid_connection_releases",
                kill_and_rerun(&mut guest, echo, pids),
            ),
            ("http_user_index_400", http_checks(&mut guest, http)),
            (
                "client_user_download_checksum",
                client(&mut guest, expected),
            ),
        ],
    };
    for (test, verdict) in checks {
        match &verdict {
            Ok(note) => println!("test {} ... ok ({note})", name(test)),
            Err(why) => {
                println!("test {} ... FAILED: {why}", name(test));
                for line in guest.seen.iter().rev().take(12).rev() {
                    println!("    | {line}");
                }
                let log = std::path::Path::new("target").join("user_net.log");
                if std::fs::write(&log, guest.seen.join("\n")).is_ok() {
                    println!("    (the whole serial log: {})", log.display());
                }
            }
        }
        tally.record(&name(test), verdict.is_ok());
    }
    tally.skip_one(
        &name("udp_echo_user"),
        "slirp with restrict=on drops the guest's UDP (all but DHCP/TFTP)",
    );
    println!("   ({NAME}: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs `echo` on core `core` and waits until it listens: its pid, or
/// `None` if the port was in use.
fn run_echo(guest: &mut Guest, core: u16) -> Result<Option<u32>, String> {
    run_server(guest, "echo", core, 7)
}

/// Runs server `program` on core `core` with port `port` and waits until
/// it says it listens (`PROGRAM: pid N … port PORT on core CORE`).
fn run_server(
    guest: &mut Guest,
    program: &str,
    core: u16,
    port: u16,
) -> Result<Option<u32>, String> {
    // Lines already seen are found first: skip them.
    let seen = guest.seen.len();
    guest.type_line(&format!("run {program} {core} {port}"))?;
    let start = Instant::now();
    let pid = loop {
        let found = guest.seen[seen..]
            .iter()
            .find_map(|l| l.split(&format!("started {program}: pid ")).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = found {
            break pid;
        }
        if start.elapsed() > STEP {
            return Err(format!("`run {program} {core} {port}` did not start"));
        }
        if let Ok(line) = guest.lines.recv_timeout(Duration::from_millis(200)) {
            guest.seen.push(line);
        }
    };
    let (name, place) = (
        format!("{program}: pid {pid} "),
        format!("port {port} on core {core}"),
    );
    let exited = format!("process {pid} ({program}) on core {core} exited");
    let start = Instant::now();
    let mut from = seen;
    while start.elapsed() < STEP {
        for line in &guest.seen[from..] {
            if line.contains(&name) && line.contains(&place) {
                return Ok(Some(pid));
            }
            if line.contains(&exited) {
                let refused = guest.seen[seen..]
                    .iter()
                    .any(|l| l.starts_with(program) && l.contains("addr-in-use"));
                return match refused {
                    true => Ok(None),
                    false => Err(line.clone()),
                };
            }
        }
        from = guest.seen.len();
        if let Ok(line) = guest.lines.recv_timeout(Duration::from_millis(200)) {
            guest.seen.push(line);
        }
    }
    Err(format!("no `{name}… {place}` within {STEP:?}"))
}

/// [`run_echo`] until the port is free on `core`: a killed server's
/// connections linger in TIME_WAIT (smoltcp: 10 s), and the stack refuses
/// to listen on a port a connection of that core still uses (no
/// `SO_REUSEADDR`). Its pid and how many tries it took.
fn run_echo_until_listening(guest: &mut Guest, core: u16) -> Result<(u32, u32), String> {
    let start = Instant::now();
    let mut tries = 0;
    while start.elapsed() < STEP {
        tries += 1;
        if let Some(pid) = run_echo(guest, core)? {
            return Ok((pid, tries));
        }
        if tries == 2 {
            // For the failure report: the stack's socket counts.
            guest.type_line("net")?;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    Err(format!("port 7 still in use on core {core} after {STEP:?}"))
}

fn start_both(guest: &mut Guest) -> Result<[u32; 2], String> {
    guest.wait_for(" via ", BOOT)?;
    let mut pids = [0; 2];
    for (core, pid) in pids.iter_mut().enumerate() {
        *pid = run_echo(guest, core as u16)?.ok_or("port 7 in use at boot")?;
    }
    Ok(pids)
}

fn nc_echo(port: u16) -> Result<String, String> {
    let mut nc = std::process::Command::new("nc");
    nc.args(["-N", "-w", "30", "127.0.0.1", &port.to_string()]);
    echo_line(nc)
}

fn nc_three(port: u16) -> Result<String, String> {
    for _ in 0..3 {
        nc_echo(port)?;
    }
    Ok(String::from("3 lines echoed"))
}

/// A connection open while both echo processes are killed: it ends, and
/// the port is listened on again by new processes.
fn kill_and_rerun(guest: &mut Guest, port: u16, pids: [u32; 2]) -> Result<String, String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(STEP))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"ping\n").map_err(|e| e.to_string())?;
    let mut back = [0u8; 5];
    conn.read_exact(&mut back)
        .map_err(|e| format!("echo before kill: {e}"))?;
    if &back != b"ping\n" {
        return Err(format!("echo before kill: {back:?}"));
    }
    for pid in pids {
        guest.type_line(&format!("kill {pid}"))?;
        guest.wait_for(&format!("process {pid} (echo)"), STEP)?;
    }
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => {}
        Ok(_) => return Err(format!("after kill: {rest:?} instead of the end")),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(format!("after kill: {e}, not the end of the stream")),
    }
    // Closes the host's side too (the guest's socket then ends in
    // TIME_WAIT instead of waiting for our FIN).
    drop(conn);
    let again = [
        run_echo_until_listening(guest, 0)?,
        run_echo_until_listening(guest, 1)?,
    ];
    nc_three(port)?;
    Ok(format!(
        "connection ended at kill; port 7 listened on again by (pid, tries) {again:?}"
    ))
}

/// The user `http` on both cores: `curl /` gets exactly the kernel
/// sample's index page (the same `percore-http` bytes), a malformed
/// request gets `400` and the end of the stream, and `/` is served after.
fn http_checks(guest: &mut Guest, port: u16) -> Result<String, String> {
    for core in 0..2 {
        run_server(guest, "http", core, HTTP_PORT)?.ok_or("the http port is in use")?;
    }
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..3 {
        curl_index_in(None, &base)?;
    }
    malformed(port, &base)?;
    Ok(String::from(
        "`/` is the index page (3 times); 400 and closed; `/` served afterwards",
    ))
}

/// The user `client` on each core downloads the host's payload and
/// checks its checksum (core 1 first: frames reach it steered from core
/// 0, which owns the queue pair).
fn client(guest: &mut Guest, expected: u64) -> Result<String, String> {
    let want = format!("client: 200 {PAYLOAD_BYTES} bytes fnv1a64={expected:016x} checksum ok");
    for (core, port) in [1, 0].into_iter().zip(PAYLOAD_PORTS) {
        let seen = guest.seen.len();
        guest.type_line(&format!("run client {core} {GUESTFWD_ADDR}:{port}"))?;
        let start = Instant::now();
        let line = loop {
            // The program's line (it may follow the shell's prompt), not
            // the shell's `started client: …`.
            if let Some(line) = guest.seen[seen..].iter().find_map(|l| {
                let line = l.strip_prefix("percore> ").unwrap_or(l);
                line.starts_with("client: ").then(|| line.to_string())
            }) {
                break line;
            }
            if start.elapsed() > STEP {
                return Err(format!(
                    "no `client:` line from core {core} within {STEP:?}"
                ));
            }
            if let Ok(line) = guest.lines.recv_timeout(Duration::from_millis(200)) {
                guest.seen.push(line);
            }
        };
        if !line.contains(&want) {
            return Err(format!(
                "core {core}: the client said `{line}`, want `{want}`"
            ));
        }
    }
    Ok(format!(
        "{PAYLOAD_BYTES} bytes on each core, fnv1a64 {expected:016x}"
    ))
}
