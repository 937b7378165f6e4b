//! The one way the kernel stops on an unrecoverable error: a CPU exception or
//! a panic, on any core. The first core to get here owns the stop: it stops
//! every other core where it is (arch's stop NMI), prints one report, then
//! either halts or hands over to a hook installed by the test kernel (which
//! exits QEMU with a status). A second core failing at the same time halts
//! silently, so the report is printed once and never interleaved.
//!
//! A leaf: it uses only arch's interface and the console, and keeps its own
//! state (the owner of the stop, each core's nesting depth).

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use crate::arch::power::{self, ExitCode};
use crate::arch::trap::ExceptionReport;
use crate::arch::{CoreId, cpu};

/// Why the kernel is stopping.
pub enum Fatal<'a> {
    Exception(&'a ExceptionReport),
    Panic(&'a PanicInfo<'a>),
}

/// Called after the report is printed; must not return.
pub type FatalHook = fn(&Fatal<'_>) -> !;

static HOOK: spin::Once<FatalHook> = spin::Once::new();

/// The core that owns the stop (`NO_OWNER` while the machine runs).
static OWNER: AtomicU16 = AtomicU16::new(NO_OWNER);
const NO_OWNER: u16 = u16::MAX;

/// The most cores whose nesting depth is tracked (others count as core 0's
/// neighbours: they can only stop silently).
const MAX_CORES: usize = 256;
/// How deep each core is in the fatal path (a fault while reporting a fault).
static DEPTH: [AtomicU32; MAX_CORES] = [const { AtomicU32::new(0) }; MAX_CORES];

/// Installs the hook that runs after a fatal report (once; later calls are ignored).
pub fn set_hook(hook: FatalHook) {
    HOOK.call_once(|| hook);
}

/// The fatal path of unrecoverable exceptions (installed in arch at boot).
pub fn on_exception(report: &ExceptionReport) -> ! {
    stop(Fatal::Exception(report))
}

/// Takes the stop for `me`: false if another core already owns it.
fn claim(me: CoreId) -> bool {
    match OWNER.compare_exchange(NO_OWNER, me.0, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            cpu::stop_other_cores();
            true
        }
        Err(owner) => owner == me.0,
    }
}

/// Reports `fatal` and stops. Never returns.
pub fn stop(fatal: Fatal<'_>) -> ! {
    let me = cpu::core_id();
    if !claim(me) {
        // Another core is already reporting: stay out of its way.
        cpu::halt_forever();
    }
    let depth = DEPTH
        .get(me.index())
        .map_or(2, |d| d.fetch_add(1, Ordering::SeqCst));
    // SAFETY: this core will never resume whatever held the console lock
    // (possibly itself, interrupted inside a print).
    unsafe { crate::console::force_unlock() };
    if depth > 1 {
        // The nested report itself faulted: stop without touching anything.
        cpu::halt_forever();
    }
    if depth == 1 {
        // A fault while reporting a fault: say so once, then stop without
        // touching anything that might fault again.
        crate::println!("FATAL on core {me}: nested fatal error while reporting; stopping");
        if HOOK.is_completed() {
            power::exit_qemu(ExitCode::Failure);
        }
        cpu::halt_forever();
    }
    match &fatal {
        Fatal::Exception(report) => {
            crate::println!("FATAL on core {me}: exception: {report}")
        }
        Fatal::Panic(info) => {
            let location = info.location();
            crate::println!(
                "PANIC on core {me} at {}:{}: {}",
                location.map_or("<unknown>", |l| l.file()),
                location.map_or(0, |l| l.line()),
                info.message()
            )
        }
    }
    // The screen shows the report too (drawn here: no other core will).
    crate::console::flush_sink();
    if let Some(hook) = HOOK.get() {
        hook(&fatal);
    }
    cpu::halt_forever()
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    stop(Fatal::Panic(info))
}

/// Stops every core on request (the shell's `halt` and `poweroff`, once the
/// other cores have parked or not answered): the others get the stop NMI
/// and halt; then the machine powers off (ACPI), or under QEMU without
/// ACPI power-off exits with success.
pub fn halt_machine() -> ! {
    claim(cpu::core_id());
    power::power_off()
}

/// As [`halt_machine`], then resets the machine (the shell's `reboot`).
pub fn reboot_machine() -> ! {
    claim(cpu::core_id());
    power::reboot()
}
