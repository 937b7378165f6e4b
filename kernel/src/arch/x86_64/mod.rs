//! x86_64: descriptor tables, trap entry, per-core data, timers and legacy devices.

pub mod acpi;
pub mod cpu_local;
pub mod exception;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod ipi;
pub mod lapic;
pub mod pic;
pub mod pit;
pub mod refclock;
pub mod smp;
pub mod trap;
pub mod tsc;

/// Halts this core forever with interrupts disabled. Used after a fatal error.
pub fn halt_forever() -> ! {
    loop {
        ::x86_64::instructions::interrupts::disable();
        ::x86_64::instructions::hlt();
    }
}
