//! `print!` and `println!` to the console (the `write` syscall). A
//! call's text is gathered in a small buffer first, so a short line is one
//! `write` (lines of programs on other cores do not interleave).

use core::fmt;

/// The console, as a `fmt::Write`.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(percore_abi::Sys::MAX_WRITE as usize) {
            crate::sys::write(chunk).map_err(|_| fmt::Error)?;
        }
        Ok(())
    }
}

/// Gathers text, writing it out when full and at the end.
struct Buffered {
    bytes: [u8; 256],
    len: usize,
}

impl Buffered {
    fn flush(&mut self) {
        let _ = crate::sys::write(&self.bytes[..self.len]);
        self.len = 0;
    }
}

impl fmt::Write for Buffered {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &byte in s.as_bytes() {
            if self.len == self.bytes.len() {
                self.flush();
            }
            self.bytes[self.len] = byte;
            self.len += 1;
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut out = Buffered {
        bytes: [0; 256],
        len: 0,
    };
    let _ = fmt::Write::write_fmt(&mut out, args);
    if out.len > 0 {
        out.flush();
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::print::_print(format_args!($($arg)*)));
}

#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::print::_print(format_args!("{}\n", format_args!($($arg)*))));
}
