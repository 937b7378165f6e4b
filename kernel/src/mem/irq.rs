//! Interrupt masking for memory-management locks, without knowing the CPU.
//!
//! The heap and the frame allocator are locked with interrupts masked, so
//! that an interrupt handler on the same core can never find one of their
//! locks held by the code it interrupted. Masking is the CPU's business; the
//! memory layer sits below `arch`, so `arch` installs the two functions here
//! at boot ([`install`]). Until then (the first instants of boot, when
//! interrupts are still off) masking is a no-op.

/// How to mask interrupts on the running core.
#[derive(Clone, Copy)]
pub struct Masking {
    /// Masks interrupts and says whether they were enabled before.
    pub save_and_disable: fn() -> bool,
    /// Unmasks interrupts again if `true` (the value `save_and_disable` gave).
    pub restore: fn(bool),
}

static MASKING: spin::Once<Masking> = spin::Once::new();

/// Installs the CPU's masking functions (once; later calls are ignored).
pub fn install(masking: Masking) {
    MASKING.call_once(|| masking);
}

/// Runs `f` with interrupts masked on this core.
pub fn masked<R>(f: impl FnOnce() -> R) -> R {
    match MASKING.get() {
        Some(masking) => {
            let enabled = (masking.save_and_disable)();
            let result = f();
            (masking.restore)(enabled);
            result
        }
        None => f(),
    }
}
