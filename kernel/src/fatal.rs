//! The one way the kernel stops on an unrecoverable error: a CPU exception or
//! a panic, on any core. The first core to get here owns the stop: it sends
//! an NMI to every other core (which halts them where they are), prints one
//! report, then either halts or hands over to a hook installed by the test
//! kernel (which exits QEMU with a status). A second core failing at the same
//! time halts silently, so the report is printed once and never interleaved.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::x86_64::cpu_local::this_core;
use crate::arch::x86_64::exception::ExceptionReport;
use crate::drivers::qemu_exit::{self, ExitCode};

/// Why the kernel is stopping.
pub enum Fatal<'a> {
    Exception(&'a ExceptionReport),
    Panic(&'a PanicInfo<'a>),
}

/// Called after the report is printed; must not return.
pub type FatalHook = fn(&Fatal<'_>) -> !;

static HOOK: spin::Once<FatalHook> = spin::Once::new();

/// The core that owns the stop (`NO_OWNER` while the machine runs).
static OWNER: AtomicU32 = AtomicU32::new(NO_OWNER);
const NO_OWNER: u32 = u32::MAX;

/// Whether some core is stopping the machine (other cores then halt on NMI).
pub fn in_progress() -> bool {
    OWNER.load(Ordering::Acquire) != NO_OWNER
}

/// Installs the hook that runs after a fatal report (once; later calls are ignored).
pub fn set_hook(hook: FatalHook) {
    HOOK.call_once(|| hook);
}

/// Reports `fatal` and stops. Never returns.
pub fn stop(fatal: Fatal<'_>) -> ! {
    let core = this_core();
    if let Err(owner) =
        OWNER.compare_exchange(NO_OWNER, core.id.0, Ordering::AcqRel, Ordering::Acquire)
    {
        if owner != core.id.0 {
            // Another core is already reporting: stay out of its way.
            crate::arch::x86_64::halt_forever();
        }
    } else if crate::arch::x86_64::lapic::is_ready() {
        crate::arch::x86_64::lapic::send_nmi_all_others();
    }
    let depth = core.fatal_depth.fetch_add(1, Ordering::SeqCst);
    // SAFETY: this core will never resume whatever held the console lock
    // (possibly itself, interrupted inside a print).
    unsafe { crate::console::force_unlock() };
    if depth > 1 {
        // The nested report itself faulted: stop without touching anything.
        crate::arch::x86_64::halt_forever();
    }
    if depth == 1 {
        // A fault while reporting a fault: say so once, then stop without
        // touching anything that might fault again.
        crate::println!(
            "FATAL on core {}: nested fatal error while reporting; stopping",
            core.id
        );
        if HOOK.is_completed() {
            qemu_exit::exit(ExitCode::Failure);
        }
        crate::arch::x86_64::halt_forever();
    }
    match &fatal {
        Fatal::Exception(report) => {
            crate::println!("FATAL on core {}: exception: {report}", core.id)
        }
        Fatal::Panic(info) => {
            let location = info.location();
            crate::println!(
                "PANIC on core {} at {}:{}: {}",
                core.id,
                location.map_or("<unknown>", |l| l.file()),
                location.map_or(0, |l| l.line()),
                info.message()
            )
        }
    }
    if let Some(hook) = HOOK.get() {
        hook(&fatal);
    }
    crate::arch::x86_64::halt_forever()
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    stop(Fatal::Panic(info))
}

/// Stops every core on request (the console's `halt`): the other cores get
/// the stop NMI and halt; under QEMU the machine exits with success.
pub fn halt_machine() -> ! {
    let me = this_core().id.0;
    if OWNER
        .compare_exchange(NO_OWNER, me, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
        && crate::arch::x86_64::lapic::is_ready()
    {
        crate::arch::x86_64::lapic::send_nmi_all_others();
    }
    qemu_exit::exit(ExitCode::Success)
}
