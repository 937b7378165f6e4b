//! The guest side of the in-QEMU test protocol.
//!
//! The host writes a command into the fw_cfg file `opt/percore/tests`:
//! - `list`: print `test-list NAME normal` or `test-list NAME fault:VECTOR`
//!   for every test, then exit with success;
//! - `run NAME NAME ...`: run those tests in order, printing `test-start NAME`
//!   and then `test-ok NAME` or `test-fail NAME: WHY`, then
//!   `results: passed=N failed=M`, and exit with success only if none failed.
//!
//! A *fault* test passes only by raising the CPU exception it names: the
//! kernel's fatal-error hook checks the report and exits QEMU. Such a test
//! ends its boot, so the host runs each one alone.

use alloc::string::String;
use core::sync::atomic::{AtomicUsize, Ordering};

use percore_kernel::arch::x86_64::exception::ExceptionReport;
use percore_kernel::drivers::fw_cfg;
use percore_kernel::drivers::qemu_exit::{self, ExitCode};
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
static mut TABLE: &[Test] = &[];

/// Reads the host's command, runs it and exits QEMU.
pub fn run(kernel: &Kernel, tests: &'static [Test]) -> ! {
    // SAFETY: written once, before the hook that reads it is installed.
    unsafe { TABLE = tests };
    fatal::set_hook(on_fatal);
    let mut buffer = [0u8; 4096];
    let command = match fw_cfg::read_file(COMMAND_FILE, &mut buffer) {
        Ok(len) => core::str::from_utf8(&buffer[..len]).unwrap_or(""),
        Err(error) => {
            println!("test harness: no command in fw_cfg {COMMAND_FILE}: {error:?}");
            qemu_exit::exit(ExitCode::Failure)
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
                }
            }
            qemu_exit::exit(ExitCode::Success)
        }
        Some("run") => run_named(kernel, tests, words),
        _ => {
            println!("test harness: unknown command `{command}`");
            qemu_exit::exit(ExitCode::Failure)
        }
    }
}

fn run_named<'a>(kernel: &Kernel, tests: &[Test], names: impl Iterator<Item = &'a str>) -> ! {
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
        let test = &tests[index];
        println!("test-start {name}");
        CURRENT.store(index, Ordering::SeqCst);
        let result = (test.run)(kernel);
        CURRENT.store(usize::MAX, Ordering::SeqCst);
        let verdict = match (&test.kind, result) {
            (Kind::Normal | Kind::Bench, Ok(())) => Ok(()),
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
    qemu_exit::exit(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// The kernel's fatal-error hook while tests run.
fn on_fatal(fatal: &Fatal<'_>) -> ! {
    let index = CURRENT.load(Ordering::SeqCst);
    // SAFETY: TABLE was set before this hook was installed and never changes.
    let tests = unsafe { TABLE };
    let Some(test) = tests.get(index) else {
        println!("test harness: fatal error outside any test");
        qemu_exit::exit(ExitCode::Failure)
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
            qemu_exit::exit(ExitCode::Success)
        }
        Err(why) => {
            println!("test-fail {}: {why}", test.name);
            qemu_exit::exit(ExitCode::Failure)
        }
    }
}

/// A panic test passes if the panic happened on an application core with the
/// expected message, and every other online core stopped (on the NMI the
/// panicking core sent).
fn check_panic(message: &str, info: &core::panic::PanicInfo<'_>) -> Result<(), String> {
    use percore_kernel::arch::x86_64::{cpu_local, tsc};
    let me = cpu_local::core_id();
    let text = alloc::format!("{}", info.message());
    if me.0 == 0 || !text.contains(message) {
        return Err(alloc::format!("panic on core {me}: {text}"));
    }
    let deadline = tsc::rdtsc() + tsc::hz();
    let others = || {
        cpu_local::cores()
            .iter()
            .enumerate()
            .filter(|(i, slot)| *i != me.index() && slot.is_online())
            .filter(|(_, slot)| {
                !slot
                    .local()
                    .is_some_and(|l| l.stopped.load(Ordering::Acquire))
            })
            .count()
    };
    while others() > 0 && tsc::rdtsc() < deadline {
        core::hint::spin_loop();
    }
    match others() {
        0 => Ok(()),
        running => Err(alloc::format!(
            "{running} cores did not stop after the panic"
        )),
    }
}
