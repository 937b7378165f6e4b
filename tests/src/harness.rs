//! The guest side of the in-QEMU test protocol.
//!
//! The host writes a command into the fw_cfg file `opt/percore/tests`:
//! - `list`: print `test-list NAME normal` or `test-list NAME fault:VECTOR`
//!   (or `machine:NAME` for a test that needs a machine the host sets up
//!   for it alone) for every test, then exit with success;
//! - `run NAME NAME ...`: run those tests in order, printing `test-start NAME`
//!   and then `test-ok NAME` or `test-fail NAME: WHY`, then
//!   `results: passed=N failed=M`, and exit with success only if none failed.
//!
//! A *fault* test passes only by raising the CPU exception it names: the
//! kernel's fatal-error hook checks the report and exits QEMU. Such a test
//! ends its boot, so the host runs each one alone.

use alloc::string::String;
use core::sync::atomic::{AtomicUsize, Ordering};

use alloc::vec::Vec;

use percore_kernel::arch::power::{ExitCode, exit_qemu};
use percore_kernel::arch::trap::ExceptionReport;
use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::drivers::fw_cfg;
use percore_kernel::fatal::{self, Fatal};
use percore_kernel::{Kernel, println};

const COMMAND_FILE: &str = "opt/percore/tests";

/// Checks the report of the exception a fault test raised.
pub type FaultCheck = fn(&ExceptionReport) -> Result<(), String>;

/// What makes a test pass.
pub enum Kind {
    /// Returning `Ok(())`.
    Normal,
    /// Raising exception `vector`, with a report that passes `check`.
    Fault { vector: u8, check: FaultCheck },
    /// Panicking on an application core with a message containing `message`,
    /// after which every other core must have stopped.
    Panic { message: &'static str },
    /// Not a test: a benchmark, run only by `cargo xtask bench`.
    Bench,
    /// Returning `Ok(())`, on a machine of its own that the host sets up
    /// by this name (e.g. one with a read-only disk).
    Machine(&'static str),
}

/// One named test.
pub struct Test {
    pub name: &'static str,
    pub kind: Kind,
    pub run: fn(&Kernel) -> Result<(), String>,
    /// Runs after every other test of its boot (it leaves the machine in a
    /// state other tests cannot use, e.g. other cores halted).
    pub runs_last: bool,
}

impl Test {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        run: fn(&Kernel) -> Result<(), String>,
    ) -> Test {
        Test {
            name,
            kind,
            run,
            runs_last: false,
        }
    }

    /// Marks the test to run after every other test of its boot.
    pub const fn last(mut self) -> Test {
        self.runs_last = true;
        self
    }
}

/// The test that is running, as an index into the table (usize::MAX: none),
/// for the fatal-error hook.
static CURRENT: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Every test, in the order of the suites.
static TABLE: spin::Once<Vec<&'static Test>> = spin::Once::new();

/// Reads the host's command, runs it and exits QEMU. `suites` are the test
/// lists of the test modules, in the order their tests run.
pub fn run(kernel: &Kernel, suites: &[&'static [Test]]) -> ! {
    let tests: &[&Test] = TABLE.call_once(|| suites.iter().flat_map(|s| s.iter()).collect());
    fatal::set_hook(on_fatal);
    let mut buffer = [0u8; 4096];
    let command = match fw_cfg::read_text(COMMAND_FILE, &mut buffer) {
        Ok(text) => text,
        Err(error) => {
            println!("test harness: no command in fw_cfg {COMMAND_FILE}: {error:?}");
            exit_qemu(ExitCode::Failure)
        }
    };
    let mut words = command.split_whitespace();
    match words.next() {
        Some("list") => {
            for test in tests {
                match test.kind {
                    Kind::Normal => println!("test-list {} normal", test.name),
                    Kind::Fault { vector, .. } => {
                        println!("test-list {} fault:{vector}", test.name)
                    }
                    Kind::Panic { .. } => println!("test-list {} panic", test.name),
                    Kind::Bench => println!("test-list {} bench", test.name),
                    Kind::Machine(machine) => {
                        println!("test-list {} machine:{machine}", test.name)
                    }
                }
            }
            exit_qemu(ExitCode::Success)
        }
        Some("run") => run_named(kernel, tests, words),
        _ => {
            println!("test harness: unknown command `{command}`");
            exit_qemu(ExitCode::Failure)
        }
    }
}

fn run_named<'a>(kernel: &Kernel, tests: &[&Test], names: impl Iterator<Item = &'a str>) -> ! {
    let (mut passed, mut failed) = (0, 0);
    let mut names: alloc::vec::Vec<&str> = names.collect();
    // Stable: the order asked for, except that `runs_last` tests go last.
    names.sort_by_key(|name| tests.iter().any(|t| t.name == *name && t.runs_last));
    for name in names {
        let Some(index) = tests.iter().position(|t| t.name == name) else {
            println!("test-fail {name}: no such test");
            failed += 1;
            continue;
        };
        let test = tests[index];
        println!("test-start {name}");
        CURRENT.store(index, Ordering::SeqCst);
        let result = (test.run)(kernel);
        CURRENT.store(usize::MAX, Ordering::SeqCst);
        let verdict = match (&test.kind, result) {
            (Kind::Normal | Kind::Bench | Kind::Machine(_), Ok(())) => Ok(()),
            (Kind::Panic { .. }, Ok(())) => Err(alloc::string::String::from(
                "expected a panic, but the test returned",
            )),
            (Kind::Fault { vector, .. }, Ok(())) => Err(alloc::format!(
                "expected exception vector {vector}, but the test returned"
            )),
            (_, Err(why)) => Err(why),
        };
        match verdict {
            Ok(()) => {
                println!("test-ok {name}");
                passed += 1;
            }
            Err(why) => {
                println!("test-fail {name}: {why}");
                failed += 1;
            }
        }
    }
    println!("results: passed={passed} failed={failed}");
    exit_qemu(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// The kernel's fatal-error hook while tests run.
fn on_fatal(fatal: &Fatal<'_>) -> ! {
    let index = CURRENT.load(Ordering::SeqCst);
    let Some(test) = TABLE.get().and_then(|tests| tests.get(index)) else {
        println!("test harness: fatal error outside any test");
        exit_qemu(ExitCode::Failure)
    };
    let verdict = match (&test.kind, fatal) {
        (Kind::Fault { vector, check }, Fatal::Exception(report)) if report.vector == *vector => {
            check(report)
        }
        (Kind::Fault { vector, .. }, Fatal::Exception(report)) => Err(alloc::format!(
            "expected exception vector {vector}, got {} (vector {})",
            report.mnemonic(),
            report.vector
        )),
        (Kind::Panic { message }, Fatal::Panic(info)) => check_panic(message, info),
        (_, Fatal::Exception(report)) => Err(alloc::format!("unexpected exception: {report}")),
        (_, Fatal::Panic(info)) => Err(alloc::format!("panicked: {}", info.message())),
    };
    match verdict {
        Ok(()) => {
            println!("test-ok {}", test.name);
            exit_qemu(ExitCode::Success)
        }
        Err(why) => {
            println!("test-fail {}: {why}", test.name);
            exit_qemu(ExitCode::Failure)
        }
    }
}

/// A panic test passes if the panic happened on an application core with the
/// expected message, and every other online core stopped (on the NMI the
/// panicking core sent).
fn check_panic(message: &str, info: &core::panic::PanicInfo<'_>) -> Result<(), String> {
    let me = cpu::core_id();
    let text = alloc::format!("{}", info.message());
    if me.0 == 0 || !text.contains(message) {
        return Err(alloc::format!("panic on core {me}: {text}"));
    }
    let deadline = clock::cycles() + clock::hz();
    let others = || {
        (0..cpu::core_count() as u16)
            .map(CoreId)
            .filter(|&c| c != me && cpu::is_online(c) && !cpu::is_stopped(c))
            .count()
    };
    while others() > 0 && clock::cycles() < deadline {
        core::hint::spin_loop();
    }
    match others() {
        0 => Ok(()),
        running => Err(alloc::format!(
            "{running} cores did not stop after the panic"
        )),
    }
}
