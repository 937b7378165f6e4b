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
use crate::error::{self, Error};
use crate::qemu::{self, Captured, Exit, Firmware, Machine};
use crate::tools;

const FW_CFG_NAME: &str = "opt/percore/tests";
const TAIL_LINES: usize = 50;

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, ok: bool) {
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
    let filter = args.next_positional();
    std::mem::take(args).finish()?;
    let mut tally = Tally::default();
    if !qemu_only {
        host_tests(&mut tally)?;
        loom_tests(&mut tally)?;
    }
    if !host_only {
        qemu_tests(filter.as_deref(), verbose, &mut tally)?;
    }
    if !tally.failures.is_empty() {
        println!("\nfailures:");
        for name in &tally.failures {
            println!("    {name}");
        }
    }
    println!("\n{} passed, {} failed", tally.passed, tally.failed);
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
    command.args([
        "test",
        "--workspace",
        "--exclude",
        "percore-kernel",
        "--exclude",
        "percore-tests",
    ]);
    cargo_test("host unit tests", command, tally)
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

/// One in-QEMU test as the test kernel describes it.
struct GuestTest {
    name: String,
    /// `Some(vector)` for a test that passes only by raising that exception.
    fault: Option<u8>,
}

fn timeout() -> Duration {
    let secs = std::env::var("PERCORE_QEMU_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// The machines every normal test runs on.
fn matrix() -> Vec<(String, Machine)> {
    vec![
        ("bios".into(), Machine::new(Firmware::Bios, 1)),
        ("uefi".into(), Machine::new(Firmware::Uefi, 1)),
    ]
}

fn qemu_tests(filter: Option<&str>, verbose: bool, tally: &mut Tally) -> Result<(), Error> {
    let ovmf = tools::ensure()?;
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
        .filter(|t| t.fault.is_none())
        .map(|t| t.name.as_str())
        .collect();
    if !normal.is_empty() {
        for (label, machine) in matrix() {
            let captured = boot(&machine, &format!("run {}", normal.join(" ")))?;
            report(&label, &normal, &captured, tally);
        }
    }
    // A test that faults on purpose ends its boot, so each gets its own.
    for test in selected.iter().filter(|t| t.fault.is_some()) {
        let captured = boot(
            &Machine::new(Firmware::Bios, 1),
            &format!("run {}", test.name),
        )?;
        report("bios", &[test.name.as_str()], &captured, tally);
    }
    Ok(())
}

fn parse_listing(listing: &Captured) -> Result<Vec<GuestTest>, Error> {
    let tests: Vec<GuestTest> = listing
        .lines
        .iter()
        .filter_map(|line| {
            let mut words = line.strip_prefix("test-list ")?.split_whitespace();
            let name = words.next()?.to_string();
            let fault = words
                .next()?
                .strip_prefix("fault:")
                .and_then(|v| v.parse().ok());
            Some(GuestTest { name, fault })
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
fn report(label: &str, expected: &[&str], captured: &Captured, tally: &mut Tally) {
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

fn print_tail(lines: &[String]) {
    let start = lines.len().saturating_sub(TAIL_LINES);
    println!("   --- last {} serial lines ---", lines.len() - start);
    for line in &lines[start..] {
        println!("   | {line}");
    }
    println!("   ---");
}
