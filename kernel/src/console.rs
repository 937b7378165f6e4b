//! The serial console and the kernel logger behind the `log` facade.
//!
//! Every log line carries the time since boot (µs, from the TSC), the core id
//! and the level. A line is written under one lock hold with interrupts
//! disabled, so lines from different cores or from interrupt handlers never
//! interleave inside a line.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;
use uart_16550::SerialPort;

use percore_poll::{Interest, Ready};

use crate::arch::x86_64::cpu_local;
use crate::drivers::uart;
use crate::reactor::readiness::{self, CONSOLE_INPUT, Readiness, ReadinessError};

static SERIAL: Mutex<Option<SerialPort>> = Mutex::new(None);
static LOGGER: Logger = Logger;

/// Opens COM1 and installs the logger.
pub fn init(level: log::LevelFilter) {
    *SERIAL.lock() = Some(uart::com1());
    // A second call (there is none) would fail harmlessly: keep the first logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Writes formatted text to the console as one unit.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
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

/// Capacity of the console input buffer (a power of two).
const INPUT_CAPACITY: usize = 256;
static INPUT: [AtomicU8; INPUT_CAPACITY] = [const { AtomicU8::new(0) }; INPUT_CAPACITY];
/// Free-running counters: bytes written by the interrupt handler and bytes read.
static INPUT_HEAD: AtomicUsize = AtomicUsize::new(0);
static INPUT_TAIL: AtomicUsize = AtomicUsize::new(0);
static INPUT_RECEIVED: AtomicU64 = AtomicU64::new(0);
static INPUT_OVERRUNS: AtomicU64 = AtomicU64::new(0);

/// The COM1 receive interrupt: moves every waiting byte into the input buffer.
///
/// Single producer (the one core the IRQ is routed to); consumers claim
/// bytes with a CAS ([`read_byte`]). A byte that finds the buffer full is counted in
/// [`input_stats`] rather than silently lost.
pub fn on_receive_interrupt() {
    let mut serial = SERIAL.lock();
    let Some(port) = serial.as_mut() else { return };
    while let Ok(byte) = port.try_receive() {
        INPUT_RECEIVED.fetch_add(1, Ordering::Relaxed);
        let head = INPUT_HEAD.load(Ordering::Relaxed);
        if head - INPUT_TAIL.load(Ordering::Acquire) == INPUT_CAPACITY {
            INPUT_OVERRUNS.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        INPUT[head % INPUT_CAPACITY].store(byte, Ordering::Relaxed);
        INPUT_HEAD.store(head + 1, Ordering::Release);
    }
    drop(serial);
    // Wakers never run here: this only queues readiness for core 0's reactor.
    readiness::raise(CONSOLE_INPUT, Ready::READABLE);
}

/// A task's reader of console input, on any core: the receive line is an
/// event source owned by core 0 (where IRQ 4 goes), and this reader's
/// registration lives in core 0's readiness queue (made through the
/// protocol's `Register` message when the reader is on another core).
pub struct Reader {
    readiness: Readiness,
}

impl Reader {
    /// Registers for console input. Fails only before the reactors exist.
    pub fn new() -> Result<Reader, ReadinessError> {
        Ok(Reader {
            readiness: Readiness::register(CONSOLE_INPUT, Interest::READABLE)?,
        })
    }

    /// Waits for the next byte typed on the console.
    pub async fn next_byte(&mut self) -> u8 {
        loop {
            // Edge-triggered: take what is there, then wait for the next edge.
            if let Some(byte) = read_byte() {
                return byte;
            }
            self.readiness.ready().await;
        }
    }
}

/// The next byte typed on the console, if any. Any number of readers on
/// any cores: each byte goes to exactly one of them.
pub fn read_byte() -> Option<u8> {
    let mut tail = INPUT_TAIL.load(Ordering::Acquire);
    loop {
        if tail == INPUT_HEAD.load(Ordering::Acquire) {
            return None;
        }
        // Read before claiming: the interrupt handler cannot overwrite this
        // slot until the tail moves past it.
        let byte = INPUT[tail % INPUT_CAPACITY].load(Ordering::Relaxed);
        match INPUT_TAIL.compare_exchange(tail, tail + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(byte),
            Err(now) => tail = now,
        }
    }
}

/// (bytes received, bytes dropped because the input buffer was full).
pub fn input_stats() -> (u64, u64) {
    (
        INPUT_RECEIVED.load(Ordering::Relaxed),
        INPUT_OVERRUNS.load(Ordering::Relaxed),
    )
}

/// Runs `f` on the UART with the console lock held (for tests that drive
/// the hardware directly, e.g. loopback).
pub fn with_uart<R>(f: impl FnOnce(&mut SerialPort) -> R) -> Option<R> {
    x86_64::instructions::interrupts::without_interrupts(|| SERIAL.lock().as_mut().map(f))
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
            cpu_local::core_id(),
            record.level(),
            record.args()
        ));
    }

    fn flush(&self) {}
}
