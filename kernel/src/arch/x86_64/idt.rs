//! The interrupt descriptor table, shared by all cores.
//!
//! Every vector points at its stub in `trap_stubs.S`. Faults that must work on
//! a broken stack (double fault, NMI, machine check, page fault) run on their
//! own interrupt stacks (IST), set up per core by [`super::gdt`].

use super::gdt::{Ist, KERNEL_CODE_SELECTOR};
use x86_64::VirtAddr;
use x86_64::structures::DescriptorTablePointer;

/// One 16-byte gate descriptor.
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// Present, 64-bit interrupt gate (interrupts disabled on entry).
    const INTERRUPT_GATE: u8 = 0x8E;
    /// Same, but reachable from ring 3 with `int n`.
    const USER_INTERRUPT_GATE: u8 = 0xEE;

    fn new(handler: u64, ist: Option<Ist>, type_attr: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CODE_SELECTOR.0,
            ist: ist.map_or(0, |ist| ist as u8),
            type_attr,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate::MISSING; 256]);

/// The interrupt stack each vector runs on, if not the current one.
fn ist_for(vector: u8) -> Option<Ist> {
    match vector {
        2 => Some(Ist::Nmi),
        8 => Some(Ist::DoubleFault),
        14 => Some(Ist::PageFault),
        18 => Some(Ist::MachineCheck),
        _ => None,
    }
}

/// Fills the IDT. With `use_ist` false the IST fields stay 0: used early in
/// boot, before a TSS with interrupt stacks is loaded.
pub fn build(use_ist: bool) {
    // SAFETY: the IDT is written only here, on the bootstrap core, before other
    // cores exist and with interrupts disabled (during boot).
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for (vector, gate) in idt.0.iter_mut().enumerate() {
        let vector = vector as u8;
        let ist = if use_ist { ist_for(vector) } else { None };
        // #BP is raised by `int3`, which debuggers place in user code too.
        let attr = if vector == 3 {
            Gate::USER_INTERRUPT_GATE
        } else {
            Gate::INTERRUPT_GATE
        };
        *gate = Gate::new(super::trap::stub_address(vector), ist, attr);
    }
}

/// Loads the IDT on the running core.
pub fn load() {
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(core::ptr::addr_of!(IDT)),
    };
    // SAFETY: IDT is a static, fully initialised by `build`, valid forever.
    unsafe { x86_64::instructions::tables::lidt(&pointer) };
}
