//! x86_64: descriptor tables, trap entry, per-core data, local APIC and
//! IOAPIC, timers, AP start-up, page tables, ring 3 and legacy devices — and, at the
//! top of this file, the implementation of the interface `arch` exports.

pub mod acpi;
pub mod boot;
pub mod cpu_local;
pub mod exception;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod ipi;
pub mod lapic;
pub mod msi;
pub mod paging;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod power;
pub mod refclock;
pub mod serial;
pub mod smp;
pub mod trap;
pub mod tsc;
pub mod user;
pub mod usercopy;
pub mod uspace;

use core::sync::atomic::{AtomicBool, Ordering};

/// Set once some core stops the others with an NMI (the fatal path): a core
/// that takes that NMI halts where it is.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// `arch::cpu`.
pub mod cpu {
    use core::sync::atomic::Ordering;

    use super::cpu_local::{self, CoreId, CoreStats};
    use ::x86_64::instructions::interrupts;

    pub use cpu_local::{core_id, online_cores};

    /// Cores the firmware reported as usable (online or not).
    pub fn core_count() -> usize {
        cpu_local::cores().len()
    }

    /// Whether core `core` is online.
    pub fn is_online(core: CoreId) -> bool {
        cpu_local::core(core).is_some_and(|slot| slot.is_online())
    }

    /// The counters of core `core`, once it is online.
    pub fn stats(core: CoreId) -> Option<&'static CoreStats> {
        Some(&cpu_local::core(core)?.local()?.stats)
    }

    /// Core `core`'s local APIC id.
    pub fn apic_id(core: CoreId) -> Option<u32> {
        Some(cpu_local::core(core)?.apic_id)
    }

    /// Runs `f` with interrupts masked on this core (restoring the previous state).
    #[inline]
    pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
        interrupts::without_interrupts(f)
    }

    #[inline]
    pub fn disable_interrupts() {
        interrupts::disable();
    }

    #[inline]
    pub fn enable_interrupts() {
        interrupts::enable();
    }

    /// With interrupts masked on entry: unmasks them and halts until an
    /// interrupt, atomically (`sti; hlt`: an interrupt pending since they
    /// were masked ends the halt at once). Returns with interrupts masked.
    #[inline]
    pub fn wait_for_interrupt() {
        interrupts::enable_and_hlt();
        interrupts::disable();
    }

    /// Halts this core forever with interrupts masked.
    pub fn halt_forever() -> ! {
        loop {
            interrupts::disable();
            ::x86_64::instructions::hlt();
        }
    }

    /// Marks this core as stopped for good (it is about to halt forever).
    pub fn mark_stopped() {
        cpu_local::this_core()
            .stopped
            .store(true, Ordering::Release);
    }

    /// [`mark_stopped`] for the stop NMI, which may arrive while GS holds
    /// the user's base (between `SYSCALL` and `swapgs`, or `swapgs` and
    /// `SYSRET`): finds this core's block by its APIC id register, not
    /// through GS. A core it cannot find stays unmarked (`is_stopped`
    /// says no); it halts all the same.
    pub(crate) fn mark_stopped_from_nmi() {
        let Some(id) = super::lapic::register_id() else {
            return;
        };
        if let Some(local) = cpu_local::cores()
            .iter()
            .find(|slot| slot.apic_id == id)
            .and_then(|slot| slot.local())
        {
            local.stopped.store(true, Ordering::Release);
        }
    }

    /// Whether core `core` has stopped for good.
    pub fn is_stopped(core: CoreId) -> bool {
        cpu_local::core(core)
            .and_then(|slot| slot.local())
            .is_some_and(|local| local.stopped.load(Ordering::Acquire))
    }

    /// Stops every other core where it is, with an NMI (the fatal path:
    /// a core may be stuck and cannot be asked). Harmless before the APIC
    /// is up (there are no other cores yet).
    pub fn stop_other_cores() {
        super::STOPPING.store(true, Ordering::Release);
        if super::lapic::is_ready() {
            super::lapic::send_nmi_all_others();
        }
    }
}

/// Whether a stop NMI is expected (see [`cpu::stop_other_cores`]).
pub(crate) fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}

/// `arch::doorbell`.
pub mod doorbell {
    use core::sync::atomic::Ordering;

    use super::cpu_local::{CoreId, this_core};
    use super::lapic;

    /// Rings core `core`'s doorbell (an IPI on the wake-up vector) and
    /// counts it. Returns false if there is no such core.
    pub fn ring(core: CoreId) -> bool {
        this_core().stats.doorbells.fetch_add(1, Ordering::Relaxed);
        lapic::send_ipi(core, lapic::IPI_VECTOR)
    }
}

/// `arch::timer`.
pub mod timer {
    pub use super::lapic::{arm_timer as arm, cancel_timer as cancel};
}

/// `arch::clock`.
pub mod clock {
    pub use super::tsc::{hz, rdtsc as cycles};
}

/// `arch::call`.
pub mod call {
    pub use super::ipi::{CallError, Pending, post, run_on, serve_pending_call as serve_pending};
}

/// `arch::io`.
pub mod io {
    use ::x86_64::instructions::port::Port;

    macro_rules! port_io {
        ($read:ident, $write:ident, $t:ty) => {
            /// Reads the I/O port `port`.
            ///
            /// # Safety
            /// Reading a device register can have side effects: the caller
            /// must own the device at `port`.
            pub unsafe fn $read(port: u16) -> $t {
                // SAFETY: forwarded to the caller.
                unsafe { Port::<$t>::new(port).read() }
            }

            /// Writes `value` to the I/O port `port`.
            ///
            /// # Safety
            /// The caller must own the device at `port`.
            pub unsafe fn $write(port: u16, value: $t) {
                // SAFETY: forwarded to the caller.
                unsafe { Port::<$t>::new(port).write(value) }
            }
        };
    }

    port_io!(read_u8, write_u8, u8);
    port_io!(read_u16, write_u16, u16);
    port_io!(read_u32, write_u32, u32);
}

/// `arch::mmio`.
pub mod mmio {
    pub use super::paging::{MmioRegion, map_mmio as map};
}

/// `arch::irq`.
pub mod irq {
    use super::cpu_local::CoreId;
    use super::trap::{self, TrapFrame};
    use super::{ioapic, lapic, msi};
    use crate::arch::irq::{MsiError, MsiMessage};

    /// Takes a free vector on core `core` for a device's message and
    /// installs `handler(context)` for it there; the handler runs on that
    /// core with interrupts masked and arch sends the EOI after it.
    pub fn allocate_vector(
        core: CoreId,
        handler: fn(usize),
        context: usize,
    ) -> Result<u8, MsiError> {
        msi::allocate(core, handler, context)
    }

    /// Removes the handler of `vector` on `core` and frees the vector.
    pub fn free_vector(core: CoreId, vector: u8) -> Result<(), MsiError> {
        msi::free(core, vector)
    }

    /// The message that raises `vector` on core `core` (fixed delivery,
    /// physical destination: the core's APIC id).
    pub fn msi_message(core: CoreId, vector: u8) -> Result<MsiMessage, MsiError> {
        msi::message(core, vector)
    }

    /// The core a message made by [`msi_message`] targets (read back from
    /// a device's table), if it is one.
    pub fn msi_target(message: MsiMessage) -> Option<CoreId> {
        msi::target(message)
    }

    /// Why a device interrupt could not be routed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RouteError {
        /// Another handler owns the vector of this IRQ.
        Busy(u8),
        /// The IOAPIC cannot deliver it there.
        Route(ioapic::RouteError),
        /// There is no IOAPIC (ACPI described none, or boot could not map it).
        NoIoApic,
    }

    /// Routes ISA IRQ `irq` to core `core`, where `handler` runs (with
    /// interrupts masked; arch acknowledges the interrupt after it).
    pub fn route_isa(irq: u8, core: CoreId, handler: fn()) -> Result<(), RouteError> {
        if !ioapic::is_ready() {
            return Err(RouteError::NoIoApic);
        }
        let vector = ioapic::IRQ_BASE_VECTOR + irq;
        trap::set_handler(vector, TrapHandler::Device(handler))
            .map_err(|_| RouteError::Busy(vector))?;
        ioapic::route_isa_irq(irq, vector, core).map_err(RouteError::Route)
    }

    /// A vector's handler: the kernel's own (with the trap frame), or a
    /// device's (acknowledged here).
    #[derive(Clone, Copy)]
    pub enum TrapHandler {
        Kernel(fn(&mut TrapFrame)),
        Device(fn()),
    }

    impl TrapHandler {
        pub(super) fn run(self, frame: &mut TrapFrame) {
            match self {
                TrapHandler::Kernel(handler) => handler(frame),
                TrapHandler::Device(handler) => {
                    handler();
                    lapic::end_of_interrupt();
                }
            }
        }
    }
}
