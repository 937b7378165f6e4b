//! Trap entry: one assembly stub per vector, a common register save, and the
//! Rust dispatcher that every exception and interrupt goes through.

use super::exception;
use super::irq::TrapHandler;

pub use super::exception::{ExceptionReport, breakpoint, breakpoint_count, set_fatal_handler};

core::arch::global_asm!(include_str!("trap_stubs.S"), options(att_syntax));

unsafe extern "C" {
    /// Start of the 256 entry stubs, 16 bytes apart (see `trap_stubs.S`).
    static trap_stubs: u8;
}

/// Size of one entry stub in bytes.
const STUB_SIZE: u64 = 16;

/// Address of the entry stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    // Only the address of the extern static is taken, never its value.
    let base = core::ptr::addr_of!(trap_stubs) as u64;
    base + STUB_SIZE * u64::from(vector)
}

/// The register state saved on a trap, in stack order (lowest address first).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// The vector number pushed by the stub.
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    /// Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Interrupt handlers by vector; exceptions (0..32) are handled by [`exception`].
static HANDLERS: spin::RwLock<[Option<TrapHandler>; 224]> = spin::RwLock::new([None; 224]);

/// Errors from [`set_handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerError {
    /// Vectors 0..32 are CPU exceptions and cannot be taken over.
    ExceptionVector(u8),
    /// Another handler already owns this vector.
    Busy(u8),
}

/// Installs `handler` for interrupt `vector`.
pub fn set_handler(vector: u8, handler: TrapHandler) -> Result<(), HandlerError> {
    let index = usize::from(vector)
        .checked_sub(32)
        .ok_or(HandlerError::ExceptionVector(vector))?;
    let mut table = HANDLERS.write();
    if table[index].is_some() {
        return Err(HandlerError::Busy(vector));
    }
    table[index] = Some(handler);
    Ok(())
}

/// Called by `trap_common` with the saved state of the interrupted context.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector < 32 {
        exception::handle(frame);
        return;
    }
    dispatch_interrupt(frame);
}

/// Runs the handler of interrupt `frame.vector` (32 and up).
pub(super) fn dispatch_interrupt(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    let handler = HANDLERS
        .try_read()
        .and_then(|table| table[usize::from(vector) - 32]);
    match handler {
        Some(handler) => handler.run(frame),
        None => log::warn!(
            "unexpected interrupt on vector {vector:#x} at rip {:#x}",
            frame.rip
        ),
    }
}
