//! The 16550 UART on COM1: the kernel console.

use uart_16550::SerialPort;

/// I/O base of COM1.
pub const COM1: u16 = 0x3F8;

/// Initialises COM1 (115200 8N1, FIFOs on) and returns it.
pub fn com1() -> SerialPort {
    // SAFETY: 0x3F8 is the standard COM1 base; only the console owns it.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    port
}
