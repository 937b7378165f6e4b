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
    let mut cmd1 = Port::<u8>::new(PIC1_CMD);
    let mut data1 = Port::<u8>::new(PIC1_DATA);
    let mut cmd2 = Port::<u8>::new(PIC2_CMD);
    let mut data2 = Port::<u8>::new(PIC2_DATA);
    let mut delay = Port::<u8>::new(0x80);
    // SAFETY: the standard ICW1..ICW4 initialisation sequence on the PIC ports;
    // port 0x80 writes are the conventional I/O delay.
    unsafe {
        for (port, value) in [
            (&mut cmd1, 0x11u8), // ICW1: init, expect ICW4
            (&mut cmd2, 0x11),
            (&mut data1, PIC1_OFFSET), // ICW2: vector offsets
            (&mut data2, PIC2_OFFSET),
            (&mut data1, 4), // ICW3: slave on IRQ2
            (&mut data2, 2),
            (&mut data1, 0x01), // ICW4: 8086 mode
            (&mut data2, 0x01),
            (&mut data1, 0xFF), // OCW1: mask all
            (&mut data2, 0xFF),
        ] {
            port.write(value);
            delay.write(0);
        }
    }
}
