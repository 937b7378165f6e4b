//! The 16550 UART on COM1, the console's serial line.

use uart_16550::SerialPort;
use x86_64::instructions::port::Port;

/// I/O base of COM1.
const COM1: u16 = 0x3F8;
/// Its modem control register.
const MCR: u16 = COM1 + 4;
/// MCR: DTR, RTS and OUT2 (OUT2 gates the interrupt line to the PIC/IOAPIC).
const MCR_NORMAL: u8 = 0x0B;
/// MCR: as [`MCR_NORMAL`], plus the loopback bit.
const MCR_LOOPBACK: u8 = 0x1B;

/// COM1 (115200 8N1, FIFOs on, receive interrupt enabled).
pub struct Uart(SerialPort);

impl Uart {
    /// Initialises COM1. Only the console owns it.
    pub fn com1() -> Uart {
        // SAFETY: 0x3F8 is the standard COM1 base; the console is its only owner.
        let mut port = unsafe { SerialPort::new(COM1) };
        port.init();
        Uart(port)
    }

    /// A received byte, if one is waiting.
    pub fn try_receive(&mut self) -> Option<u8> {
        self.0.try_receive().ok()
    }

    /// Loops the transmitter back into the receiver (a test of the receive
    /// path, interrupt included), or back to normal.
    pub fn set_loopback(&mut self, on: bool) {
        let mcr = if on { MCR_LOOPBACK } else { MCR_NORMAL };
        // SAFETY: the modem control register of COM1, which `self` owns.
        unsafe { Port::<u8>::new(MCR).write(mcr) };
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write_str(s)
    }
}
