//! The legacy 8259 PIC pair: remapped away from the exception vectors and masked.
//!
//! Firmware (BIOS in particular) may leave the PIC delivering IRQ 0 on vector 8,
//! which would look like a double fault. percore uses the local APIC and IOAPIC,
//! so the PICs are remapped to vectors 0x20..0x30 and fully masked.

use x86_64::instructions::port::Port;

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xA0;
const PIC2_DATA: u16 = 0xA1;
/// First vector of the remapped master PIC (IRQ 0).
pub const PIC1_OFFSET: u8 = 0x20;
/// First vector of the remapped slave PIC (IRQ 8).
pub const PIC2_OFFSET: u8 = 0x28;

/// Remaps both PICs to [`PIC1_OFFSET`]/[`PIC2_OFFSET`] and masks every line.
pub fn remap_and_mask() {
    let sequence = [
        (PIC1_CMD, 0x11u8), // ICW1: initialise, ICW4 follows
        (PIC2_CMD, 0x11),
        (PIC1_DATA, PIC1_OFFSET), // ICW2: vector offsets
        (PIC2_DATA, PIC2_OFFSET),
        (PIC1_DATA, 4), // ICW3: slave on IRQ 2
        (PIC2_DATA, 2),
        (PIC1_DATA, 0x01), // ICW4: 8086 mode
        (PIC2_DATA, 0x01),
        (PIC1_DATA, 0xFF), // OCW1: mask every line
        (PIC2_DATA, 0xFF),
    ];
    for (port, value) in sequence {
        // SAFETY: the standard ICW1..ICW4 initialisation sequence on the PIC
        // ports; a write to port 0x80 is the conventional I/O delay.
        unsafe {
            Port::<u8>::new(port).write(value);
            Port::<u8>::new(0x80).write(0);
        }
    }
}
