//! CPU exceptions: each must be caught and reported with the right vector.

use alloc::format;
use alloc::string::String;

use percore_kernel::Kernel;
use percore_kernel::arch::trap::{self, ExceptionReport, vector};

use crate::harness::{Kind, Test};

/// This file's tests: the breakpoint (resumed), then the faults (each ends
/// its own boot).
pub const TESTS: &[Test] = &[
    Test::new("breakpoint_reported_and_resumed", Kind::Normal, breakpoint),
    PAGE_FAULT,
    STACK_OVERFLOW,
    DIVIDE_ERROR,
    INVALID_OPCODE,
];

/// `int3` is reported and execution resumes right after it.
pub fn breakpoint(_: &Kernel) -> Result<(), String> {
    let before = trap::breakpoint_count();
    trap::breakpoint();
    let after = trap::breakpoint_count();
    if after != before + 1 {
        return Err(format!("breakpoint count went from {before} to {after}"));
    }
    Ok(())
}

/// An address no one maps: lower half, far from the bootloader's identity mappings.
const UNMAPPED: u64 = 0x0000_6666_0000_1000;

const PAGE_FAULT: Test = Test::new(
    "fault_page_fault",
    Kind::Fault {
        vector: vector::PAGE_FAULT,
        check: check_page_fault,
    },
    |_| {
        // SAFETY: deliberately faults; the fault ends the test.
        let value = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
        Err(format!("read {value:#x} from an unmapped address"))
    },
);

fn check_page_fault(report: &ExceptionReport) -> Result<(), String> {
    match report.cr2 {
        Some(UNMAPPED) if report.error_code & 1 == 0 => Ok(()),
        cr2 => Err(format!(
            "wrong report: cr2={cr2:x?} error_code={:#x}",
            report.error_code
        )),
    }
}

const STACK_OVERFLOW: Test = Test::new(
    "fault_kernel_stack_overflow",
    Kind::Fault {
        vector: vector::PAGE_FAULT,
        check: check_stack_overflow,
    },
    |_| {
        let depth = recurse(0);
        Err(format!("recursed {depth} levels without overflowing"))
    },
);

#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    core::hint::black_box(&frame);
    recurse(depth + 1).wrapping_add(core::hint::black_box(frame[1]))
}

fn check_stack_overflow(report: &ExceptionReport) -> Result<(), String> {
    match report.overflowed_stack {
        Some("boot") => Ok(()),
        other => Err(format!(
            "page fault not recognised as an overflow of the boot stack: {other:?}"
        )),
    }
}

const DIVIDE_ERROR: Test = Test::new(
    "fault_divide_error",
    Kind::Fault {
        vector: vector::DIVIDE_ERROR,
        check: |_| Ok(()),
    },
    |_| {
        let quotient: u32;
        // SAFETY: deliberately divides by zero; the fault ends the test.
        unsafe {
            core::arch::asm!("xor ecx, ecx", "div ecx", inout("eax") 1u32 => quotient, out("edx") _, out("ecx") _);
        }
        Err(format!("division by zero returned {quotient}"))
    },
);

const INVALID_OPCODE: Test = Test::new(
    "fault_invalid_opcode",
    Kind::Fault {
        vector: 6,
        check: |report| {
            if report.rip == 0 {
                Err(String::from("no RIP in report"))
            } else {
                Ok(())
            }
        },
    },
    |_| {
        // SAFETY: ud2 deliberately raises #UD; the fault ends the test.
        unsafe { core::arch::asm!("ud2") };
        Err(String::from("ud2 did not fault"))
    },
);
