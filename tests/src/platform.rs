//! Tests of the boot state and of device mappings.

use alloc::format;
use alloc::string::String;

use percore_kernel::Kernel;
use percore_kernel::arch::x86_64::{cpu_local, tsc};
use percore_kernel::mem::{self, mmio};
use x86_64::structures::paging::{PageTableFlags, Translate, mapper::TranslateResult};
use x86_64::{PhysAddr, VirtAddr};

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
    if kernel.usable_mib < 400 {
        return Err(format!("only {} MiB usable of 512 MiB", kernel.usable_mib));
    }
    if cpu_local::core_id().0 != 0 {
        return Err(format!("bootstrap core has id {}", cpu_local::core_id()));
    }
    let hz = tsc::hz();
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

const IA32_APIC_BASE: u32 = 0x1B;

/// Maps the local APIC uncached and reads its version register.
pub fn mmio_uncached_lapic(_: &Kernel) -> Result<(), String> {
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    let apic_base = unsafe { x86_64::registers::model_specific::Msr::new(IA32_APIC_BASE).read() };
    let phys = apic_base & 0x000F_FFFF_FFFF_F000;
    let region = mmio::map(PhysAddr::new(phys), 4096).map_err(|e| format!("map failed: {e:?}"))?;
    let flags = mem::with(|m| match m.page_table.translate(region.base) {
        TranslateResult::Mapped { flags, frame, .. } => Some((flags, frame.start_address())),
        _ => None,
    })
    .map_err(|e| format!("{e:?}"))?;
    let Some((flags, frame)) = flags else {
        return Err(format!("{:#x} is not mapped", region.base.as_u64()));
    };
    if frame != PhysAddr::new(phys) {
        return Err(format!("mapped to {frame:?}, expected {phys:#x}"));
    }
    if !flags.contains(PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH) {
        return Err(format!("MMIO page is cacheable: {flags:?}"));
    }
    if apic_base & (1 << 10) != 0 {
        // x2APIC mode: the MMIO window is disabled, nothing to read there.
        return Ok(());
    }
    let version_register: VirtAddr = region.base + 0x30u64;
    // SAFETY: the LAPIC version register is read-only and side-effect free.
    let version = unsafe { version_register.as_ptr::<u32>().read_volatile() };
    let (version_id, max_lvt) = (version & 0xFF, (version >> 16) & 0xFF);
    if !(0x10..=0x15).contains(&version_id) || max_lvt < 3 {
        return Err(format!("LAPIC version register reads {version:#x}"));
    }
    Ok(())
}
