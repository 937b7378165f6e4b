//! Message-signalled interrupts (MSI / MSI-X) to a chosen core: a vector
//! allocator per core, the message (address and data) a device writes to
//! raise vector `v` on core `c`, and handlers registered per `(core, vector)`.
//!
//! The message (Intel SDM vol. 3, 11.11): address `0xFEE0_0000 | dest << 12`
//! with redirection hint 0 and destination mode 0 (physical), data = the
//! vector with delivery mode 000 (fixed) and edge trigger. `dest` is the
//! target's local APIC id, the same in xAPIC and x2APIC mode as long as it
//! fits the address's 8-bit destination field; without interrupt remapping
//! a message cannot reach a larger x2APIC id, so such a target is an error
//! ([`MsiError::DestinationTooWide`]).
//!
//! Every vector of [`FIRST`]`..`[`LAST`] runs [`dispatch`] on whatever core
//! takes it, which looks the handler up in that core's table: the same
//! vector number is a different interrupt on each core.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::cpu_local::{self, CoreId};
use super::irq::TrapHandler;
use super::trap::{self, TrapFrame};
use super::{ioapic, lapic};
use crate::arch::irq::{MsiError, MsiMessage};
use crate::arch::vectors::VectorPool;

/// The first vector handed out to device messages (above the IOAPIC's
/// 16 ISA vectors).
pub const FIRST: u8 = ioapic::IRQ_BASE_VECTOR + 16;
/// One past the last (the APIC timer's vector and the system vectors above).
pub const LAST: u8 = lapic::TIMER_VECTOR;
const COUNT: usize = (LAST - FIRST) as usize;

/// The MSI address window's base (fixed on x86).
const MSI_ADDRESS_BASE: u64 = 0xFEE0_0000;

/// One core's device vectors.
struct CoreVectors {
    pool: spin::Mutex<VectorPool>,
    /// `(handler as usize, context)` per vector; handler 0: none.
    handlers: [(AtomicUsize, AtomicUsize); COUNT],
}

static CORES: spin::Once<Box<[CoreVectors]>> = spin::Once::new();

/// Builds every core's table and points the device vectors at [`dispatch`].
/// Called once at boot, after the core table exists.
pub fn init() {
    CORES.call_once(|| {
        (0..cpu_local::cores().len())
            .map(|_| CoreVectors {
                pool: spin::Mutex::new(VectorPool::new(FIRST, COUNT as u8)),
                handlers: core::array::from_fn(|_| (AtomicUsize::new(0), AtomicUsize::new(0))),
            })
            .collect::<Vec<_>>()
            .into_boxed_slice()
    });
    for vector in FIRST..LAST {
        trap::set_handler(vector, TrapHandler::Kernel(dispatch))
            .expect("device message vectors are reserved for MSI");
    }
}

fn vectors(core: CoreId) -> Result<&'static CoreVectors, MsiError> {
    CORES
        .get()
        .and_then(|cores| cores.get(core.index()))
        .ok_or(MsiError::NoSuchCore(core))
}

/// Takes a free vector on `core` and installs `handler(context)` for it; the
/// handler runs on that core with interrupts masked, and arch sends the EOI.
pub fn allocate(core: CoreId, handler: fn(usize), context: usize) -> Result<u8, MsiError> {
    let table = vectors(core)?;
    let vector = super::cpu::without_interrupts(|| table.pool.lock().allocate())
        .ok_or(MsiError::NoFreeVector(core))?;
    let (slot_handler, slot_context) = &table.handlers[usize::from(vector - FIRST)];
    slot_context.store(context, Ordering::Relaxed);
    slot_handler.store(handler as usize, Ordering::Release);
    Ok(vector)
}

/// Removes the handler of `vector` on `core` and gives the vector back.
pub fn free(core: CoreId, vector: u8) -> Result<(), MsiError> {
    let table = vectors(core)?;
    let index = vector
        .checked_sub(FIRST)
        .filter(|&i| usize::from(i) < COUNT)
        .ok_or(MsiError::NotAllocated(core, vector))?;
    table.handlers[usize::from(index)]
        .0
        .store(0, Ordering::Release);
    match super::cpu::without_interrupts(|| table.pool.lock().free(vector)) {
        true => Ok(()),
        false => Err(MsiError::NotAllocated(core, vector)),
    }
}

/// The message that raises `vector` on `core`: fixed delivery, physical
/// destination (see the module doc).
pub fn message(core: CoreId, vector: u8) -> Result<MsiMessage, MsiError> {
    let apic_id = cpu_local::core(core)
        .ok_or(MsiError::NoSuchCore(core))?
        .apic_id;
    let dest = u8::try_from(apic_id).map_err(|_| MsiError::DestinationTooWide(core, apic_id))?;
    Ok(MsiMessage {
        address: MSI_ADDRESS_BASE | (u64::from(dest) << 12),
        data: u32::from(vector),
    })
}

/// The target core of a message this module made, read back from its
/// address (`None` if it is not such a message).
pub fn target(message: MsiMessage) -> Option<CoreId> {
    if message.address & !0xF_F000 != MSI_ADDRESS_BASE {
        return None;
    }
    let dest = u32::from((message.address >> 12) as u8);
    cpu_local::cores()
        .iter()
        .position(|slot| slot.apic_id == dest)
        .map(|i| CoreId(i as u16))
}

/// Every device vector's entry: runs this core's handler for it, then EOI.
fn dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    let core = cpu_local::core_id();
    let handler = vectors(core).ok().and_then(|table| {
        let (handler, context) = &table.handlers[usize::from(vector.checked_sub(FIRST)?)];
        let handler = handler.load(Ordering::Acquire);
        (handler != 0).then(|| (handler, context.load(Ordering::Relaxed)))
    });
    match handler {
        Some((handler, context)) => {
            // SAFETY: a non-zero value in the table was stored from a
            // `fn(usize)` in `allocate`.
            let handler: fn(usize) = unsafe { core::mem::transmute(handler) };
            handler(context);
        }
        None => {
            cpu_local::this_core()
                .stats
                .spurious_interrupts
                .fetch_add(1, Ordering::Relaxed);
            log::warn!("device vector {vector:#x} on core {core} has no handler");
        }
    }
    lapic::end_of_interrupt();
}
