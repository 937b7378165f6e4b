//! Host-driven tests of the network stack with real clients: the kernel
//! users run (not the test kernel) boots on QEMU's user network
//! (`restrict=on`) with its samples started by fw_cfg, and the host talks
//! to it through `hostfwd` ports on 127.0.0.1 chosen free here:
//!
//! - `curl` gets `/` (the bytes of `percore_http::INDEX_BODY`), `/stats`
//!   (parsed as JSON: one entry per core) and a 404;
//! - a malformed request gets `400` and the connection closes, and the
//!   kernel serves `/` again afterwards;
//! - `nc` (netcat-openbsd) gets a line echoed over TCP;
//! - the guest's `get` client downloads 1 MiB from a server on the host
//!   (through `guestfwd` 10.0.2.100:8000) and checks the FNV-1a 64 the
//!   server sent; the host checks the guest's figure too;
//! - echo gets 1 MiB and a half-close (`shutdown(Write)`) and sends every
//!   byte back before its EOF;
//! - `/stats` then shows the zero-copy path at work: no payload byte
//!   copied, the receive buffers lent to the cores given back, core 1's
//!   frames steered to it and its transmits handed to core 0;
//! - a second boot with a static address (fw_cfg `opt/percore/net`) says
//!   `via static` and serves `/`.
//!
//! UDP echo through slirp is not tested here: with `restrict=on`, slirp
//! drops every UDP datagram the guest sends except DHCP and TFTP (the
//! guest's reply never reaches the host; the guest side of UDP is tested
//! in `tests/src/net.rs`).
//!
//! The guest's shell is driven over the serial line (QEMU's stdin).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::build::{self, KernelKind};
use crate::error::{self, Error};
use crate::net::{Forward, SERVE_FILE, TEST_MAC, args_with};
use crate::netns::Namespace;
use crate::qemu::{Firmware, Machine};
use crate::test::Tally;
use crate::tools;

/// The in-QEMU test filter that selects these tests.
pub const NAME: &str = "net_host";
/// The guest's port for the host's payload server (guestfwd).
const PAYLOAD_PORT: u16 = 8000;
/// The payload's size.
pub(crate) const PAYLOAD_BYTES: usize = 1 << 20;
/// Hang guards (not timing assertions).
pub(crate) const BOOT: Duration = Duration::from_secs(120);
pub(crate) const STEP: Duration = Duration::from_secs(60);

/// A free port on the host's loopback (free when asked).
fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The payload: deterministic bytes.
pub(crate) fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// FNV-1a 64 (the guest's `get` computes the same).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A guest booted with the samples, its serial lines arriving on a channel.
pub(crate) struct Guest {
    child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Guest {
    /// Waits (bounded) for a line containing `needle`; returns it.
    pub(crate) fn wait_for(&mut self, needle: &str, limit: Duration) -> Result<String, String> {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return Ok(line.clone());
        }
        let start = Instant::now();
        while start.elapsed() < limit {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line.clone());
                    if hit {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        Err(format!("no `{needle}` on the serial line within {limit:?}"))
    }

    /// Types `command` into the guest's shell.
    pub(crate) fn type_line(&mut self, command: &str) -> Result<(), String> {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        for byte in command.bytes().chain(*b"\r") {
            stdin.write_all(&[byte]).map_err(|e| e.to_string())?;
            stdin.flush().map_err(|e| e.to_string())?;
            // The UART takes one byte at a time.
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the tests, recording each in `tally`.
pub fn run(tally: &mut Tally) -> Result<(), Error> {
    let missing: Vec<&str> = ["curl", "nc"]
        .into_iter()
        .filter(|t| !crate::apt::on_path(t))
        .collect();
    if !missing.is_empty() {
        tally.skip_one(
            &format!("qemu/{NAME}/*"),
            &format!(
                "{} not installed (apt-get install curl netcat-openbsd)",
                missing.join(", ")
            ),
        );
        return Ok(());
    }
    let started = Instant::now();
    let ovmf = tools::ensure(tools::Need::AnyQemu)?;
    let built = build::kernel(KernelKind::Kernel, false)?;
    let (http, echo) = (free_port()?, free_port()?);
    let data = payload();
    let expected = fnv1a64(&data);
    let server = TcpListener::bind("127.0.0.1:0")?;
    let server_port = server.local_addr()?.port();
    std::thread::spawn(move || serve_payload(server, data));
    let mut machine = Machine::new(Firmware::Bios, 2);
    machine.extra.extend(args_with(
        Some(TEST_MAC),
        &[Forward::tcp(http, 80), Forward::tcp(echo, 7)],
        &[(PAYLOAD_PORT, server_port)],
    ));
    machine.fw_cfg.push((SERVE_FILE.into(), "echo,http".into()));
    let mut command = machine.command(&built.images, &ovmf, &ovmf.vars);
    command.args(["-serial", "stdio"]);
    let mut guest = spawn(command)?;
    let name = |test: &str| format!("qemu/{NAME}/{test}");
    let ready = guest
        .wait_for("serve: http ready", BOOT)
        .and_then(|_| guest.wait_for("serve: echo ready", STEP));
    if let Err(why) = ready {
        println!("test {} ... FAILED: {why}", name("boot_and_serve"));
        for line in guest.seen.iter().rev().take(20).rev() {
            println!("    | {line}");
        }
        tally.record(&name("boot_and_serve"), false);
        return Ok(());
    }
    let base = format!("http://127.0.0.1:{http}");
    let checks: Vec<(&str, Result<String, String>)> = vec![
        ("curl_index", curl_index(&base)),
        ("curl_stats_json", curl_stats(&base)),
        (
            "curl_404",
            curl_status(&format!("{base}/no/such/page"), "404"),
        ),
        ("malformed_400_then_serving", malformed(http, &base)),
        ("nc_tcp_echo", nc_echo(echo)),
        ("get_download_checksum", download(&mut guest, expected)),
        ("echo_half_close_1mib", echo_half_close(echo)),
        ("zero_copy_loans_back_tx_handed", zero_copy(&base)),
    ];
    for (test, verdict) in checks {
        match &verdict {
            Ok(note) => println!("test {} ... ok ({note})", name(test)),
            Err(why) => println!("test {} ... FAILED: {why}", name(test)),
        }
        tally.record(&name(test), verdict.is_ok());
    }
    tally.skip_one(
        &name("nc_udp_echo"),
        "slirp with restrict=on drops the guest's UDP (all but DHCP/TFTP)",
    );
    drop(guest);
    let verdict = static_address(&built, &ovmf);
    match &verdict {
        Ok(note) => println!("test {} ... ok ({note})", name("static_address")),
        Err(why) => println!("test {} ... FAILED: {why}", name("static_address")),
    }
    tally.record(&name("static_address"), verdict.is_ok());
    println!("   ({NAME}: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// A second boot with a static address from fw_cfg (no DHCP): the boot
/// log names it and `/` is served.
fn static_address(built: &build::Built, ovmf: &tools::Ovmf) -> Result<String, String> {
    let http = free_port().map_err(|e| e.to_string())?;
    let mut machine = Machine::new(Firmware::Bios, 2);
    machine
        .extra
        .extend(args_with(Some(TEST_MAC), &[Forward::tcp(http, 80)], &[]));
    machine.fw_cfg.push((SERVE_FILE.into(), "http".into()));
    machine.fw_cfg.push((
        "opt/percore/net".into(),
        "ip=10.0.2.15/24 gw=10.0.2.2".into(),
    ));
    let mut command = machine.command(&built.images, ovmf, &ovmf.vars);
    command.args(["-serial", "stdio"]);
    let mut guest = spawn(command).map_err(|e| e.to_string())?;
    let line = guest.wait_for("net: ip=", BOOT)?;
    if !line.contains("net: ip=10.0.2.15/24 gw=10.0.2.2 via static") {
        return Err(format!("the boot log says `{line}`"));
    }
    guest.wait_for("serve: http ready", STEP)?;
    curl_index(&format!("http://127.0.0.1:{http}"))?;
    if guest.seen.iter().any(|l| l.contains("via dhcp")) {
        return Err(String::from("DHCP ran although the address is static"));
    }
    Ok(String::from("`via static` in the boot log, `/` served"))
}

pub(crate) fn spawn(mut command: Command) -> Result<Guest, Error> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let shown = error::display(&command);
    let mut child = command.spawn().map_err(|error| Error::Spawn {
        command: shown,
        error,
    })?;
    let stdout = child.stdout.take().expect("stdout was piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Guest {
        child,
        lines,
        seen: Vec::new(),
    })
}

/// Answers every connection with the payload and its `X-Fnv1a64`, once
/// its request head came whole. Each connection has a thread: the
/// connections are QEMU's `guestfwd`s (see `net::args_with`), all made at
/// boot, and each waits for its request as long as the guest takes (it
/// ends when QEMU does).
pub(crate) fn serve_payload(server: TcpListener, data: Vec<u8>) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nX-Fnv1a64: {:016x}\r\nConnection: close\r\n\r\n",
        data.len(),
        fnv1a64(&data)
    );
    let response = std::sync::Arc::new([head.as_bytes(), &data].concat());
    for mut conn in server.incoming().map_while(Result::ok) {
        let response = response.clone();
        std::thread::spawn(move || {
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => request.push(byte[0]),
                    _ => return,
                }
            }
            let _ = conn.write_all(&response);
        });
    }
}

fn curl(args: &[&str]) -> Result<Vec<u8>, String> {
    curl_in(None, args)
}

/// `curl` (bounded by `-m`), inside network namespace `ns` if given: its
/// body, or why it failed.
pub(crate) fn curl_in(ns: Option<&Namespace>, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut command = Command::new("curl");
    command.args(["-sS", "-m", "30"]).args(args);
    if let Some(ns) = ns {
        command = ns.exec(&command);
    }
    let out = command.output().map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

fn curl_index(base: &str) -> Result<String, String> {
    curl_index_in(None, base)
}

/// `curl BASE/` (inside `ns` if given) returns exactly the index page.
pub(crate) fn curl_index_in(ns: Option<&Namespace>, base: &str) -> Result<String, String> {
    let body = curl_in(ns, &[&format!("{base}/")])?;
    if body != percore_http::INDEX_BODY {
        return Err(format!("`/` returned {:?}", String::from_utf8_lossy(&body)));
    }
    Ok(format!("{} bytes equal INDEX_BODY", body.len()))
}

fn curl_stats(base: &str) -> Result<String, String> {
    let body = curl(&[&format!("{base}/stats")])?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        format!(
            "/stats is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    let cores = json["cores"]
        .as_array()
        .ok_or("/stats has no `cores` array")?;
    if cores.len() != 2 {
        return Err(format!(
            "/stats lists {} cores on a 2-core machine",
            cores.len()
        ));
    }
    let served: u64 = cores.iter().filter_map(|c| c["accepted"].as_u64()).sum();
    if served == 0 {
        return Err(format!("no core counts an accepted connection: {json}"));
    }
    Ok(format!(
        "{} cores, {served} connections accepted",
        cores.len()
    ))
}

fn curl_status(url: &str, want: &str) -> Result<String, String> {
    let code = curl(&["-o", "/dev/null", "-w", "%{http_code}", url])?;
    let code = String::from_utf8_lossy(&code).to_string();
    if code != want {
        return Err(format!("{url}: status {code}, want {want}"));
    }
    Ok(format!("status {code}"))
}

/// A request httparse refuses: `400`, `Connection: close`, then EOF; `/`
/// (at `base`) is served afterwards.
pub fn malformed(port: u16, base: &str) -> Result<String, String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(STEP))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)
        .map_err(|e| format!("reading the 400: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 400 ") || !text.contains("Connection: close") {
        return Err(format!("malformed request answered {text:?}"));
    }
    curl_index(base)?;
    Ok(String::from("400 and closed; `/` served afterwards"))
}

fn nc_echo(port: u16) -> Result<String, String> {
    let mut nc = Command::new("nc");
    nc.args(["-N", "-w", "30", "127.0.0.1", &port.to_string()]);
    echo_line(nc)
}

/// Sends a line through `nc` (its arguments set, e.g. run inside a
/// namespace) to an echo server and checks that the same line came back.
pub(crate) fn echo_line(mut nc: Command) -> Result<String, String> {
    let line = "hello percore, echo this line\n";
    let mut child = nc
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nc: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("nc: no stdin")?
        .write_all(line.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.stdout != line.as_bytes() {
        return Err(format!(
            "nc got {:?} (stderr {:?})",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(format!("{} bytes echoed", line.len()))
}

/// Bytes sent through echo before the client's `shutdown(Write)`.
const HALF_CLOSE_BYTES: usize = 1 << 20;

/// Sends 1 MiB to echo (from a thread), half-closes, and reads until EOF:
/// every byte comes back in order, then EOF (the guest's socket is not
/// freed before its send buffer drained).
fn echo_half_close(port: u16) -> Result<String, String> {
    let conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(STEP))
        .map_err(|e| e.to_string())?;
    let data = payload()[..HALF_CLOSE_BYTES].to_vec();
    let mut writer = conn.try_clone().map_err(|e| e.to_string())?;
    let sent = data.clone();
    let sender = std::thread::spawn(move || -> Result<(), String> {
        writer
            .write_all(&sent)
            .map_err(|e| format!("writing: {e}"))?;
        writer
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))
    });
    let mut back = Vec::with_capacity(HALF_CLOSE_BYTES);
    let read = (&conn).read_to_end(&mut back);
    sender.join().map_err(|_| "the sender panicked")??;
    read.map_err(|e| format!("reading after {} bytes: {e}", back.len()))?;
    if back != data {
        let first = back.iter().zip(&data).position(|(a, b)| a != b);
        return Err(format!(
            "{} of {} bytes came back (first difference at {first:?})",
            back.len(),
            data.len()
        ));
    }
    Ok(format!(
        "{} bytes echoed after the half-close, then EOF",
        back.len()
    ))
}

/// After the traffic above (on QEMU's user network: one queue pair,
/// owned by core 0): no payload byte was copied on the packet path, the
/// receive buffers lent to the cores came back (a few may be out for the
/// `/stats` request itself), frames were steered to core 1 in their
/// buffers, and core 1 transmitted through core 0.
fn zero_copy(base: &str) -> Result<String, String> {
    let body = curl(&[&format!("{base}/stats")])?;
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("/stats is not JSON ({e})"))?;
    let cores = json["cores"].as_array().ok_or("/stats has no `cores`")?;
    let sum = |key: &str| -> u64 { cores.iter().filter_map(|c| c[key].as_u64()).sum() };
    let core = |index: usize, key: &str| cores.get(index).and_then(|c| c[key].as_u64());
    let pair = &json["pairs"][0];
    let lent = pair["rx_lent"]
        .as_u64()
        .ok_or("/stats has no pairs[0].rx_lent")?;
    let copied = sum("copied_bytes");
    let steered = core(1, "steered_in").unwrap_or(0);
    let handed = core(1, "tx_handed").unwrap_or(0);
    let for_others = core(0, "tx_for_others").unwrap_or(0);
    let drops = &pair["drops"];
    if drops.get("nobuf").is_none() {
        return Err(format!("/stats has no driver drops by reason: {pair}"));
    }
    if copied != 0 || lent > 4 || steered == 0 || handed == 0 || for_others == 0 {
        return Err(format!(
            "copied {copied} bytes, {lent} buffers lent out, core 1 got {steered} frames and handed {handed} frames to core 0, which sent {for_others}: {json}"
        ));
    }
    Ok(format!(
        "0 bytes copied; {lent} buffers out; core 1: {steered} frames in, {handed} out via core 0; drops {drops}"
    ))
}

fn download(guest: &mut Guest, expected: u64) -> Result<String, String> {
    download_from(guest, "10.0.2.100", PAYLOAD_PORT, expected)
}

/// Has the guest's `get` client fetch the payload from `host:port` and
/// checks the checksum it reports.
pub(crate) fn download_from(
    guest: &mut Guest,
    host: &str,
    port: u16,
    expected: u64,
) -> Result<String, String> {
    guest.type_line(&format!("get http://{host}:{port}/payload"))?;
    let line = guest.wait_for("get: ", STEP)?;
    let want = format!("get: 200 {PAYLOAD_BYTES} bytes fnv1a64={expected:016x} checksum ok");
    if !line.contains(&want) {
        return Err(format!("the guest said `{line}`, want `{want}`"));
    }
    Ok(format!("{PAYLOAD_BYTES} bytes, fnv1a64 {expected:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
