//! Tests of the boot state and of device mappings.

use alloc::format;
use alloc::string::String;

use percore_kernel::Kernel;
use percore_kernel::arch::{apic, clock, cpu, paging};

use crate::harness::{Kind, Test};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("boot_state", Kind::Normal, boot_state),
    Test::new("mmio_uncached_lapic", Kind::Normal, mmio_uncached_lapic),
];

/// What boot must have set up, on BIOS and UEFI alike.
pub fn boot_state(kernel: &Kernel) -> Result<(), String> {
    let info = kernel.boot_info;
    if info.memory_regions.is_empty() {
        return Err(String::from("empty memory map"));
    }
    if info.physical_memory_offset.as_ref().is_none() {
        return Err(String::from("physical memory is not mapped"));
    }
    if info.rsdp_addr.as_ref().is_none() {
        return Err(String::from("firmware gave no ACPI RSDP"));
    }
    if kernel.machine.usable_mib < 400 {
        return Err(format!(
            "only {} MiB usable of 512 MiB",
            kernel.machine.usable_mib
        ));
    }
    if cpu::core_id().0 != 0 {
        return Err(format!("bootstrap core has id {}", cpu::core_id()));
    }
    let hz = clock::hz();
    if !(100_000_000..=20_000_000_000).contains(&hz) {
        return Err(format!("implausible TSC frequency {hz} Hz"));
    }
    // The IDT and GDT in force are ours: the TSS is loaded (task register set).
    let tr: u16;
    // SAFETY: STR only reads the task register.
    unsafe { core::arch::asm!("str {0:x}", out(reg) tr, options(nomem, nostack)) };
    if tr != 0x28 {
        return Err(format!(
            "task register is {tr:#x}, expected the TSS selector 0x28"
        ));
    }
    Ok(())
}

/// Maps the local APIC uncached and reads its version register.
pub fn mmio_uncached_lapic(_: &Kernel) -> Result<(), String> {
    let apic_base = apic::base_msr();
    let phys = apic_base & 0x000F_FFFF_FFFF_F000;
    let region = paging::map_mmio(phys, 4096).map_err(|e| format!("map failed: {e:?}"))?;
    let Some(mapping) = paging::translate(region.base) else {
        return Err(format!("{:#x} is not mapped", region.base));
    };
    if mapping.phys != phys {
        return Err(format!("mapped to {:#x}, expected {phys:#x}", mapping.phys));
    }
    if !mapping.uncached {
        return Err(format!("MMIO page is cacheable: {mapping:?}"));
    }
    if apic_base & (1 << 10) != 0 {
        // x2APIC mode: the MMIO window is disabled, nothing to read there.
        return Ok(());
    }
    let version_register = (region.base + 0x30) as *const u32;
    // SAFETY: the LAPIC version register is read-only and side-effect free.
    let version = unsafe { version_register.read_volatile() };
    let (version_id, max_lvt) = (version & 0xFF, (version >> 16) & 0xFF);
    if !(0x10..=0x15).contains(&version_id) || max_lvt < 3 {
        return Err(format!("LAPIC version register reads {version:#x}"));
    }
    Ok(())
}
