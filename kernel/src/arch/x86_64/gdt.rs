//! Per-core GDT and TSS, with the interrupt stacks (IST) of the faults that
//! must not run on a possibly broken stack.
//!
//! Segment layout (fixed, so the selectors are constants usable in the IDT
//! and by `syscall`/`sysret` (`user.rs`), which require user data right below user
//! code):
//!
//! | index | selector | segment |
//! |-------|----------|---------|
//! | 1 | 0x08 | kernel code |
//! | 2 | 0x10 | kernel data |
//! | 3 | 0x1b | user data (RPL 3) |
//! | 4 | 0x23 | user code (RPL 3) |
//! | 5-6 | 0x28 | TSS |

use alloc::boxed::Box;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use super::paging;
use crate::mem::MemoryError;

/// Kernel code segment selector.
pub const KERNEL_CODE_SELECTOR: SegmentSelector = SegmentSelector(0x08);
/// Kernel data segment selector.
pub const KERNEL_DATA_SELECTOR: SegmentSelector = SegmentSelector(0x10);

/// The interrupt stacks of one core (the IST index is the discriminant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Ist {
    DoubleFault = 1,
    Nmi = 2,
    MachineCheck = 3,
    PageFault = 4,
}

impl Ist {
    const ALL: [Ist; 4] = [
        Ist::DoubleFault,
        Ist::Nmi,
        Ist::MachineCheck,
        Ist::PageFault,
    ];

    fn name(self) -> &'static str {
        match self {
            Ist::DoubleFault => "ist-double-fault",
            Ist::Nmi => "ist-nmi",
            Ist::MachineCheck => "ist-machine-check",
            Ist::PageFault => "ist-page-fault",
        }
    }
}

/// Size of each interrupt stack. Fault reporting formats text on it, so it is
/// generous; each has an unmapped guard page below it.
pub const IST_STACK_SIZE: usize = 16 * 1024;

/// Size of the stack a trap from ring 3 (and a `SYSCALL`) lands on
/// (`TSS.RSP0`): the entry code saves the user's registers there and runs
/// interrupt handlers on it, then leaves it (see `user.rs`).
pub const ENTRY_STACK_SIZE: usize = 16 * 1024;

/// Builds this core's TSS (with freshly allocated, guarded IST stacks and
/// the ring-3 entry stack) and GDT, loads them, reloads every segment
/// register, and sets the core up for ring 3.
pub fn init_this_core() -> Result<(), MemoryError> {
    let mut tss = TaskStateSegment::new();
    for ist in Ist::ALL {
        let stack = paging::allocate_stack(IST_STACK_SIZE, ist.name())?;
        tss.interrupt_stack_table[usize::from(ist as u8 - 1)] = VirtAddr::new(stack.top);
    }
    let entry = paging::allocate_stack(ENTRY_STACK_SIZE, "user-entry")?;
    tss.privilege_stack_table[0] = VirtAddr::new(entry.top);
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));

    let mut gdt = GlobalDescriptorTable::<8>::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    gdt.append(Descriptor::user_data_segment());
    gdt.append(Descriptor::user_code_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    debug_assert_eq!(code, KERNEL_CODE_SELECTOR);
    debug_assert_eq!(data, KERNEL_DATA_SELECTOR);
    let gdt: &'static GlobalDescriptorTable<8> = Box::leak(Box::new(gdt));
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors are
    // valid 64-bit kernel segments and a TSS that lives forever.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss_selector);
    }
    super::user::init_this_core(entry.top);
    Ok(())
}
