//! The serial console and the kernel logger behind the `log` facade.
//!
//! Every log line carries the time since boot (µs), the core id and the
//! level. A line is written under one lock hold with interrupts masked, so
//! lines from different cores or from interrupt handlers never interleave
//! inside a line. This is a leaf of the kernel: it writes, nothing more.
//! Reading what is typed is the UART driver's job (`drivers::uart`), which
//! reaches the port through [`with_uart`].

use core::fmt::{self, Write};

use spin::Mutex;

use crate::arch::{cpu, serial::Uart};

static SERIAL: Mutex<Option<Uart>> = Mutex::new(None);
static LOGGER: Logger = Logger;

/// Opens COM1 and installs the logger.
pub fn init(level: log::LevelFilter) {
    *SERIAL.lock() = Some(Uart::com1());
    // A second call (there is none) would fail harmlessly: keep the first logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Writes formatted text to the console as one unit.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    cpu::without_interrupts(|| {
        if let Some(port) = SERIAL.lock().as_mut() {
            // The UART cannot fail; a formatting error of a Display impl only
            // truncates this line.
            let _ = port.write_fmt(args);
        }
    });
}

/// Releases the console lock if a stopped context held it.
///
/// # Safety
/// Only for the fatal-error path, once the holder can no longer run.
pub unsafe fn force_unlock() {
    // SAFETY: forwarded to the caller.
    unsafe { SERIAL.force_unlock() }
}

/// Runs `f` on the UART with the console lock held and interrupts masked
/// (the UART driver's receive path; tests that drive the port directly).
pub fn with_uart<R>(f: impl FnOnce(&mut Uart) -> R) -> Option<R> {
    cpu::without_interrupts(|| SERIAL.lock().as_mut().map(f))
}

/// Prints to the console, without a log prefix.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the console, without a log prefix.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let us = crate::time::uptime_us();
        write_fmt(format_args!(
            "[{:>5}.{:06} c{} {:<5}] {}\n",
            us / 1_000_000,
            us % 1_000_000,
            cpu::core_id(),
            record.level(),
            record.args()
        ));
    }

    fn flush(&self) {}
}
