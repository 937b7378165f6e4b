//! The local APIC of each core (through the `x2apic` crate): x2APIC mode when
//! the CPU offers it, xAPIC (uncached MMIO) otherwise; its timer in
//! TSC-deadline mode when available, one-shot mode (calibrated per core)
//! otherwise; and inter-processor interrupts.
//!
//! The driver object lives in the core's [`CoreLocal`] and is only touched on
//! that core with interrupts disabled: in xAPIC mode an IPI is two register
//! writes, which an interrupt handler sending its own IPI must not split.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x2apic::lapic::{IpiAllShorthand, LocalApic, LocalApicBuilder, TimerDivide, TimerMode};
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::registers::model_specific::Msr;

use super::cpu_local::{self, CoreId, this_core};
use super::trap::{self, TrapFrame};
use super::tsc;

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0xE0;
/// Vector of the cross-core call / wake-up IPI.
pub const IPI_VECTOR: u8 = 0xF0;
/// Vector of local APIC errors.
pub const ERROR_VECTOR: u8 = 0xFE;
/// Spurious-interrupt vector (no EOI is sent for it).
pub const SPURIOUS_VECTOR: u8 = 0xFF;

const IA32_TSC_DEADLINE: u32 = 0x6E0;
const IA32_APIC_BASE: u32 = 0x1B;
/// IA32_APIC_BASE's x2APIC-mode bit.
const X2APIC_ENABLED: u64 = 1 << 10;
/// The x2APIC id register.
const X2APIC_ID_MSR: u32 = 0x802;
/// The xAPIC id register's offset in the window.
const XAPIC_ID_OFFSET: u64 = 0x20;

static X2APIC: AtomicBool = AtomicBool::new(false);
static TSC_DEADLINE: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC register window (unused in x2APIC mode).
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);

/// Which register interface the local APICs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    XApic,
    X2Apic,
}

/// How the APIC timer is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    TscDeadline,
    OneShot,
}

pub fn mode() -> Mode {
    if X2APIC.load(Ordering::Relaxed) {
        Mode::X2Apic
    } else {
        Mode::XApic
    }
}

pub fn timer_kind() -> TimerKind {
    if TSC_DEADLINE.load(Ordering::Relaxed) {
        TimerKind::TscDeadline
    } else {
        TimerKind::OneShot
    }
}

/// Global set-up on the bootstrap core: pick the mode, map the xAPIC window
/// uncached, install the handlers.
pub fn init_global(xapic_phys: u64) -> Result<(), crate::mem::MemoryError> {
    let features = core::arch::x86_64::__cpuid(1);
    let x2 = features.ecx & (1 << 21) != 0;
    X2APIC.store(x2, Ordering::Relaxed);
    TSC_DEADLINE.store(features.ecx & (1 << 24) != 0, Ordering::Relaxed);
    if !x2 {
        let region = super::paging::map_mmio(xapic_phys, 4096)?;
        XAPIC_BASE.store(region.base, Ordering::Relaxed);
    }
    for (vector, handler) in [
        (TIMER_VECTOR, on_timer as fn(&mut TrapFrame)),
        (ERROR_VECTOR, on_error),
        (SPURIOUS_VECTOR, on_spurious),
    ] {
        trap::set_handler(vector, super::irq::TrapHandler::Kernel(handler))
            .expect("APIC vectors are reserved for the APIC driver");
    }
    Ok(())
}

/// Runs `f` on this core's APIC driver with interrupts disabled.
fn with_lapic<R>(f: impl FnOnce(&mut LocalApic) -> R) -> R {
    without_interrupts(|| {
        // SAFETY: only the owning core reaches its `lapic` cell, and with
        // interrupts disabled nothing else on this core can hold it.
        let lapic = unsafe { &mut *this_core().lapic.get() };
        f(lapic
            .as_mut()
            .expect("local APIC used before lapic::init_this_core"))
    })
}

/// Enables this core's local APIC with the timer stopped, and calibrates the
/// one-shot timer when TSC-deadline mode is not available.
pub fn init_this_core() {
    let mut builder = LocalApicBuilder::new();
    builder
        .timer_vector(usize::from(TIMER_VECTOR))
        .error_vector(usize::from(ERROR_VECTOR))
        .spurious_vector(usize::from(SPURIOUS_VECTOR))
        .timer_mode(TimerMode::OneShot)
        .timer_divide(TimerDivide::Div16)
        // Initial count 0 keeps the one-shot timer stopped: `enable()`
        // would otherwise start it.
        .timer_initial(0)
        .set_xapic_base(XAPIC_BASE.load(Ordering::Relaxed));
    let mut lapic = builder
        .build()
        .expect("all LocalApicBuilder fields are set");
    // SAFETY: enables this core's APIC with our vectors; the timer does not run.
    unsafe {
        lapic.enable();
        if timer_kind() == TimerKind::TscDeadline {
            lapic.set_timer_mode(TimerMode::TscDeadline);
        }
    }
    let core = this_core();
    // SAFETY: this core's cell, set before anything else uses it.
    unsafe { *core.lapic.get() = Some(lapic) };
    // SAFETY: reading this core's APIC id register.
    let apic_id = with_lapic(|l| unsafe { l.id() });
    let apic_id = if mode() == Mode::XApic {
        apic_id >> 24
    } else {
        apic_id
    };
    core.apic_id.store(apic_id, Ordering::Relaxed);
    if timer_kind() == TimerKind::OneShot {
        core.lapic_timer_hz
            .store(calibrate_one_shot(), Ordering::Relaxed);
    }
}

/// Counts APIC timer ticks (divide-by-16) over 1 ms of TSC time.
fn calibrate_one_shot() -> u64 {
    let window = tsc::hz() / 1000;
    with_lapic(|l| {
        // SAFETY: masked-count measurement on this core's own timer; it is
        // stopped again (initial count 0) before returning.
        unsafe {
            l.set_timer_initial(u32::MAX);
            let start = tsc::rdtsc();
            while tsc::rdtsc() - start < window {
                core::hint::spin_loop();
            }
            let elapsed = u64::from(u32::MAX - l.timer_current());
            l.set_timer_initial(0);
            elapsed * 1000
        }
    })
}

/// Arms this core's timer to interrupt at TSC value `deadline` (at once if
/// it has passed). Replaces any earlier deadline. The interrupt never comes
/// before the deadline: a one-shot count that ran out early (the APIC timer
/// and the TSC are separate clocks) is re-armed for the remainder.
pub fn arm_timer(deadline: u64) {
    this_core()
        .timer_deadline
        .store(deadline.max(1), Ordering::Relaxed);
    program_timer(deadline);
}

fn program_timer(deadline: u64) {
    match timer_kind() {
        TimerKind::TscDeadline => without_interrupts(|| {
            // SAFETY: writing IA32_TSC_DEADLINE arms this core's timer; the
            // LVT is in TSC-deadline mode (set in init_this_core).
            unsafe { Msr::new(IA32_TSC_DEADLINE).write(deadline.max(1)) }
        }),
        TimerKind::OneShot => {
            let hz = this_core().lapic_timer_hz.load(Ordering::Relaxed);
            let cycles = deadline.saturating_sub(tsc::rdtsc());
            let count = (u128::from(cycles) * u128::from(hz) / u128::from(tsc::hz().max(1)))
                .clamp(1, u128::from(u32::MAX));
            // SAFETY: arms this core's one-shot timer.
            with_lapic(|l| unsafe { l.set_timer_initial(count as u32) });
        }
    }
}

/// Stops this core's timer.
pub fn cancel_timer() {
    this_core().timer_deadline.store(0, Ordering::Relaxed);
    match timer_kind() {
        TimerKind::TscDeadline => without_interrupts(|| {
            // SAFETY: a zero deadline disarms the TSC-deadline timer.
            unsafe { Msr::new(IA32_TSC_DEADLINE).write(0) }
        }),
        // SAFETY: an initial count of 0 stops the one-shot timer.
        TimerKind::OneShot => with_lapic(|l| unsafe { l.set_timer_initial(0) }),
    }
}

/// Signals end of interrupt to this core's APIC.
pub fn end_of_interrupt() {
    // SAFETY: called at the end of a handler of an APIC-delivered interrupt.
    with_lapic(|l| unsafe { l.end_of_interrupt() });
}

/// The ICR destination field for `apic_id` (xAPIC keeps it in bits 56..64).
fn destination(apic_id: u32) -> u32 {
    if mode() == Mode::XApic {
        apic_id << 24
    } else {
        apic_id
    }
}

/// Waits until an xAPIC has accepted the previous IPI (x2APIC needs no wait).
fn wait_icr_idle(lapic: &LocalApic) {
    if mode() == Mode::XApic {
        // SAFETY: reads the delivery-status bit of this core's ICR.
        while unsafe { lapic.get_ipi_delivery_status() } {
            core::hint::spin_loop();
        }
    }
}

/// Sends `vector` to core `target`. Returns false if the core does not exist.
pub fn send_ipi(target: CoreId, vector: u8) -> bool {
    let Some(slot) = cpu_local::core(target) else {
        return false;
    };
    with_lapic(|l| {
        wait_icr_idle(l);
        // SAFETY: a fixed-vector IPI to a known APIC id.
        unsafe { l.send_ipi(vector, destination(slot.apic_id)) };
    });
    true
}

/// This core's local APIC id, as recorded in its per-core block at boot.
pub fn own_id() -> u32 {
    this_core().apic_id.load(Ordering::Relaxed)
}

/// This core's local APIC id read from the APIC's id register, without
/// the per-core block: usable where GS may still hold the user's base (an
/// NMI taken between `SYSCALL` and `swapgs`, or between `swapgs` and
/// `SYSRET`). `None` while this core's APIC is in xAPIC mode and the
/// kernel has no xAPIC window (before [`init_global`], or a core not yet
/// switched to x2APIC mode on an x2APIC machine).
pub fn register_id() -> Option<u32> {
    // SAFETY: IA32_APIC_BASE is readable on every x86_64 core.
    let apic_base = unsafe { Msr::new(IA32_APIC_BASE).read() };
    if apic_base & X2APIC_ENABLED != 0 {
        // SAFETY: this core's APIC is in x2APIC mode: its id MSR reads.
        return Some(unsafe { Msr::new(X2APIC_ID_MSR).read() } as u32);
    }
    let base = XAPIC_BASE.load(Ordering::Relaxed);
    if base == 0 {
        return None;
    }
    // SAFETY: the xAPIC window is mapped uncached for the kernel's life;
    // the id register is read-only, bits 24..31 hold the id.
    let register = unsafe { core::ptr::read_volatile((base + XAPIC_ID_OFFSET) as *const u32) };
    Some(register >> 24)
}

/// The cycle count at which this core's last timer interrupt was taken.
pub fn last_timer_fired() -> u64 {
    this_core().last_timer_tsc.load(Ordering::Acquire)
}

/// The `IA32_APIC_BASE` MSR of this core (base address and mode bits).
pub fn base_msr() -> u64 {
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    unsafe { Msr::new(IA32_APIC_BASE).read() }
}

/// Rings the doorbell of every core but this one at once (the
/// all-excluding-self shorthand), counted as one doorbell.
pub fn ring_all_others() {
    this_core().stats.doorbells.fetch_add(1, Ordering::Relaxed);
    send_ipi_all_others(IPI_VECTOR);
}

/// Sends `vector` to every core but this one.
fn send_ipi_all_others(vector: u8) {
    with_lapic(|l| {
        wait_icr_idle(l);
        // SAFETY: a fixed-vector IPI with the all-excluding-self shorthand.
        unsafe { l.send_ipi_all(vector, IpiAllShorthand::AllExcludingSelf) };
    });
}

/// Sends an NMI to every core but this one (used to stop the machine).
pub fn send_nmi_all_others() {
    with_lapic(|l| {
        wait_icr_idle(l);
        // SAFETY: NMI with the all-excluding-self shorthand.
        unsafe { l.send_nmi_all(IpiAllShorthand::AllExcludingSelf) };
    });
}

/// INIT to `apic_id` (AP start-up).
pub fn send_init(apic_id: u32) {
    with_lapic(|l| {
        wait_icr_idle(l);
        // SAFETY: INIT resets the target core, which is not running yet.
        unsafe { l.send_init_ipi(destination(apic_id)) };
    });
}

/// STARTUP to `apic_id`, starting it in real mode at `page << 12`.
pub fn send_startup(apic_id: u32, page: u8) {
    with_lapic(|l| {
        wait_icr_idle(l);
        // SAFETY: SIPI to a core waiting for one; `page` holds the trampoline.
        unsafe { l.send_sipi(page, destination(apic_id)) };
    });
}

/// Whether the local APIC is usable on this core (init_this_core has run).
pub fn is_ready() -> bool {
    // SAFETY: reading our own cell with interrupts possibly enabled is fine
    // for a presence check; the cell only goes from None to Some.
    unsafe { (*this_core().lapic.get()).is_some() }
}

fn on_timer(_: &mut TrapFrame) {
    let core = this_core();
    let now = tsc::rdtsc();
    let deadline = core.timer_deadline.load(Ordering::Relaxed);
    if deadline != 0 && now < deadline {
        core.stats
            .timer_early_rearms
            .fetch_add(1, Ordering::Relaxed);
        program_timer(deadline);
    } else {
        core.timer_deadline.store(0, Ordering::Relaxed);
        core.last_timer_tsc.store(now, Ordering::Release);
        core.stats.timer_interrupts.fetch_add(1, Ordering::Relaxed);
    }
    end_of_interrupt();
}

fn on_error(_: &mut TrapFrame) {
    // SAFETY: reading (and thereby clearing) this core's error status.
    let flags = with_lapic(|l| unsafe { l.error_flags() });
    this_core()
        .stats
        .apic_errors
        .fetch_add(1, Ordering::Relaxed);
    log::warn!("local APIC error: {flags:?}");
    end_of_interrupt();
}

fn on_spurious(_: &mut TrapFrame) {
    // Spurious interrupts get no EOI (SDM vol. 3, 11.9).
    this_core()
        .stats
        .spurious_interrupts
        .fetch_add(1, Ordering::Relaxed);
}
