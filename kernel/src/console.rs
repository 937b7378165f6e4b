//! The serial console and the kernel logger behind the `log` facade.
//!
//! Every log line carries the time since boot (µs), the core id and the
//! level. A line is written under one lock hold with interrupts masked, so
//! lines from different cores or from interrupt handlers never interleave
//! inside a line. This is a leaf of the kernel: it writes, nothing more.
//! Reading what is typed is the UART driver's job (`drivers::uart`), which
//! reaches the port through [`with_uart`].
//!
//! Besides COM1, every byte written is copied into a ring of recent text
//! ([`read_text`]), and a [`Sink`] (the screen, `drivers::screen`) is told
//! that there is more. The sink draws later, on its own core, from the
//! ring: the log path never waits for pixels, only for a copy into the ring
//! under its own short lock.

use core::fmt::{self, Write};

use spin::Mutex;

use crate::arch::{cpu, serial::Uart};

static SERIAL: Mutex<Option<Uart>> = Mutex::new(None);
static LOGGER: Logger = Logger;
static TEXT: Mutex<TextRing> = Mutex::new(TextRing::new());
static SINK: spin::Once<Sink> = spin::Once::new();

/// Bytes of recent console text the ring keeps (a power of two).
pub const TEXT_CAPACITY: usize = 16 * 1024;

/// Where console text goes besides the serial port (the screen): told when
/// there is new text, which it then takes with [`read_text`].
pub struct Sink {
    /// New text is in the ring (called after every write, from any core and
    /// from interrupt handlers: it must only signal).
    pub wake: fn(),
    /// Draw what is in the ring now, on this core (the fatal path, when no
    /// other core will).
    pub flush: fn(),
}

/// The most recent [`TEXT_CAPACITY`] bytes written, and how many were
/// written in all (a reader's cursor counts in the same units).
struct TextRing {
    bytes: [u8; TEXT_CAPACITY],
    written: u64,
}

impl TextRing {
    const fn new() -> TextRing {
        TextRing {
            bytes: [0; TEXT_CAPACITY],
            written: 0,
        }
    }

    fn push(&mut self, text: &[u8]) {
        for &byte in text {
            self.bytes[(self.written % TEXT_CAPACITY as u64) as usize] = byte;
            self.written += 1;
        }
    }
}

/// What [`read_text`] copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRead {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// Bytes overwritten before this reader got them (it fell behind by
    /// more than [`TEXT_CAPACITY`]).
    pub lost: u64,
}

/// Copies console text from `*cursor` (a count of bytes written since boot,
/// 0 for the start) into `out` and moves the cursor past it.
pub fn read_text(cursor: &mut u64, out: &mut [u8]) -> TextRead {
    cpu::without_interrupts(|| {
        let ring = TEXT.lock();
        let oldest = ring.written.saturating_sub(TEXT_CAPACITY as u64);
        let lost = oldest.saturating_sub(*cursor);
        *cursor = (*cursor).max(oldest);
        let len = ((ring.written - *cursor) as usize).min(out.len());
        for (i, slot) in out[..len].iter_mut().enumerate() {
            *slot = ring.bytes[((*cursor + i as u64) % TEXT_CAPACITY as u64) as usize];
        }
        *cursor += len as u64;
        TextRead { len, lost }
    })
}

/// Installs the sink (once; later calls are ignored).
pub fn set_sink(sink: Sink) {
    SINK.call_once(|| sink);
}

/// Has the sink draw what the ring holds, on this core (the fatal path).
pub fn flush_sink() {
    if let Some(sink) = SINK.get() {
        (sink.flush)();
    }
}

/// The serial port and the text ring, as one `fmt::Write`.
struct Tee<'a> {
    uart: Option<&'a mut Uart>,
}

impl Write for Tee<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(uart) = self.uart.as_mut() {
            // The UART cannot fail.
            let _ = uart.write_str(s);
        }
        TEXT.lock().push(s.as_bytes());
        Ok(())
    }
}

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
        let mut serial = SERIAL.lock();
        // A formatting error of a Display impl only truncates this line.
        let _ = Tee {
            uart: serial.as_mut(),
        }
        .write_fmt(args);
    });
    if let Some(sink) = SINK.get() {
        (sink.wake)();
    }
}

/// Releases the console lock if a stopped context held it.
///
/// # Safety
/// Only for the fatal-error path, once the holder can no longer run.
pub unsafe fn force_unlock() {
    // SAFETY: forwarded to the caller.
    unsafe {
        SERIAL.force_unlock();
        TEXT.force_unlock();
    }
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
