//! `cargo xtask test`: host unit tests, loom models, then the in-QEMU suite.
//!
//! In-QEMU protocol (see `tests/src/harness.rs`): the host passes a command in
//! the fw_cfg file `opt/percore/tests` — `list`, or `run NAME NAME ...` — and
//! the test kernel answers on the serial port with `test-list NAME KIND`,
//! `test-ok NAME` and `test-fail NAME: WHY` lines, then exits QEMU through
//! isa-debug-exit. Each boot has a host-side timeout; a guest that hangs,
//! triple-faults or stops early fails the tests it did not finish, and the
//! last 50 serial lines are printed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::args::Args;
use crate::build::{self, KernelKind};
use crate::disk::{self, DiskSpec};
use crate::disk_bench;
use crate::durable;
use crate::error::{self, Error};
use crate::linux;
use crate::netload;
use crate::netload_tests;
use crate::qemu::{self, Captured, Exit, Firmware, Machine};
use crate::tools;

pub const FW_CFG_NAME: &str = "opt/percore/tests";
const TAIL_LINES: usize = 50;

#[derive(Default)]
pub struct Tally {
    passed: u64,
    failed: u64,
    skipped: u64,
    /// "N on MACHINE: why", for the summary.
    skip_reasons: Vec<String>,
    failures: Vec<String>,
}

impl Tally {
    /// `count` tests not run, and why ("N on MACHINE: why").
    pub fn skip(&mut self, count: usize, reason: &str) {
        self.skipped += count as u64;
        self.skip_reasons.push(reason.to_string());
    }

    /// Records the test `name` as skipped, for `why`.
    pub fn skip_one(&mut self, name: &str, why: &str) {
        println!("test {name} ... skipped: {why}");
        self.skipped += 1;
        self.skip_reasons.push(format!("{name}: {why}"));
    }

    pub fn record(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.failures.push(name.to_string());
        }
    }
}

pub fn run(args: &mut Args) -> Result<(), Error> {
    let host_only = args.flag("--host");
    let qemu_only = args.flag("--qemu");
    let verbose = args.flag("--verbose");
    let linux_net = args.flag("--linux-net");
    let filter = args.next_positional();
    std::mem::take(args).finish()?;
    let mut tally = Tally::default();
    if !qemu_only {
        host_tests(&mut tally)?;
        loom_tests(&mut tally)?;
    }
    if !host_only {
        qemu_tests(filter.as_deref(), verbose, &mut tally)?;
        if filter.as_deref().is_none_or(|f| LINUX_SMOKE.contains(f)) {
            linux_smoke(&mut tally);
        }
        if filter
            .as_deref()
            .is_none_or(|f| crate::net_host::NAME.contains(f))
        {
            crate::net_host::run(&mut tally)?;
        }
        if filter
            .as_deref()
            .is_none_or(|f| crate::user_net::NAME.contains(f))
        {
            crate::user_net::run(&mut tally)?;
        }
        if filter
            .as_deref()
            .is_none_or(|f| crate::net_tap::NAME.contains(f))
        {
            crate::net_tap::run(&mut tally)?;
        }
        if filter
            .as_deref()
            .is_none_or(|f| disk_bench::SMOKE.contains(f))
        {
            disk_bench_smoke(&mut tally);
        }
        if filter
            .as_deref()
            .is_none_or(|f| crate::net_bench::SMOKE.contains(f))
        {
            net_bench_smoke(&mut tally);
        }
        let net_target = if linux_net {
            netload::Target::Linux
        } else {
            netload::Target::Percore
        };
        if netload_tests::selected(net_target, filter.as_deref()) {
            netload_tests::run(net_target, filter.as_deref(), &mut tally);
        }
    }
    if !tally.failures.is_empty() {
        println!("\nfailures:");
        for name in &tally.failures {
            println!("    {name}");
        }
    }
    for reason in &tally.skip_reasons {
        println!("\nskipped {reason}");
    }
    let skipped = if tally.skipped > 0 {
        format!(", {} skipped", tally.skipped)
    } else {
        String::new()
    };
    println!(
        "\n{} passed, {} failed{skipped}",
        tally.passed, tally.failed
    );
    if tally.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Package names of the crates under `libs/`.
pub fn library_packages() -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(build::workspace_root().join("libs"))? {
        let manifest = entry?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if let Some(name) = text.lines().find_map(|l| {
            l.trim()
                .strip_prefix("name = ")
                .map(|v| v.trim_matches('"').to_string())
        }) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Runs a `cargo test` command, echoing its output and adding up its
/// `test result:` lines. A build failure counts as one failed test.
fn cargo_test(
    label: &str,
    mut command: std::process::Command,
    tally: &mut Tally,
) -> Result<(), Error> {
    println!("\n== {label}: {}", error::display(&command));
    command.stdout(Stdio::piped());
    let mut child = command.spawn().map_err(|error| Error::Spawn {
        command: error::display(&command),
        error,
    })?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
        }
    }
    let status = child.wait()?;
    tally.passed += passed;
    tally.failed += failed;
    if failed > 0 {
        tally.failures.push(format!("{label} ({failed} failed)"));
    } else if !status.success() {
        tally.record(&format!("{label} (did not build or run: {status})"), false);
    }
    Ok(())
}

/// In `"ok. 12 passed; 0 failed; ..."`, the number before `word`.
fn count_before(text: &str, word: &str) -> u64 {
    text.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word.trim_start())
                .map(str::trim)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn host_tests(tally: &mut Tally) -> Result<(), Error> {
    let mut command = build::cargo();
    command.args(["test", "--workspace", "--no-fail-fast"]);
    for package in build::BARE_METAL_PACKAGES {
        command.args(["--exclude", package]);
    }
    cargo_test("host unit tests", command, tally)?;
    let mut kernel = build::cargo();
    kernel.args([
        "test",
        "--package",
        "percore-kernel",
        "--lib",
        "--target",
        &build::host_target()?,
    ]);
    cargo_test("the kernel on the simulated arch (host)", kernel, tally)?;
    // The vendored smoltcp (outside the workspace): its own unit tests and
    // ours, over the upstream fixes and our patch (its PERCORE.md).
    let mut smoltcp = build::cargo();
    smoltcp
        .args([
            "test",
            "--manifest-path",
            "third_party/smoltcp/Cargo.toml",
            "--lib",
            "--features",
            "std,alloc,log,medium-ethernet,medium-ip,proto-ipv4,proto-ipv6,\
             socket-tcp,socket-udp,socket-dhcpv4,socket-icmp,socket-raw,socket-dns",
        ])
        .env("CARGO_TARGET_DIR", build::target_dir().join("smoltcp"));
    cargo_test("the vendored smoltcp", smoltcp, tally)
}

/// Loom model checks of every library that has `tests/loom.rs`, in their own
/// target directory (they are built with `--cfg loom`).
fn loom_tests(tally: &mut Tally) -> Result<(), Error> {
    let root = build::workspace_root();
    for package in library_packages()? {
        let dir = package.trim_start_matches("percore-");
        if !root.join("libs").join(dir).join("tests/loom.rs").is_file() {
            continue;
        }
        let mut command = build::cargo();
        command
            .args(["test", "--package", &package, "--release", "--test", "loom"])
            .env("RUSTFLAGS", "--cfg loom")
            .env(
                "LOOM_MAX_PREEMPTIONS",
                std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into()),
            )
            .env("CARGO_TARGET_DIR", build::target_dir().join("loom"));
        cargo_test(&format!("loom models of {package}"), command, tally)?;
    }
    Ok(())
}

/// What kind of test the test kernel says a test is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum GuestKind {
    Normal,
    /// Passes only by raising this exception vector; ends its boot.
    Fault(u8),
    /// Passes only by panicking on an application core; ends its boot.
    Panic,
    /// A benchmark, not a test.
    Bench,
    /// Runs on a machine of its own, set up by this name (`disk::own_machine`).
    Machine(String),
}

/// One in-QEMU test as the test kernel describes it.
struct GuestTest {
    name: String,
    kind: GuestKind,
}

pub fn timeout() -> Duration {
    let secs = std::env::var("PERCORE_QEMU_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// A machine every normal test runs on.
struct Config {
    label: &'static str,
    machine: Machine,
    /// Why this machine cannot run here, if it cannot.
    unavailable: Option<&'static str>,
    /// Its virtio-blk disk, if it has one (the `disk_*` tests run only there).
    disk: Option<DiskSpec>,
    /// Whether it has a virtio-net device (the `net_*` tests run only there).
    net: bool,
}

/// What the guest must report on a machine: APIC mode and timer mode.
#[derive(Clone, Copy)]
struct Expect {
    apic: &'static str,
    timer: &'static str,
}

/// xAPIC (`qemu64`, or `max` without x2APIC), no TSC-deadline timer (TCG
/// never offers one).
const XAPIC: Expect = Expect {
    apic: "xapic",
    timer: "one-shot",
};

/// x2APIC under TCG (QEMU 8.1 or later; its `max` model has it by default).
const X2APIC: Expect = Expect {
    apic: "x2apic",
    timer: "one-shot",
};

/// The machines every normal test runs on. Each tells the guest what to
/// expect through fw_cfg (`opt/percore/expect-*`). All run under TCG but the
/// KVM one, which only runs where KVM works.
fn matrix() -> Vec<Config> {
    let config = |label, firmware, smp: u32, cpu: Option<&str>, expect: Expect| {
        let mut machine = Machine::new(firmware, smp);
        machine.cpu = cpu.map(String::from);
        for (name, value) in [
            ("cores", smp.to_string()),
            ("apic", expect.apic.into()),
            ("timer", expect.timer.into()),
        ] {
            machine
                .fw_cfg
                .push((format!("opt/percore/expect-{name}"), value));
        }
        Config {
            label,
            machine,
            unavailable: None,
            disk: None,
            net: false,
        }
    };
    // Disks on an xAPIC and an x2APIC machine with a queue per core, and on
    // a 4-core machine whose device has 2 queues (cores 2 and 3 share).
    let with_disk = |mut config: Config, queues: Option<u32>| {
        config.disk = Some(DiskSpec {
            queues,
            ..DiskSpec::default()
        });
        config
    };
    // A network device on one xAPIC and one x2APIC disk machine (no extra boots).
    let with_net = |mut config: Config| {
        config.net = true;
        config
    };
    // KVM's `host` model adds the TSC-deadline timer, which TCG never offers.
    let kvm_host = Expect {
        apic: "x2apic",
        timer: "tsc-deadline",
    };
    let mut kvm = config(
        "bios-smp2-kvm-host",
        Firmware::Bios,
        2,
        Some("host"),
        kvm_host,
    );
    kvm.machine.kvm = true;
    if !tools::kvm_available() {
        kvm.unavailable = Some("needs KVM (no vmx/svm in the CPU flags, or /dev/kvm unusable)");
    }
    let (x2apic_cpu, xapic_cpu) = (Some(qemu::X2APIC_CPU), Some("max,-x2apic"));
    vec![
        config("bios-smp1", Firmware::Bios, 1, None, X2APIC),
        with_net(with_disk(
            config(
                "bios-smp2-qemu64-xapic",
                Firmware::Bios,
                2,
                Some("qemu64"),
                XAPIC,
            ),
            None,
        )),
        config(
            "bios-smp2-tcg-x2apic",
            Firmware::Bios,
            2,
            x2apic_cpu,
            X2APIC,
        ),
        with_disk(
            config("bios-smp4", Firmware::Bios, 4, None, X2APIC),
            Some(2),
        ),
        config("bios-smp8-xapic", Firmware::Bios, 8, xapic_cpu, XAPIC),
        with_net(with_disk(
            config("uefi-smp4", Firmware::Uefi, 4, None, X2APIC),
            None,
        )),
        kvm,
    ]
}

fn qemu_tests(filter: Option<&str>, verbose: bool, tally: &mut Tally) -> Result<(), Error> {
    let ovmf = tools::ensure(tools::Need::X2apic)?;
    let built = build::kernel(KernelKind::Tests, false)?;
    let boot = |machine: &Machine, command: &str| -> Result<Captured, Error> {
        let mut machine = machine.clone();
        machine.fw_cfg.push((FW_CFG_NAME.into(), command.into()));
        let vars = qemu::vars_copy(&ovmf, "test")?;
        let captured = qemu::run_captured(
            machine.command(&built.images, &ovmf, &vars),
            timeout(),
            verbose,
        );
        let _ = std::fs::remove_file(&vars);
        captured
    };
    let boot_until = |machine: &Machine,
                      command: &str,
                      kill: &mut dyn FnMut(&[String]) -> bool|
     -> Result<Captured, Error> {
        let mut machine = machine.clone();
        machine.fw_cfg.push((FW_CFG_NAME.into(), command.into()));
        let vars = qemu::vars_copy(&ovmf, "test")?;
        let captured = qemu::run_captured_until(
            machine.command(&built.images, &ovmf, &vars),
            timeout(),
            verbose,
            kill,
        );
        let _ = std::fs::remove_file(&vars);
        captured
    };
    // A boot whose QEMU command is wrapped (run inside a network namespace).
    let boot_wrapped = |machine: &Machine,
                        command: &str,
                        wrap: &dyn Fn(&std::process::Command) -> std::process::Command,
                        kill: &mut dyn FnMut(&[String]) -> bool|
     -> Result<Captured, Error> {
        let mut machine = machine.clone();
        machine.fw_cfg.push((FW_CFG_NAME.into(), command.into()));
        let vars = qemu::vars_copy(&ovmf, "test")?;
        let captured = qemu::run_captured_until(
            wrap(&machine.command(&built.images, &ovmf, &vars)),
            timeout(),
            verbose,
            kill,
        );
        let _ = std::fs::remove_file(&vars);
        captured
    };

    let listing = boot(&Machine::new(Firmware::Bios, 1), "list")?;
    let tests = parse_listing(&listing)?;
    let selected: Vec<&GuestTest> = tests
        .iter()
        .filter(|t| filter.is_none_or(|f| t.name.contains(f)))
        .collect();
    println!(
        "\n== in-QEMU tests: {} selected of {}",
        selected.len(),
        tests.len()
    );

    let normal: Vec<&str> = selected
        .iter()
        .filter(|t| t.kind == GuestKind::Normal)
        .map(|t| t.name.as_str())
        .collect();
    if !normal.is_empty() {
        for config in matrix() {
            let names: Vec<&str> = normal
                .iter()
                .copied()
                .filter(|n| config.disk.is_some() || !disk::needs_disk(n))
                .filter(|n| config.net || !crate::net::needs_net(n))
                .collect();
            if names.is_empty() {
                continue;
            }
            if let Some(why) = config.unavailable {
                println!("test qemu/{}/* ... skipped: {why}", config.label);
                tally.skipped += names.len() as u64;
                tally
                    .skip_reasons
                    .push(format!("{} on {}: {why}", names.len(), config.label));
                continue;
            }
            let mut machine = config.machine.clone();
            let image = match &config.disk {
                Some(spec) => Some(disk::attach(&mut machine, spec, config.label)?),
                None => None,
            };
            if config.net {
                crate::net::attach(&mut machine);
            }
            let captured = boot(&machine, &format!("run {}", names.join(" ")))?;
            report(config.label, &names, &captured, tally);
            if let Some(image) = &image
                && names.contains(&disk::PATTERN_TEST)
            {
                check_image(config.label, image, &captured, tally);
            }
            if let Some(image) = &image
                && names.contains(&durable::EVERY_CORE_TEST)
            {
                durable::check_every_core(config.label, &image.path, &captured, tally);
            }
        }
    }
    // Tests that need a machine of their own (a read-only disk, a disk
    // that fails on purpose), one boot per machine.
    let mut own: Vec<(&str, Vec<&str>)> = Vec::new();
    for test in &selected {
        if let GuestKind::Machine(name) = &test.kind {
            match own.iter_mut().find(|(m, _)| m == name) {
                Some((_, names)) => names.push(&test.name),
                None => own.push((name, vec![&test.name])),
            }
        }
    }
    for (name, names) in own {
        // The tap machine, driven by the host (netmq.rs).
        if crate::netmq::drives(name) {
            crate::netmq::run(&names, &boot_wrapped, tally)?;
            continue;
        }
        // The disk-log calls from ring 3, the image checked after (udlog.rs).
        if crate::udlog::drives(name) {
            crate::udlog::run(&names, &boot, tally)?;
            continue;
        }
        // Sequences of boots on one image, driven by the host (durable.rs).
        if durable::drives(name) {
            let boots = durable::Boots {
                boot: &boot,
                boot_until: &boot_until,
            };
            durable::run(name, &names, &boots, tally)?;
            continue;
        }
        let Some((mut machine, spec)) = disk::own_machine(name) else {
            for test in &names {
                tally.record(&format!("qemu/{name}/{test} (no such machine)"), false);
            }
            continue;
        };
        let _image = disk::attach(&mut machine, &spec, name)?;
        let captured = boot(&machine, &format!("run {}", names.join(" ")))?;
        report(name, &names, &captured, tally);
    }
    // A test that faults or panics on purpose ends its boot, so each gets its own.
    for test in &selected {
        let smp = match test.kind {
            GuestKind::Fault(_) => 1,
            GuestKind::Panic => 4,
            GuestKind::Normal | GuestKind::Bench | GuestKind::Machine(_) => continue,
        };
        let captured = boot(
            &Machine::new(Firmware::Bios, smp),
            &format!("run {}", test.name),
        )?;
        let label = format!("bios-smp{smp}");
        report(&label, &[test.name.as_str()], &captured, tally);
        if test.kind == GuestKind::Panic {
            let reports = captured
                .lines
                .iter()
                .filter(|l| l.starts_with("PANIC on core"))
                .count();
            let name = format!("qemu/{label}/{}::reported_once", test.name);
            if reports == 1 {
                println!("test {name} ... ok");
            } else {
                println!("test {name} ... FAILED: {reports} panic reports");
            }
            tally.record(&name, reports == 1);
        }
    }
    // The kernel users run, on PC-like machines with a screen (screen.rs).
    for outcome in crate::screen::run(filter)? {
        tally.record(&outcome.name, outcome.result.is_ok());
    }
    Ok(())
}

/// After a boot that ran the disk pattern test: the image file must hold
/// the pattern in every range the guest reported.
fn check_image(label: &str, image: &disk::TempImage, captured: &Captured, tally: &mut Tally) {
    let name = format!("qemu/{label}/disk_image_holds_guest_pattern");
    let verdict = disk::check_pattern(&image.path, &captured.lines);
    match &verdict {
        Ok(bytes) => println!("test {name} ... ok ({bytes} bytes checked)"),
        Err(why) => println!("test {name} ... FAILED: {why}"),
    }
    tally.record(&name, verdict.is_ok());
}

fn parse_listing(listing: &Captured) -> Result<Vec<GuestTest>, Error> {
    let tests: Vec<GuestTest> = listing
        .lines
        .iter()
        .filter_map(|line| {
            let mut words = line.strip_prefix("test-list ")?.split_whitespace();
            let name = words.next()?.to_string();
            let kind = match words.next()? {
                "normal" => GuestKind::Normal,
                "panic" => GuestKind::Panic,
                "bench" => GuestKind::Bench,
                other if other.starts_with("machine:") => {
                    GuestKind::Machine(other["machine:".len()..].to_string())
                }
                other => GuestKind::Fault(other.strip_prefix("fault:")?.parse().ok()?),
            };
            Some(GuestTest { name, kind })
        })
        .collect();
    if listing.exit != Exit::Success || tests.is_empty() {
        print_tail(&listing.lines);
        return Err(Error::Other(format!(
            "the test kernel did not list its tests ({:?}); serial output above",
            listing.exit
        )));
    }
    Ok(tests)
}

/// Matches the guest's verdicts to `expected` and records each.
pub fn report(label: &str, expected: &[&str], captured: &Captured, tally: &mut Tally) {
    let mut any_failed = false;
    for name in expected {
        let full = format!("qemu/{label}/{name}");
        let ok_line = format!("test-ok {name}");
        let fail_prefix = format!("test-fail {name}:");
        let verdict = captured.lines.iter().find_map(|line| {
            if line.starts_with(&ok_line) {
                Some(Ok(()))
            } else {
                line.strip_prefix(&fail_prefix)
                    .map(|why| Err(why.trim().to_string()))
            }
        });
        match &verdict {
            Some(Ok(())) => println!("test {full} ... ok"),
            Some(Err(why)) => println!("test {full} ... FAILED: {why}"),
            None => println!(
                "test {full} ... FAILED: no verdict; the guest ended with {:?}",
                captured.exit
            ),
        }
        let ok = matches!(verdict, Some(Ok(())));
        any_failed |= !ok;
        tally.record(&full, ok);
    }
    let clean_exit = captured.exit == Exit::Success;
    if any_failed || !clean_exit {
        if !any_failed {
            println!(
                "test qemu/{label} boot ... FAILED: all tests passed but the guest ended with {:?}",
                captured.exit
            );
            tally.record(&format!("qemu/{label} (exit)"), false);
        }
        print_tail(&captured.lines);
    }
    println!("   ({label}: {:.1} s)", captured.elapsed.as_secs_f64());
}

pub fn print_tail(lines: &[String]) {
    // QEMU's own lines (a triple fault's registers) come last: show them
    // all, after the last serial lines.
    let qemu = lines
        .iter()
        .rev()
        .take_while(|l| l.starts_with("qemu: "))
        .count();
    let start = lines.len().saturating_sub(TAIL_LINES + qemu);
    println!("   --- last {} serial lines ---", lines.len() - start);
    for line in &lines[start..] {
        println!("   | {line}");
    }
    println!("   ---");
}

/// The smoke test of the Linux reference guest (`cargo xtask bench compare`):
/// it builds, boots on a 2-core benchmark machine and prints a figure.
const LINUX_SMOKE: &str = "qemu/linux-ref/boots_and_measures";

fn linux_smoke(tally: &mut Tally) {
    let started = std::time::Instant::now();
    let result = linux::prepare().and_then(|guest| {
        linux::boot(
            &guest,
            &Machine::new(Firmware::Bios, 2),
            "null-syscall",
            timeout(),
        )
    });
    let verdict = match result {
        Ok(captured) => {
            let wanted = ["bench boot_us ", "bench null_syscall_p50_ns "];
            match wanted
                .iter()
                .find(|w| !captured.lines.iter().any(|l| l.starts_with(*w)))
            {
                None => Ok(()),
                Some(missing) => {
                    print_tail(&captured.lines);
                    Err(format!("no `{}` line", missing.trim()))
                }
            }
        }
        Err(error) => Err(error.to_string()),
    };
    match &verdict {
        Ok(()) => println!("test {LINUX_SMOKE} ... ok"),
        Err(why) => println!("test {LINUX_SMOKE} ... FAILED: {why}"),
    }
    println!("   (linux-ref: {:.1} s)", started.elapsed().as_secs_f64());
    tally.record(LINUX_SMOKE, verdict.is_ok());
}

/// The smoke test of `bench disk` and `bench compare disk` (see
/// `disk_bench::smoke`).
fn disk_bench_smoke(tally: &mut Tally) {
    let started = std::time::Instant::now();
    let name = disk_bench::SMOKE;
    let verdict = disk_bench::smoke();
    match &verdict {
        Ok(what) => println!("test {name} ... ok ({what})"),
        Err(why) => println!("test {name} ... FAILED: {why}"),
    }
    println!("   (bench-disk: {:.1} s)", started.elapsed().as_secs_f64());
    tally.record(name, verdict.is_ok());
}

/// The smoke test of `bench net` and `bench compare net` (see
/// `net_bench::smoke`).
fn net_bench_smoke(tally: &mut Tally) {
    let started = std::time::Instant::now();
    let name = crate::net_bench::SMOKE;
    let verdict = crate::net_bench::smoke();
    match &verdict {
        Ok(what) => println!("test {name} ... ok ({what})"),
        Err(why) => println!("test {name} ... FAILED: {why}"),
    }
    println!("   (bench-net: {:.1} s)", started.elapsed().as_secs_f64());
    tally.record(name, verdict.is_ok());
}

/// Boots the test kernel to run one in-kernel benchmark and prints its
/// output (the table and its `bench NAME VALUE UNIT` lines).
pub fn guest_bench(args: &mut Args, name: &str) -> Result<(), Error> {
    guest_bench_boots(args, name, 1)
}

/// Like [`guest_bench`], `boots` times; with more than one boot, each
/// boot's output is followed by a table of the medians and one `bench`
/// line per figure with its median.
pub fn guest_bench_boots(args: &mut Args, name: &str, boots: usize) -> Result<(), Error> {
    let smp: u32 = args.option("--smp")?.unwrap_or(4);
    let extra = args.passthrough().to_vec();
    std::mem::take(args).finish()?;
    let mut machine = Machine::new(Firmware::Bios, smp);
    machine.kvm = tools::kvm_available();
    machine.extra = extra;
    bench_boots(&machine, name, boots, timeout()).map(drop)
}

/// One figure of a benchmark: name, unit, and its value in each boot.
pub struct BenchFigure {
    pub name: String,
    pub unit: String,
    pub values: Vec<f64>,
}

impl BenchFigure {
    pub fn median(&self) -> f64 {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }
}

/// Boots the (release) test kernel on `machine` `boots` times to run the
/// in-kernel benchmark `name`, each boot within `limit`, prints its output
/// as [`guest_bench_boots`] says, and returns its figures.
pub fn bench_boots(
    machine: &Machine,
    name: &str,
    boots: usize,
    limit: Duration,
) -> Result<Vec<BenchFigure>, Error> {
    let ovmf = tools::ensure(machine.needs())?;
    let built = build::kernel(KernelKind::Tests, true)?;
    let mut machine = machine.clone();
    machine
        .fw_cfg
        .push((FW_CFG_NAME.into(), format!("run {name}")));
    let mut figures: Vec<BenchFigure> = Vec::new();
    for boot in 1..=boots {
        if boots > 1 {
            println!("-- boot {boot} of {boots}");
        }
        let vars = qemu::vars_copy(&ovmf, "bench")?;
        let captured =
            qemu::run_captured(machine.command(&built.images, &ovmf, &vars), limit, false);
        let _ = std::fs::remove_file(&vars);
        let captured = captured?;
        let start = captured
            .lines
            .iter()
            .position(|l| l == &format!("test-start {name}"))
            .map_or(0, |i| i + 1);
        for line in captured.lines[start..]
            .iter()
            .take_while(|l| !l.starts_with("test-"))
        {
            if boots == 1 || !line.starts_with("bench ") {
                println!("{line}");
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["bench", figure, value, unit] = words[..]
                && let Ok(value) = value.parse::<f64>()
            {
                match figures.iter_mut().find(|f| f.name == figure) {
                    Some(f) => f.values.push(value),
                    None => figures.push(BenchFigure {
                        name: figure.into(),
                        unit: unit.into(),
                        values: vec![value],
                    }),
                }
            }
        }
        if captured.exit != Exit::Success {
            print_tail(&captured.lines);
            return Err(Error::Other(format!(
                "benchmark {name} did not finish ({:?})",
                captured.exit
            )));
        }
    }
    if boots > 1 {
        println!("\n-- medians of {boots} boots");
        let width = figures.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for figure in &figures {
            println!(
                "{:<width$}  {:>14}  {}   (boots: {:?})",
                figure.name,
                figure.median(),
                figure.unit,
                figure.values
            );
        }
        for figure in &figures {
            println!("bench {} {} {}", figure.name, figure.median(), figure.unit);
        }
    }
    Ok(figures)
}
