//! What the cores were doing when a captured guest died.
//!
//! A triple fault leaves nothing on the serial line: the CPU resets before
//! any handler runs. So a captured run asks QEMU to *pause* on a guest
//! shutdown instead of exiting (`-action shutdown=pause`; with
//! `-no-reboot` a triple fault is a shutdown), watches QEMU's machine
//! protocol (QMP) for the `SHUTDOWN` event, and when its reason is a guest
//! reset (the triple fault) reads every core's registers (`info registers
//! -a`) before it tells QEMU to quit. Any other shutdown (an ACPI power-off)
//! just quits, so QEMU ends as it did before.
//!
//! The protocol is line-delimited JSON; the few fields needed are found by
//! substring, so no JSON library is pulled in.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A QMP socket for one captured run.
pub struct Watcher {
    path: PathBuf,
    /// Set once QEMU has exited: stop waiting for its socket.
    ended: Arc<AtomicBool>,
}

impl Watcher {
    /// Adds the QMP socket and the pause-on-shutdown action to `command`.
    pub fn attach(command: &mut Command) -> Watcher {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "percore-qmp-{}-{}.sock",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        command
            .args(["-action", "shutdown=pause"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", path.display()));
        Watcher {
            path,
            ended: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Tells a watcher still waiting for the socket that QEMU has exited.
    pub fn ended(&self) -> Arc<AtomicBool> {
        self.ended.clone()
    }

    /// Watches the running QEMU on a thread of its own; the thread ends
    /// when QEMU closes the socket, with the register dump of a triple
    /// fault if there was one.
    pub fn watch(self) -> JoinHandle<Option<Vec<String>>> {
        std::thread::spawn(move || {
            let dump =
                connect(&self.path, &self.ended).and_then(|stream| serve(stream).ok().flatten());
            let _ = std::fs::remove_file(&self.path);
            dump
        })
    }
}

/// QEMU creates the socket as it starts: wait for it, unless QEMU has
/// already ended (bad arguments) or never makes it.
fn connect(path: &Path, ended: &AtomicBool) -> Option<UnixStream> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Some(stream),
            Err(_) if Instant::now() < deadline && !ended.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => return None,
        }
    }
}

fn serve(stream: UnixStream) -> std::io::Result<Option<Vec<String>>> {
    let mut writer = stream.try_clone()?;
    let mut lines = BufReader::new(stream).lines();
    writer.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
    let mut dump = None;
    while let Some(line) = lines.next() {
        let line = line?;
        if !line.contains("\"event\": \"SHUTDOWN\"") && !line.contains("\"event\":\"SHUTDOWN\"") {
            continue;
        }
        if line.contains("guest-reset") {
            writer.write_all(
                b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info registers -a\"}}\n",
            )?;
            for reply in lines.by_ref() {
                let reply = reply?;
                if reply.contains("\"return\"") {
                    dump = Some(summary(&reply));
                    break;
                }
            }
        }
        writer.write_all(b"{\"execute\":\"quit\"}\n")?;
        break;
    }
    // Read on until QEMU closes the socket as it exits (a reset rather
    // than an end of file is as good: the dump is already taken).
    for line in lines {
        if line.is_err() {
            break;
        }
    }
    Ok(dump)
}

/// The lines of an `info registers -a` reply (a JSON string) that locate
/// the fault: each core's number, general registers with RSP, RIP and
/// flags, and the control registers with CR2.
fn summary(reply: &str) -> Vec<String> {
    let text = reply
        .split_once("\"return\": \"")
        .or_else(|| reply.split_once("\"return\":\""))
        .map_or(reply, |(_, rest)| rest.trim_end_matches(['}', '"', ' ']));
    text.replace("\\r", "")
        .split("\\n")
        .map(str::trim_end)
        .filter(|l| {
            // 64-bit names, and the 32-bit ones QEMU prints outside long mode.
            [
                "CPU#", "RAX=", "RSI=", "RIP=", "EAX=", "ESI=", "EIP=", "CR0=",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| format!("qemu: {l}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::summary;
    use crate::qemu::{Exit, run_captured};

    /// A disk whose BIOS boot sector triple-faults: it loads an empty interrupt
    /// table (`lidt` of a zero limit) and raises `int3`, which can then
    /// be delivered neither as itself nor as #GP nor as #DF.
    fn triple_fault_disk() -> Vec<u8> {
        // SeaBIOS boots nothing from a disk of a single sector: 1 MiB.
        let mut sector = vec![0u8; 1 << 20];
        // lidt [0x7c10]; int3; jmp $ — the six bytes at 0x7c10 are zero.
        sector[..8].copy_from_slice(&[0x0f, 0x01, 0x1e, 0x10, 0x7c, 0xcc, 0xeb, 0xfe]);
        sector[510..512].copy_from_slice(&[0x55, 0xaa]);
        sector
    }

    /// A guest that triple-faults ends the run (it does not hang until the
    /// timeout) and leaves every core's registers in the captured lines.
    #[test]
    fn a_triple_fault_is_reported_with_registers() {
        if Command::new(crate::tools::QEMU)
            .arg("--version")
            .output()
            .is_err()
        {
            panic!(
                "{} is not installed (cargo xtask setup installs it)",
                crate::tools::QEMU
            );
        }
        let image = std::env::temp_dir().join(format!("percore-triple-{}.img", std::process::id()));
        std::fs::write(&image, triple_fault_disk()).unwrap();
        let mut qemu = Command::new(crate::tools::QEMU);
        qemu.args([
            "-machine",
            "q35",
            "-display",
            "none",
            "-no-reboot",
            "-smp",
            "2",
        ])
        .arg("-drive")
        .arg(format!("format=raw,file={}", image.display()));
        let captured = run_captured(qemu, Duration::from_secs(60), false).unwrap();
        let _ = std::fs::remove_file(&image);
        assert_eq!(captured.exit, Exit::ResetOrTripleFault);
        let cpus = captured
            .lines
            .iter()
            .filter(|l| l.starts_with("qemu: CPU#"))
            .count();
        // The sector runs in real mode: QEMU names the 32-bit registers.
        let rip = captured
            .lines
            .iter()
            .any(|l| l.starts_with("qemu: EIP=00007c05"));
        assert!(cpus == 2 && rip, "no register dump: {:?}", captured.lines);
    }

    #[test]
    fn the_registers_that_locate_a_fault_are_kept() {
        let reply = r#"{"return": "CPU#0\r\nRAX=0000000000000001 RBX=0000000000000002\r\nRSI=0 RDI=0 RBP=0 RSP=ffff800000017d88\r\nRIP=ffffffff8007f061 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\nES =0000 0000000000000000 00000000 00000000\r\nCR0=80010033 CR2=0000000000000000 CR3=0000000000101000 CR4=000006a0\r\n"}"#;
        assert_eq!(
            summary(reply),
            [
                "qemu: CPU#0",
                "qemu: RAX=0000000000000001 RBX=0000000000000002",
                "qemu: RSI=0 RDI=0 RBP=0 RSP=ffff800000017d88",
                "qemu: RIP=ffffffff8007f061 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0",
                "qemu: CR0=80010033 CR2=0000000000000000 CR3=0000000000101000 CR4=000006a0",
            ]
        );
    }
}
