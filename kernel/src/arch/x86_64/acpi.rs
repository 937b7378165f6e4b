//! ACPI discovery: processors, IOAPICs, interrupt overrides, timers, and
//! the registers and values for power-off and reset.
//!
//! Tables are read through the bootloader's physical-memory window (they sit
//! in ordinary RAM, so the write-back mapping is right for them). The result
//! is a plain [`Platform`] description; nothing else in the kernel touches
//! ACPI. Firmware without usable tables gets a clear error and the kernel
//! carries on with the bootstrap core alone.

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::address::{AddressSpace, GenericAddress};
use acpi::fadt::Fadt;
use acpi::platform::ProcessorState;
use acpi::platform::interrupt::{InterruptModel, Polarity, TriggerMode};
use acpi::{AcpiHandler, AcpiTables, HpetInfo, PhysicalMapping};

use crate::arch::aml;

/// One logical processor from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Processor {
    pub apic_id: u32,
    /// Usable now (enabled) rather than only "online capable".
    pub enabled: bool,
    pub is_bsp: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct IoApic {
    pub address: u64,
    pub gsi_base: u32,
}

/// An ISA IRQ wired to a different global system interrupt, or with a
/// non-default polarity or trigger mode.
#[derive(Clone, Copy, Debug)]
pub struct SourceOverride {
    pub isa_irq: u8,
    pub gsi: u32,
    pub active_low: bool,
    pub level_triggered: bool,
}

/// Where the ACPI power-management timer is.
#[derive(Clone, Copy, Debug)]
pub struct PmTimer {
    pub port: u16,
    pub is_32bit: bool,
}

/// A register named by the FADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    Io(u16),
    /// A physical address.
    Memory(u64),
}

/// How to power off and reset (from the FADT and the DSDT's `\_S5`).
#[derive(Clone, Copy, Debug, Default)]
pub struct PowerInfo {
    /// The PM1a and PM1b control blocks (I/O ports).
    pub pm1a_control: Option<u16>,
    pub pm1b_control: Option<u16>,
    /// `\_S5`'s SLP_TYPa and SLP_TYPb.
    pub s5: Option<(u8, u8)>,
    /// The reset register and the value to write, if the FADT offers one.
    pub reset: Option<(Register, u8)>,
    /// Where to write `acpi_enable` to switch the chipset to ACPI mode.
    pub smi_command: u16,
    pub acpi_enable: u8,
}

/// What the firmware told us about the machine.
#[derive(Clone, Debug)]
pub struct Platform {
    /// The bootstrap processor first, then the others in MADT order.
    pub processors: Vec<Processor>,
    pub local_apic_address: u64,
    pub io_apics: Vec<IoApic>,
    pub overrides: Vec<SourceOverride>,
    pub hpet_address: Option<u64>,
    pub pm_timer: Option<PmTimer>,
    pub power: PowerInfo,
    /// PCI Express memory-mapped configuration (ECAM) regions (MCFG).
    pub ecam: Vec<EcamRegion>,
}

/// One MCFG entry: buses `bus_start..=bus_end` of PCI segment `segment`
/// have their configuration space at `base` (1 MiB per bus).
#[derive(Clone, Copy, Debug)]
pub struct EcamRegion {
    pub base: u64,
    pub segment: u16,
    pub bus_start: u8,
    pub bus_end: u8,
}

/// Why ACPI discovery failed.
pub enum AcpiError {
    /// The bootloader found no RSDP.
    NoRsdp,
    /// The tables could not be parsed (the `acpi` crate's error).
    Tables(acpi::AcpiError),
    /// No MADT, or an interrupt model other than the APIC.
    NoApic,
}

impl core::fmt::Display for AcpiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AcpiError::NoRsdp => f.write_str("the bootloader found no RSDP"),
            AcpiError::Tables(error) => write!(f, "unreadable tables ({error:?})"),
            AcpiError::NoApic => f.write_str("no MADT, or no APIC interrupt model"),
        }
    }
}

#[derive(Clone, Copy)]
struct PhysWindow {
    offset: u64,
}

impl AcpiHandler for PhysWindow {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virt = (self.offset + physical_address as u64) as *mut T;
        // SAFETY: all physical memory is mapped at `offset`; the pointer is
        // non-null because `offset` lies in the higher half.
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new_unchecked(virt),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_: &PhysicalMapping<Self, T>) {}
}

/// Reads the MADT, HPET and FADT reachable from `rsdp`.
pub fn discover(rsdp: Option<u64>, physical_memory_offset: u64) -> Result<Platform, AcpiError> {
    let rsdp = rsdp.ok_or(AcpiError::NoRsdp)?;
    let handler = PhysWindow {
        offset: physical_memory_offset,
    };
    // SAFETY: the bootloader reports the RSDP's physical address, and the
    // whole of physical memory is readable through the window.
    let tables =
        unsafe { AcpiTables::from_rsdp(handler, rsdp as usize) }.map_err(AcpiError::Tables)?;
    let info = tables.platform_info().map_err(AcpiError::Tables)?;
    let InterruptModel::Apic(apic) = &info.interrupt_model else {
        return Err(AcpiError::NoApic);
    };
    let mut processors = Vec::new();
    if let Some(cpus) = &info.processor_info {
        let describe = |p: &acpi::platform::Processor, is_bsp| Processor {
            apic_id: p.local_apic_id,
            enabled: p.state != ProcessorState::Disabled,
            is_bsp,
        };
        processors.push(describe(&cpus.boot_processor, true));
        processors.extend(
            cpus.application_processors
                .iter()
                .map(|p| describe(p, false)),
        );
    }
    let io_apics = apic
        .io_apics
        .iter()
        .map(|io| IoApic {
            address: u64::from(io.address),
            gsi_base: io.global_system_interrupt_base,
        })
        .collect();
    let overrides = apic
        .interrupt_source_overrides
        .iter()
        .map(|o| SourceOverride {
            isa_irq: o.isa_source,
            gsi: o.global_system_interrupt,
            active_low: o.polarity == Polarity::ActiveLow,
            level_triggered: o.trigger_mode == TriggerMode::Level,
        })
        .collect();
    let pm_timer = info.pm_timer.as_ref().and_then(|t| {
        (t.base.address_space == acpi::address::AddressSpace::SystemIo).then_some(PmTimer {
            port: t.base.address as u16,
            is_32bit: t.supports_32bit,
        })
    });
    Ok(Platform {
        processors,
        local_apic_address: apic.local_apic_address,
        io_apics,
        overrides,
        hpet_address: HpetInfo::new(&tables).ok().map(|h| h.base_address as u64),
        pm_timer,
        power: power_info(&tables, physical_memory_offset),
        ecam: tables
            .find_table::<acpi::mcfg::Mcfg>()
            .map(|mcfg| {
                mcfg.entries()
                    .iter()
                    .map(|e| EcamRegion {
                        base: e.base_address,
                        segment: e.pci_segment_group,
                        bus_start: e.bus_number_start,
                        bus_end: e.bus_number_end,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The FADT's power registers and the DSDT's `\_S5` sleep types.
fn power_info(tables: &AcpiTables<PhysWindow>, physical_memory_offset: u64) -> PowerInfo {
    let Ok(fadt) = tables.find_table::<Fadt>() else {
        return PowerInfo::default();
    };
    let io = |address: Option<GenericAddress>| {
        address
            .filter(|a| a.address_space == AddressSpace::SystemIo && a.address != 0)
            .and_then(|a| u16::try_from(a.address).ok())
    };
    let flags = fadt.flags;
    let reset = fadt.reset_register().ok().and_then(|r| {
        let register = match r.address_space {
            _ if r.address == 0 || !flags.supports_system_reset_via_fadt() => return None,
            AddressSpace::SystemIo => Register::Io(u16::try_from(r.address).ok()?),
            AddressSpace::SystemMemory => Register::Memory(r.address),
            _ => return None,
        };
        Some((register, fadt.reset_value))
    });
    let s5 = tables.dsdt().ok().and_then(|dsdt| {
        let start = physical_memory_offset + dsdt.address as u64;
        // SAFETY: the DSDT's AML lies in ordinary memory, readable through
        // the physical-memory window, and nothing writes it.
        let code = unsafe { core::slice::from_raw_parts(start as *const u8, dsdt.length as usize) };
        aml::find_s5(code)
    });
    PowerInfo {
        pm1a_control: io(fadt.pm1a_control_block().ok()),
        pm1b_control: io(fadt.pm1b_control_block().ok().flatten()),
        s5,
        reset,
        smi_command: u16::try_from(fadt.smi_cmd_port).unwrap_or(0),
        acpi_enable: fadt.acpi_enable,
    }
}
