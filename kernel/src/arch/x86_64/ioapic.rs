//! IOAPICs: legacy (ISA) interrupts routed to a chosen core and vector,
//! honouring the MADT's interrupt source overrides.

use alloc::vec::Vec;

use x2apic::ioapic::{IoApic, IrqFlags, IrqMode, RedirectionTableEntry};

use super::acpi::{Platform, SourceOverride};
use super::cpu_local::{self, CoreId};
use super::paging;
use crate::mem::MemoryError;

/// First vector used for IOAPIC-routed interrupts (ISA IRQ n -> BASE + n).
pub const IRQ_BASE_VECTOR: u8 = 0x30;

struct Chip {
    virt: u64,
    gsi_base: u32,
    entries: u32,
}

static CHIPS: spin::Once<Vec<Chip>> = spin::Once::new();
static OVERRIDES: spin::Once<Vec<SourceOverride>> = spin::Once::new();

/// Why an IRQ could not be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No IOAPIC serves this global system interrupt.
    NoIoApic(u32),
    /// The target core does not exist or its APIC id needs more than 8 bits.
    BadTarget(CoreId),
}

/// Maps every IOAPIC uncached and masks all of its inputs.
pub fn init(platform: &Platform) -> Result<(), MemoryError> {
    let mut chips = Vec::new();
    for io in &platform.io_apics {
        let virt = paging::map_mmio(io.address, 0x20)?.base;
        // SAFETY: the IOAPIC's register window is mapped uncached at `virt`.
        let mut chip = unsafe { IoApic::new(virt) };
        // SAFETY: reading the version register, then masking every entry.
        let entries = unsafe { u32::from(chip.max_table_entry()) + 1 };
        for irq in 0..entries as u8 {
            let mut entry = RedirectionTableEntry::default();
            entry.set_flags(IrqFlags::MASKED);
            entry.set_vector(IRQ_BASE_VECTOR.wrapping_add(irq));
            // SAFETY: `irq` is below the chip's entry count.
            unsafe { chip.set_table_entry(irq, entry) };
        }
        chips.push(Chip {
            virt,
            gsi_base: io.gsi_base,
            entries,
        });
    }
    CHIPS.call_once(|| chips);
    OVERRIDES.call_once(|| platform.overrides.clone());
    Ok(())
}

/// Whether the IOAPICs are mapped (ACPI described them and boot mapped them).
pub fn is_ready() -> bool {
    CHIPS.get().is_some_and(|chips| !chips.is_empty())
}

/// Routes ISA IRQ `irq` to `vector` on core `target`, unmasked.
pub fn route_isa_irq(irq: u8, vector: u8, target: CoreId) -> Result<(), RouteError> {
    // ISA defaults: GSI = IRQ, edge-triggered, active high.
    let over = OVERRIDES
        .get()
        .and_then(|o| o.iter().find(|o| o.isa_irq == irq).copied());
    let gsi = over.map_or(u32::from(irq), |o| o.gsi);
    let apic_id = cpu_local::core(target)
        .ok_or(RouteError::BadTarget(target))?
        .apic_id;
    let dest = u8::try_from(apic_id).map_err(|_| RouteError::BadTarget(target))?;
    let chip = CHIPS
        .get()
        .and_then(|chips| {
            chips
                .iter()
                .find(|c| (c.gsi_base..c.gsi_base + c.entries).contains(&gsi))
        })
        .ok_or(RouteError::NoIoApic(gsi))?;
    let mut flags = IrqFlags::empty();
    if over.is_some_and(|o| o.active_low) {
        flags |= IrqFlags::LOW_ACTIVE;
    }
    if over.is_some_and(|o| o.level_triggered) {
        flags |= IrqFlags::LEVEL_TRIGGERED;
    }
    let mut entry = RedirectionTableEntry::default();
    entry.set_vector(vector);
    entry.set_mode(IrqMode::Fixed);
    entry.set_flags(flags);
    entry.set_dest(dest);
    // SAFETY: the chip is mapped; the entry index is within its table.
    unsafe { IoApic::new(chip.virt).set_table_entry((gsi - chip.gsi_base) as u8, entry) };
    Ok(())
}

/// The redirection entry currently programmed for ISA IRQ `irq` (for tests).
pub fn isa_entry(irq: u8) -> Option<(u8, bool, u8)> {
    let over = OVERRIDES
        .get()
        .and_then(|o| o.iter().find(|o| o.isa_irq == irq).copied());
    let gsi = over.map_or(u32::from(irq), |o| o.gsi);
    let chip = CHIPS
        .get()?
        .iter()
        .find(|c| (c.gsi_base..c.gsi_base + c.entries).contains(&gsi))?;
    // SAFETY: reading a redirection entry of a mapped chip.
    let entry = unsafe { IoApic::new(chip.virt).table_entry((gsi - chip.gsi_base) as u8) };
    Some((
        entry.vector(),
        entry.flags().contains(IrqFlags::MASKED),
        entry.dest(),
    ))
}
