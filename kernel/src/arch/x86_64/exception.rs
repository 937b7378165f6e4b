//! CPU exceptions (vectors 0..32): a full report, then a clean stop.
//!
//! Every exception is fatal except the breakpoint (`int3`), which is reported
//! and resumed, as a debugger expects, and the NMI a stopping core sends to
//! the others, which halts them quietly.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use super::trap::TrapFrame;

/// Names of the 32 architectural exception vectors (Intel SDM vol. 3, 6.15).
const NAMES: [(&str, &str); 32] = [
    ("#DE", "divide error"),
    ("#DB", "debug"),
    ("NMI", "non-maskable interrupt"),
    ("#BP", "breakpoint"),
    ("#OF", "overflow"),
    ("#BR", "bound range exceeded"),
    ("#UD", "invalid opcode"),
    ("#NM", "device not available"),
    ("#DF", "double fault"),
    ("CSO", "coprocessor segment overrun"),
    ("#TS", "invalid TSS"),
    ("#NP", "segment not present"),
    ("#SS", "stack-segment fault"),
    ("#GP", "general protection fault"),
    ("#PF", "page fault"),
    ("#15", "reserved"),
    ("#MF", "x87 floating-point error"),
    ("#AC", "alignment check"),
    ("#MC", "machine check"),
    ("#XM", "SIMD floating-point exception"),
    ("#VE", "virtualization exception"),
    ("#CP", "control protection exception"),
    ("#22", "reserved"),
    ("#23", "reserved"),
    ("#24", "reserved"),
    ("#25", "reserved"),
    ("#26", "reserved"),
    ("#27", "reserved"),
    ("#HV", "hypervisor injection exception"),
    ("#VC", "VMM communication exception"),
    ("#SX", "security exception"),
    ("#31", "reserved"),
];

/// Vector numbers the rest of the kernel refers to.
pub mod vector {
    pub const DIVIDE_ERROR: u8 = 0;
    pub const NMI: u8 = 2;
    pub const BREAKPOINT: u8 = 3;
    pub const DOUBLE_FAULT: u8 = 8;
    pub const GENERAL_PROTECTION: u8 = 13;
    pub const PAGE_FAULT: u8 = 14;
}

/// Everything known about one exception, as printed in the report.
#[derive(Clone, Debug)]
pub struct ExceptionReport {
    pub vector: u8,
    pub error_code: u64,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    /// The faulting address, for page faults.
    pub cr2: Option<u64>,
    /// The kernel stack whose guard page was hit, when the fault is a stack overflow.
    pub overflowed_stack: Option<&'static str>,
}

impl ExceptionReport {
    /// Short mnemonic, e.g. `#PF`.
    pub fn mnemonic(&self) -> &'static str {
        NAMES[usize::from(self.vector & 31)].0
    }

    /// Descriptive name, e.g. `page fault`.
    pub fn name(&self) -> &'static str {
        NAMES[usize::from(self.vector & 31)].1
    }
}

/// The mnemonic and name of exception `vector` (e.g. `("#PF", "page fault")`).
pub fn names(vector: u8) -> (&'static str, &'static str) {
    NAMES[usize::from(vector & 31)]
}

impl fmt::Display for ExceptionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (vector {}) error_code={:#x} rip={:#x} rsp={:#x} rflags={:#x}",
            self.mnemonic(),
            self.name(),
            self.vector,
            self.error_code,
            self.rip,
            self.rsp,
            self.rflags
        )?;
        if let Some(cr2) = self.cr2 {
            write!(f, " cr2={cr2:#x} [{}]", PageFaultCode(self.error_code))?;
        }
        if let Some(stack) = self.overflowed_stack {
            write!(
                f,
                " -- kernel stack overflow: guard page of stack '{stack}' hit"
            )?;
        }
        Ok(())
    }
}

/// The page-fault error code, decoded bit by bit (SDM vol. 3, 4.7).
struct PageFaultCode(u64);

impl fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bit = |n: u32| self.0 & (1 << n) != 0;
        f.write_str(if bit(0) {
            "protection-violation"
        } else {
            "not-present"
        })?;
        f.write_str(if bit(1) { " write" } else { " read" })?;
        f.write_str(if bit(2) { " user" } else { " supervisor" })?;
        for (n, name) in [
            (3, " reserved-bit"),
            (4, " instruction-fetch"),
            (5, " protection-key"),
            (6, " shadow-stack"),
            (15, " sgx"),
        ] {
            if bit(n) {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// What runs on an exception that cannot be resumed (the kernel's fatal
/// path, installed at boot; this layer knows nothing above it).
static FATAL_HANDLER: spin::Once<fn(&ExceptionReport) -> !> = spin::Once::new();

/// Installs the handler of unrecoverable exceptions (once; later calls are ignored).
pub fn set_fatal_handler(handler: fn(&ExceptionReport) -> !) {
    FATAL_HANDLER.call_once(|| handler);
}

/// Executes a breakpoint instruction (`int3`), which is reported and resumed.
pub fn breakpoint() {
    x86_64::instructions::interrupts::int3();
}

/// How many `int3` breakpoints this kernel has handled (and resumed from).
pub fn breakpoint_count() -> u64 {
    BREAKPOINTS.load(Ordering::SeqCst)
}

/// Handles exception `frame.vector`: resumes breakpoints, stops on anything else.
pub(super) fn handle(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector == vector::NMI && super::stopping() {
        // Another core is stopping the machine and asked us to stand still.
        // GS may be the user's here (the NMI window at `SYSCALL`).
        super::cpu::mark_stopped_from_nmi();
        super::cpu::halt_forever();
    }
    if matches!(vector, vector::PAGE_FAULT | vector::GENERAL_PROTECTION)
        && let Some(resume) = super::usercopy::fixup(frame.rip)
    {
        // A user copy touched a page it may not: the copy ends with an error.
        frame.rip = resume;
        return;
    }
    let cr2 = (vector == vector::PAGE_FAULT).then(x86_64::registers::control::Cr2::read_raw);
    let report = ExceptionReport {
        vector,
        error_code: frame.error_code,
        rip: frame.rip,
        rsp: frame.rsp,
        rflags: frame.rflags,
        cr2,
        overflowed_stack: cr2.and_then(crate::mem::stack::guard_owner),
    };
    if vector == vector::BREAKPOINT {
        // `int3` is a trap: RIP already points past it, so returning resumes.
        BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
        log::warn!("exception: {report}; resuming");
        return;
    }
    match FATAL_HANDLER.get() {
        Some(handler) => handler(&report),
        None => super::cpu::halt_forever(),
    }
}
