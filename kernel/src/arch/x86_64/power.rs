//! Leaving the machine: ACPI soft-off (S5), reset, and QEMU's debug-exit.
//!
//! Power off: write `SLP_TYPx | SLP_EN` to the FADT's PM1a (and PM1b)
//! control registers, with the sleep types of the DSDT's `\_S5` package
//! (found by [`super::acpi`] without an AML interpreter). If that does not
//! stop the machine, QEMU's `isa-debug-exit` (the test machines), then a
//! halt. Reset: the FADT's reset register, then the i8042's reset line,
//! then a triple fault (an empty IDT and a breakpoint), which resets every
//! PC.

use qemu_exit::QEMUExit;
use x86_64::VirtAddr;
use x86_64::instructions::port::Port;
use x86_64::structures::DescriptorTablePointer;

use super::acpi::{PowerInfo, Register};
use super::{paging, tsc};
use crate::arch::power::ExitCode;

/// I/O port of QEMU's `isa-debug-exit` device.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// PM1 control: SCI_EN (ACPI mode on).
const SCI_EN: u16 = 1 << 0;
/// PM1 control: the sleep type field.
const SLP_TYP_SHIFT: u16 = 10;
const SLP_TYP_MASK: u16 = 0b111 << SLP_TYP_SHIFT;
/// PM1 control: enter the sleep state.
const SLP_EN: u16 = 1 << 13;
/// The i8042's status/command port, its "input full" bit and reset command.
const I8042_COMMAND: u16 = 0x64;
const I8042_INPUT_FULL: u8 = 1 << 1;
const I8042_RESET: u8 = 0xFE;
/// How long each way of leaving is given before the next is tried.
const GRACE_MS: u64 = 500;

static POWER: spin::Once<PowerInfo> = spin::Once::new();
/// A memory-mapped reset register's virtual address (mapped uncached at boot).
static RESET_MMIO: spin::Once<u64> = spin::Once::new();

/// Keeps what ACPI said about power control (boot), mapping a
/// memory-mapped reset register.
pub fn init(info: PowerInfo) {
    if let Some((Register::Memory(phys), _)) = info.reset
        && let Ok(region) = paging::map_mmio(phys, 1)
    {
        RESET_MMIO.call_once(|| region.base);
    }
    POWER.call_once(|| info);
}

/// Exits QEMU with `code`. On real hardware (no device at the port) the
/// write does nothing, so this then halts the core.
pub fn exit_qemu(code: ExitCode) -> ! {
    // The crate wants QEMU's resulting status for its success shortcut,
    // which is not used: every exit names its code explicitly.
    const SUCCESS_STATUS: u32 = ((ExitCode::Success as u32) << 1) | 1;
    qemu_exit::X86::new(DEBUG_EXIT_PORT, SUCCESS_STATUS).exit(code as u32)
}

/// Turns the machine off (ACPI S5); under QEMU without ACPI power-off, exits
/// through the debug-exit device with success; else halts.
pub fn power_off() -> ! {
    if let Some(info) = POWER.get()
        && let Some(pm1a) = info.pm1a_control
        && let Some((typ_a, typ_b)) = info.s5
    {
        enable_acpi(info, pm1a);
        write_sleep(pm1a, typ_a);
        if let Some(pm1b) = info.pm1b_control {
            write_sleep(pm1b, typ_b);
        }
        wait_ms(GRACE_MS);
    }
    exit_qemu(ExitCode::Success)
}

/// Resets the machine: the ACPI reset register, the i8042, a triple fault.
pub fn reboot() -> ! {
    if let Some((register, value)) = POWER.get().and_then(|info| info.reset) {
        match register {
            // SAFETY: the FADT names this port as the reset register.
            Register::Io(port) => unsafe { Port::<u8>::new(port).write(value) },
            Register::Memory(_) => {
                if let Some(&virt) = RESET_MMIO.get() {
                    // SAFETY: the FADT's reset register, mapped uncached at boot.
                    unsafe { (virt as *mut u8).write_volatile(value) };
                }
            }
        }
        wait_ms(GRACE_MS);
    }
    // SAFETY: the i8042's command port; 0xFE pulses the CPU reset line.
    unsafe {
        let mut status = Port::<u8>::new(I8042_COMMAND);
        for _ in 0..100_000 {
            if status.read() & I8042_INPUT_FULL == 0 {
                break;
            }
        }
        status.write(I8042_RESET);
    }
    wait_ms(GRACE_MS);
    let empty = DescriptorTablePointer {
        limit: 0,
        base: VirtAddr::new(0),
    };
    // SAFETY: deliberately loads an empty IDT so that the breakpoint below
    // cannot be delivered: double, then triple fault, and the CPU resets.
    unsafe {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("int3");
    }
    super::cpu::halt_forever()
}

/// Switches the chipset to ACPI mode if the firmware left it in legacy
/// mode (SCI_EN clear), as the ACPI spec asks before using PM1 registers.
fn enable_acpi(info: &PowerInfo, pm1a: u16) {
    // SAFETY: the FADT's PM1a control register.
    let enabled = || unsafe { Port::<u16>::new(pm1a).read() } & SCI_EN != 0;
    if enabled() || info.smi_command == 0 || info.acpi_enable == 0 {
        return;
    }
    // SAFETY: the FADT's SMI command port and its ACPI-enable value.
    unsafe { Port::<u8>::new(info.smi_command).write(info.acpi_enable) };
    let start = tsc::rdtsc();
    while !enabled() && tsc::rdtsc() - start < ms_to_cycles(GRACE_MS) {
        core::hint::spin_loop();
    }
}

/// Writes sleep type `typ` with SLP_EN to a PM1 control register.
fn write_sleep(port: u16, typ: u8) {
    let mut register = Port::<u16>::new(port);
    // SAFETY: the FADT's PM1 control register; the other bits are kept.
    unsafe {
        let value = register.read() & !SLP_TYP_MASK;
        register.write(value | (u16::from(typ & 0b111) << SLP_TYP_SHIFT) | SLP_EN);
    }
}

fn ms_to_cycles(ms: u64) -> u64 {
    tsc::hz().max(1_000_000) / 1000 * ms
}

fn wait_ms(ms: u64) {
    let start = tsc::rdtsc();
    while tsc::rdtsc() - start < ms_to_cycles(ms) {
        core::hint::spin_loop();
    }
}
