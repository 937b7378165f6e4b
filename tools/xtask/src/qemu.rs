//! Booting percore in QEMU: interactively (`run`, `gdb`) or captured with a
//! timeout (the test runner).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::build::{self, KernelKind};
use crate::error::{self, Error};
use crate::qmp;
use crate::tools::{self, Ovmf};

/// QEMU exit status for a guest that wrote 0x10 to isa-debug-exit.
pub const EXIT_SUCCESS: i32 = (0x10 << 1) | 1;
/// QEMU exit status for a guest that wrote 0x11 to isa-debug-exit.
pub const EXIT_FAILURE: i32 = (0x11 << 1) | 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

/// The CPU model of an x2APIC machine under TCG (QEMU 8.1 or later).
pub const X2APIC_CPU: &str = "max,+x2apic";

/// One QEMU machine configuration.
#[derive(Clone, Debug)]
pub struct Machine {
    pub firmware: Firmware,
    pub smp: u32,
    pub mem_mib: u32,
    pub kvm: bool,
    /// CPU model; `None` means `max` (TCG) or `host` (KVM).
    pub cpu: Option<String>,
    /// `-fw_cfg name=...,string=...` entries.
    pub fw_cfg: Vec<(String, String)>,
    pub extra: Vec<String>,
    /// Like an ordinary PC: no `isa-debug-exit` device, and a reset
    /// reboots the machine instead of ending QEMU.
    pub pc_like: bool,
}

impl Machine {
    pub fn new(firmware: Firmware, smp: u32) -> Machine {
        Machine {
            firmware,
            smp,
            mem_mib: 512,
            kvm: false,
            cpu: None,
            fw_cfg: Vec::new(),
            extra: Vec::new(),
            pc_like: false,
        }
    }

    /// What this machine needs of QEMU: x2APIC under TCG needs 8.1 or later.
    pub fn needs(&self) -> tools::Need {
        let cpu = self.cpu.as_deref().unwrap_or_default();
        if !self.kvm && cpu.contains("+x2apic") {
            tools::Need::X2apic
        } else {
            tools::Need::AnyQemu
        }
    }

    /// QEMU with this machine's board, CPU, memory, cores, exit device and
    /// fw_cfg entries; the caller adds what boots.
    fn base_command(&self) -> Command {
        let mut q = Command::new(tools::QEMU);
        q.args(["-machine", "q35", "-display", "none"]);
        if !self.pc_like {
            q.args(["-no-reboot"]);
        }
        q.args([
            "-m",
            &format!("{}M", self.mem_mib),
            "-smp",
            &self.smp.to_string(),
        ]);
        if !self.pc_like {
            q.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        // Without a network of its own (`net::args`), a machine gets none:
        // QEMU's default NIC would sit on an unrestricted user network.
        if !self
            .extra
            .iter()
            .any(|a| matches!(a.as_str(), "-netdev" | "-nic" | "-net"))
        {
            q.args(["-nic", "none"]);
        }
        let cpu = self
            .cpu
            .clone()
            .unwrap_or_else(|| if self.kvm { "host" } else { "max" }.into());
        q.args(["-accel", if self.kvm { "kvm" } else { "tcg" }, "-cpu", &cpu]);
        for (name, value) in &self.fw_cfg {
            // QEMU's option syntax splits on commas; a literal one is doubled.
            let value = value.replace(',', ",,");
            q.arg("-fw_cfg").arg(format!("name={name},string={value}"));
        }
        q
    }

    /// The QEMU command line for booting `images` on this machine.
    /// `vars` is a private, writable copy of the OVMF variable store.
    pub fn command(&self, images: &percore_boot::Images, ovmf: &Ovmf, vars: &Path) -> Command {
        let mut q = self.base_command();
        let disk = match self.firmware {
            Firmware::Bios => &images.bios,
            Firmware::Uefi => {
                q.arg("-drive").arg(pflash(&ovmf.code, true));
                q.arg("-drive").arg(pflash(vars, false));
                &images.uefi
            }
        };
        q.arg("-drive")
            .arg(format!("format=raw,file={}", disk.display()));
        q.args(&self.extra);
        q
    }

    /// The QEMU command line for booting a Linux `kernel` with `initrd` and
    /// the command line `append` on this machine (QEMU's own loader, BIOS).
    pub fn linux_command(&self, kernel: &Path, initrd: &Path, append: &str) -> Command {
        let mut q = self.base_command();
        q.arg("-kernel").arg(kernel);
        q.arg("-initrd").arg(initrd);
        q.args(["-append", append]);
        q.args(&self.extra);
        q
    }
}

fn pflash(path: &Path, readonly: bool) -> String {
    let ro = if readonly { ",readonly=on" } else { "" };
    format!("if=pflash,format=raw,file={}{ro}", path.display())
}

/// A private copy of the OVMF variable store (OVMF writes to it).
pub fn vars_copy(ovmf: &Ovmf, tag: &str) -> Result<PathBuf, Error> {
    let path = build::target_dir().join(format!("ovmf-vars-{tag}-{}.fd", std::process::id()));
    std::fs::copy(&ovmf.vars, &path)
        .map_err(|e| Error::Other(format!("copying {}: {e}", ovmf.vars.display())))?;
    Ok(path)
}

fn machine_from_args(args: &mut Args) -> Result<Machine, Error> {
    let firmware = if args.flag("--uefi") {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let mut machine = Machine::new(firmware, args.option("--smp")?.unwrap_or(4));
    if let Some(mem) = args.option("--mem")? {
        machine.mem_mib = mem;
    }
    if let Some(sched) = args.option::<String>("--sched")? {
        // Each core's discipline (`rr,fair,edf,...`), read at boot.
        machine.fw_cfg.push(("opt/percore/sched".into(), sched));
    }
    machine.kvm = args.flag("--kvm") || tools::kvm_available();
    let x2apic = args.flag("--x2apic");
    machine.cpu = match (args.option::<String>("--cpu")?, x2apic) {
        (Some(_), true) => {
            return Err(Error::Usage(
                "give either --cpu MODEL or --x2apic (which is --cpu max,+x2apic)".into(),
            ));
        }
        (Some(model), false) => Some(model),
        // KVM's `host` model has x2APIC whenever the host has it.
        (None, true) if machine.kvm => Some("host".into()),
        (None, true) => Some(X2APIC_CPU.into()),
        (None, false) => None,
    };
    machine.extra = args.passthrough().to_vec();
    Ok(machine)
}

/// `cargo xtask run`.
pub fn run(args: &mut Args) -> Result<(), Error> {
    let mut machine = machine_from_args(args)?;
    if let Some(disk) = args.option::<PathBuf>("--disk")? {
        machine.extra.extend(crate::disk::run_args(&disk)?);
    }
    let hostfwd = match args.option::<String>("--hostfwd")? {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|p| p.trim().parse::<u16>())
            .collect::<Result<Vec<u16>, _>>()
            .map_err(|e| Error::Usage(format!("--hostfwd {list}: {e}")))?,
    };
    let tap = args.flag_with("--net", "tap");
    let net = !tap && args.flag("--net");
    if tap {
        if !hostfwd.is_empty() {
            return Err(Error::Usage(
                "--hostfwd is for --net (the user network); with --net tap, run clients \
                 inside the namespace"
                    .into(),
            ));
        }
        let queues = machine.smp;
        machine.extra.extend(crate::netns::qemu_args(queues, None));
        machine
            .fw_cfg
            .push(("opt/percore/net".into(), crate::netns::GUEST_CONFIG.into()));
        // The samples, started at boot (reached from inside the namespace).
        machine
            .fw_cfg
            .push((crate::net::SERVE_FILE.into(), "echo,http".into()));
    } else if net && hostfwd.is_empty() {
        // The samples, started at boot, on the usual loopback ports.
        machine
            .extra
            .extend(crate::net::args_with(None, &crate::net::RUN_FORWARDS, &[]));
        machine
            .fw_cfg
            .push((crate::net::SERVE_FILE.into(), "echo,http".into()));
        eprintln!("{}", crate::net::run_instructions());
    } else if !hostfwd.is_empty() {
        if !net {
            return Err(Error::Usage("--hostfwd needs --net".into()));
        }
        machine.extra.extend(crate::net::args(None, &hostfwd));
    }
    let release = args.flag("--release");
    std::mem::take(args).finish()?;
    // Made last, so that nothing after it fails before QEMU runs; deleted
    // when this function returns (QEMU has ended by then).
    let namespace = if tap {
        Some(crate::netns::Namespace::for_queues(machine.smp)?)
    } else {
        None
    };
    let ovmf = tools::ensure(machine.needs())?;
    let built = build::kernel(KernelKind::Kernel, release)?;
    let vars = vars_copy(&ovmf, "run")?;
    // `mon:stdio` multiplexes the serial console and the QEMU monitor on this
    // terminal: Ctrl-A X quits, Ctrl-A C toggles the monitor.
    machine
        .extra
        .splice(0..0, ["-serial".to_string(), "mon:stdio".to_string()]);
    let mut command = machine.command(&built.images, &ovmf, &vars);
    if let Some(namespace) = &namespace {
        command = namespace.exec(&command);
        let n = namespace.name();
        eprintln!(
            "xtask: network namespace {n}: the guest is 10.9.0.2 on {}; reach it from there, e.g.\n\
             xtask:     ip netns exec {n} ping 10.9.0.2\n\
             xtask:     ip netns exec {n} curl http://10.9.0.2/\n\
             xtask:     ip netns exec {n} nc 10.9.0.2 7",
            crate::netns::TAP
        );
    }
    eprintln!("xtask: {}", error::display(&command));
    eprintln!("xtask: serial console follows; Ctrl-A X quits QEMU");
    let status = match &namespace {
        Some(_) => crate::netns::status_guarded(&mut command),
        None => command.status(),
    };
    let status = status.map_err(|error| Error::Spawn {
        command: error::display(&command),
        error,
    });
    let _ = std::fs::remove_file(&vars);
    let status = status?;
    match status.code() {
        Some(0) | Some(EXIT_SUCCESS) => Ok(()),
        Some(EXIT_FAILURE) => Err(Error::Other(
            "the kernel reported a failure (see its output above)".into(),
        )),
        _ => Err(Error::CommandFailed {
            what: "QEMU".into(),
            command: error::display(&command),
            status: status.to_string(),
        }),
    }
}

/// `cargo xtask gdb`: QEMU paused at reset with a gdb stub on port 1234.
pub fn gdb(args: &mut Args) -> Result<(), Error> {
    let mut machine = machine_from_args(args)?;
    std::mem::take(args).finish()?;
    let ovmf = tools::ensure(machine.needs())?;
    let built = build::kernel(KernelKind::Kernel, false)?;
    let vars = vars_copy(&ovmf, "gdb")?;
    machine
        .extra
        .extend(["-serial", "mon:stdio", "-s", "-S"].map(String::from));
    let mut command = machine.command(&built.images, &ovmf, &vars);
    println!("QEMU is paused, waiting for gdb on localhost:1234. In another terminal:");
    // `hbreak`: a software breakpoint cannot be planted before the
    // bootloader has mapped the kernel; a hardware one can.
    println!();
    println!(
        "    gdb -ex 'add-symbol-file {} -o {:#x}' -ex 'target remote :1234' -ex 'hbreak kernel_main' -ex continue",
        built.elf.display(),
        KERNEL_BASE
    );
    println!();
    let result = error::run("QEMU", &mut command);
    let _ = std::fs::remove_file(&vars);
    result
}

/// Where the kernel is loaded; must match `percore_kernel::boot::KERNEL_BASE`.
const KERNEL_BASE: u64 = 0xFFFF_FFFF_8000_0000;

/// How a captured QEMU run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The guest wrote the success code to isa-debug-exit.
    Success,
    /// The guest wrote the failure code.
    Failure,
    /// QEMU exited 0: with `-no-reboot` that is a triple fault or a reset.
    ResetOrTripleFault,
    /// The guest did not finish in time and was killed.
    Timeout(Duration),
    /// The host killed QEMU (SIGKILL) on purpose, as the caller's `kill`
    /// check asked ([`run_captured_until`]).
    Killed,
    /// QEMU itself failed (bad arguments, missing file, ...).
    Qemu(String),
}

/// The result of a captured run: how it ended and every serial line.
pub struct Captured {
    pub exit: Exit,
    pub lines: Vec<String>,
    pub elapsed: Duration,
}

/// Runs `command` with its serial output captured, killing it after `timeout`.
/// `echo` prints serial lines live.
pub fn run_captured(command: Command, timeout: Duration, echo: bool) -> Result<Captured, Error> {
    run_captured_until(command, timeout, echo, &mut |_| false)
}

/// Like [`run_captured`], and QEMU is killed with SIGKILL (no chance to
/// flush or clean up anything) as soon as `kill` — asked about the lines
/// so far, every 10 ms or so — says so; the exit is then [`Exit::Killed`].
pub fn run_captured_until(
    mut command: Command,
    timeout: Duration,
    echo: bool,
    kill: &mut dyn FnMut(&[String]) -> bool,
) -> Result<Captured, Error> {
    command.arg("-serial").arg("stdio");
    let watcher = qmp::Watcher::attach(&mut command);
    let qemu_ended = watcher.ended();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = error::display(&command);
    let start = Instant::now();
    let mut child = command.spawn().map_err(|error| Error::Spawn {
        command: shown.clone(),
        error,
    })?;
    let watch = watcher.watch();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout was piped");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut killed = false;
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            if echo {
                println!("    | {line}");
            }
            lines.push(line);
        }
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if kill(&lines) {
            // `Child::kill` is SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
            killed = true;
            break None;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = reader.join();
    lines.extend(rx.try_iter());
    qemu_ended.store(true, std::sync::atomic::Ordering::Relaxed);
    // A triple fault: every core's registers at the moment of it.
    if let Ok(Some(dump)) = watch.join() {
        lines.push(String::from("qemu: the guest triple-faulted; registers:"));
        lines.extend(dump);
    }
    let exit = match status {
        None if killed => Exit::Killed,
        None => Exit::Timeout(timeout),
        Some(status) => match status.code() {
            Some(EXIT_SUCCESS) => Exit::Success,
            Some(EXIT_FAILURE) => Exit::Failure,
            Some(0) => Exit::ResetOrTripleFault,
            _ => Exit::Qemu(format!(
                "{status}: {}\n  command: {shown}",
                stderr_of(&mut child)
            )),
        },
    };
    Ok(Captured {
        exit,
        lines,
        elapsed: start.elapsed(),
    })
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text.trim().to_string()
}
