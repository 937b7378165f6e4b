//! Inter-processor calls: run a function on another core.
//!
//! The caller posts a [`Call`] in the target core's mailbox and rings its
//! IPI doorbell. The IPI handler only counts and acknowledges; the target runs
//! the call from its idle loop, in normal (interrupts-enabled) context, so a
//! call may wait for interrupts itself. This is the boot-time and test-time
//! mechanism; the reactor's message rings replace it on the hot path.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::cpu_local::{self, CoreId, this_core};
use super::trap::{self, TrapFrame};
use super::{lapic, tsc};

/// A function posted to another core, with its argument and result.
pub struct Call {
    func: fn(usize) -> u64,
    arg: usize,
    result: AtomicU64,
    done: AtomicBool,
}

/// Why [`run_on`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No such core, or it is not online.
    NoSuchCore(CoreId),
    /// The call did not complete in time (the call is leaked, not freed).
    Timeout(CoreId),
}

/// Installs the IPI handler. Called once on the bootstrap core.
pub fn init() {
    trap::set_handler(lapic::IPI_VECTOR, super::irq::TrapHandler::Kernel(on_ipi))
        .expect("the IPI vector is reserved");
}

fn on_ipi(_: &mut TrapFrame) {
    this_core()
        .stats
        .ipis_received
        .fetch_add(1, Ordering::Relaxed);
    lapic::end_of_interrupt();
}

/// A call posted to another core with [`post`].
pub struct Pending {
    call: *mut Call,
    target: CoreId,
}

/// Posts `func(arg)` to core `target` (not the calling core) and rings its
/// doorbell, without waiting for it to run.
pub fn post(
    target: CoreId,
    func: fn(usize) -> u64,
    arg: usize,
    timeout_ms: u64,
) -> Result<Pending, CallError> {
    let slot = cpu_local::core(target)
        .filter(|s| s.is_online())
        .ok_or(CallError::NoSuchCore(target))?;
    let local = slot.local().ok_or(CallError::NoSuchCore(target))?;
    if target == cpu_local::core_id() {
        return Err(CallError::NoSuchCore(target));
    }
    // Boxed and leaked on timeout: the target may still run it later.
    let call = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(Call {
        func,
        arg,
        result: AtomicU64::new(0),
        done: AtomicBool::new(false),
    }));
    let deadline = deadline_after_ms(timeout_ms);
    while local
        .mailbox
        .compare_exchange(
            core::ptr::null_mut(),
            call,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        if tsc::rdtsc() > deadline {
            return Err(CallError::Timeout(target));
        }
        core::hint::spin_loop();
    }
    lapic::send_ipi(target, lapic::IPI_VECTOR);
    Ok(Pending { call, target })
}

impl Pending {
    /// Waits for the call to finish and returns its result.
    pub fn wait(self, timeout_ms: u64) -> Result<u64, CallError> {
        let deadline = deadline_after_ms(timeout_ms);
        // SAFETY: `call` stays allocated until freed below, after `done`.
        let call = unsafe { &*self.call };
        while !call.done.load(Ordering::Acquire) {
            if tsc::rdtsc() > deadline {
                return Err(CallError::Timeout(self.target));
            }
            core::hint::spin_loop();
        }
        let result = call.result.load(Ordering::Relaxed);
        // SAFETY: the target set `done` and no longer touches the call.
        drop(unsafe { alloc::boxed::Box::from_raw(self.call) });
        Ok(result)
    }
}

fn deadline_after_ms(ms: u64) -> u64 {
    tsc::rdtsc().saturating_add(tsc::hz() / 1000 * ms)
}

/// Runs `func(arg)` on core `target` and returns its result, waiting at most
/// `timeout_ms`. On the calling core itself, runs it directly.
pub fn run_on(
    target: CoreId,
    func: fn(usize) -> u64,
    arg: usize,
    timeout_ms: u64,
) -> Result<u64, CallError> {
    if target == cpu_local::core_id() {
        return Ok(func(arg));
    }
    post(target, func, arg, timeout_ms)?.wait(timeout_ms)
}

/// Runs a call waiting in this core's mailbox, if any. Returns whether it ran one.
pub fn serve_pending_call() -> bool {
    let call = this_core()
        .mailbox
        .swap(core::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: a non-null mailbox entry is a live `Call` posted by `run_on`,
    // which frees it only after we set `done`.
    let Some(call) = (unsafe { call.as_ref() }) else {
        return false;
    };
    call.result.store((call.func)(call.arg), Ordering::Relaxed);
    call.done.store(true, Ordering::Release);
    true
}

/// The idle loop of an application core: serve calls, otherwise halt until
/// an interrupt.
pub fn idle_serving_calls() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        if serve_pending_call() {
            continue;
        }
        // `sti; hlt`: an IPI that arrived after the check above is taken
        // right after `sti`'s one-instruction shadow, ending the `hlt`.
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}
