//! QEMU's `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`):
//! writing `code` makes QEMU exit with status `(code << 1) | 1`.

use qemu_exit::QEMUExit;

/// I/O port of the debug-exit device.
pub const IOBASE: u16 = 0xf4;

/// What the guest reports to the host. QEMU exits with `(code << 1) | 1`:
/// 33 for success and 35 for failure. Neither can be confused with QEMU's
/// own exit codes (0 for a guest shutdown or reset, 1 for its own errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    Success = 0x10,
    Failure = 0x11,
}

/// Exits QEMU. On real hardware (no device at the port) the write does
/// nothing, so this then halts the core.
pub fn exit(code: ExitCode) -> ! {
    // The crate wants QEMU's resulting status for its success shortcut,
    // which we do not use: every exit names its code explicitly.
    const SUCCESS_STATUS: u32 = ((ExitCode::Success as u32) << 1) | 1;
    qemu_exit::X86::new(IOBASE, SUCCESS_STATUS).exit(code as u32)
}
