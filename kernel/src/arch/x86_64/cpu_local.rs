//! Per-core data reached through the GS base register.
//!
//! Every core points its `IA32_GS_BASE` at its own [`CoreLocal`], whose first
//! field is a pointer to itself; `this_core()` is then a single `mov rax, gs:[0]`
//! with no lock and no table lookup. The GS base is set before a core logs its
//! first line, so every part of the kernel may call [`this_core`].

use core::sync::atomic::{AtomicU32, Ordering};
use x86_64::VirtAddr;
use x86_64::registers::model_specific::GsBase;

/// A dense logical core number, `0..cores`. The bootstrap core is core 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(pub u32);

impl core::fmt::Display for CoreId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The data one core owns. Other cores never write it.
#[repr(C)]
pub struct CoreLocal {
    /// Points to this structure itself; must stay the first field (`gs:[0]`).
    self_ptr: *const CoreLocal,
    /// This core's logical id.
    pub id: CoreId,
    /// Nesting depth of fatal-error handling on this core (a fault inside the
    /// fault reporter must not recurse forever).
    pub fatal_depth: AtomicU32,
}

// SAFETY: a `CoreLocal` is only mutated through atomics; sharing references
// across cores (e.g. for diagnostics) is sound.
unsafe impl Sync for CoreLocal {}

impl CoreLocal {
    /// A core-local block for the core with logical id `id`. Call
    /// [`CoreLocal::install`] on the owning core to make it current.
    pub const fn new(id: CoreId) -> Self {
        Self {
            self_ptr: core::ptr::null(),
            id,
            fatal_depth: AtomicU32::new(0),
        }
    }

    /// Makes `this` the running core's local block.
    ///
    /// # Safety
    /// Must be called once per core, on that core, before anything calls
    /// [`this_core`], with a block that is never freed or moved.
    pub unsafe fn install(this: &'static mut CoreLocal) {
        this.self_ptr = this;
        GsBase::write(VirtAddr::from_ptr(this.self_ptr));
    }
}

/// The bootstrap core's block; application cores get heap-allocated ones.
static mut BSP_LOCAL: CoreLocal = CoreLocal::new(CoreId(0));

/// Installs the bootstrap core's local block. Called first thing at boot.
pub fn install_bsp() {
    // SAFETY: called exactly once, on the bootstrap core, before anything else
    // touches BSP_LOCAL; afterwards only `this_core()` reaches it.
    unsafe { CoreLocal::install(&mut *core::ptr::addr_of_mut!(BSP_LOCAL)) }
}

/// The running core's local block.
#[inline]
pub fn this_core() -> &'static CoreLocal {
    let ptr: *const CoreLocal;
    // SAFETY: GS base points at this core's `CoreLocal` (installed at boot),
    // whose first field holds its own address.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, preserves_flags, readonly));
        &*ptr
    }
}

/// The running core's logical id.
#[inline]
pub fn core_id() -> CoreId {
    this_core().id
}

/// Number of cores that are online (only the bootstrap core until SMP start-up).
pub fn online_cores() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

static ONLINE: AtomicU32 = AtomicU32::new(1);
