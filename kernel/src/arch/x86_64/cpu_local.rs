//! Per-core data reached through the GS base register, and the table of cores.
//!
//! Every core points its `IA32_GS_BASE` at its own [`CoreLocal`], whose first
//! field is a pointer to itself; `this_core()` is then a single `mov rax, gs:[0]`
//! with no lock and no table lookup. The GS base is set before a core logs its
//! first line, so every part of the kernel may call [`this_core`].
//!
//! The table of cores is sized from the MADT at boot ([`init_cores`]); a core
//! is reachable by its dense [`CoreId`] from any core.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use x86_64::VirtAddr;
use x86_64::registers::model_specific::GsBase;

pub use crate::arch::{CoreId, CoreStats};

/// The data one core owns.
#[repr(C)]
pub struct CoreLocal {
    /// Points to this structure itself; must stay the first field (`gs:[0]`).
    self_ptr: *const CoreLocal,
    /// What the user-mode entry and exit paths keep per core (reached from
    /// assembly at fixed `gs:` offsets, see `user.rs`).
    pub user: super::user::PerCore,
    /// This core's logical id.
    pub id: CoreId,
    /// This core's local APIC id.
    pub apic_id: AtomicU32,
    pub stats: CoreStats,
    /// This core's local APIC driver; only ever touched on this core, with
    /// interrupts disabled (see `lapic`).
    pub(super) lapic: UnsafeCell<Option<x2apic::lapic::LocalApic>>,
    /// Local APIC timer ticks per second in one-shot mode (0 with TSC deadline).
    pub lapic_timer_hz: AtomicU64,
    /// TSC value of the last APIC timer interrupt on this core.
    pub last_timer_tsc: AtomicU64,
    /// The TSC deadline the APIC timer is armed for (0: not armed).
    pub timer_deadline: AtomicU64,
    /// Set when this core stopped for good (on a stop NMI, or parked on request).
    pub stopped: AtomicBool,
    /// A function another core asked this core to run (see `ipi::run_on`).
    pub(super) mailbox: AtomicPtr<super::ipi::Call>,
}

// SAFETY: shared fields are atomics; `lapic` is only accessed by the owning
// core with interrupts disabled, never through a shared reference elsewhere.
unsafe impl Sync for CoreLocal {}

impl CoreLocal {
    /// A core-local block for the core with logical id `id`.
    pub const fn new(id: CoreId) -> Self {
        Self {
            self_ptr: core::ptr::null(),
            user: super::user::PerCore::new(),
            id,
            apic_id: AtomicU32::new(0),
            stats: CoreStats::new(),
            lapic: UnsafeCell::new(None),
            lapic_timer_hz: AtomicU64::new(0),
            last_timer_tsc: AtomicU64::new(0),
            timer_deadline: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            mailbox: AtomicPtr::new(core::ptr::null_mut()),
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

/// Allocates (and leaks) the local block of application core `id`.
pub fn new_core_local(id: CoreId, apic_id: u32) -> &'static mut CoreLocal {
    let local = Box::leak(Box::new(CoreLocal::new(id)));
    local.apic_id.store(apic_id, Ordering::Relaxed);
    local
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

/// One entry of the core table.
pub struct CoreSlot {
    pub apic_id: u32,
    local: AtomicPtr<CoreLocal>,
    online: AtomicBool,
}

impl CoreSlot {
    /// The core's local block, once it is online.
    pub fn local(&self) -> Option<&'static CoreLocal> {
        // SAFETY: pointers stored here come from leaked boxes or the static
        // BSP block and live forever.
        unsafe { self.local.load(Ordering::Acquire).as_ref() }
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }
}

static CORES: spin::Once<Box<[CoreSlot]>> = spin::Once::new();
static ONLINE: AtomicU32 = AtomicU32::new(1);

/// Sizes the core table: one slot per usable processor, the bootstrap
/// processor first (as core 0). Called once on the bootstrap core.
pub fn init_cores(apic_ids: &[u32]) {
    CORES.call_once(|| {
        let slots: Vec<CoreSlot> = apic_ids
            .iter()
            .map(|&apic_id| CoreSlot {
                apic_id,
                local: AtomicPtr::new(core::ptr::null_mut()),
                online: AtomicBool::new(false),
            })
            .collect();
        slots.into_boxed_slice()
    });
    let bsp = this_core();
    if let Some(slot) = cores().first() {
        bsp.apic_id.store(slot.apic_id, Ordering::Relaxed);
        slot.local
            .store(core::ptr::from_ref(bsp).cast_mut(), Ordering::Release);
        slot.online.store(true, Ordering::Release);
    }
}

/// Marks the running core online in the table.
pub fn mark_online() {
    let me = this_core();
    if let Some(slot) = cores().get(me.id.index()) {
        slot.local
            .store(core::ptr::from_ref(me).cast_mut(), Ordering::Release);
        slot.online.store(true, Ordering::Release);
        ONLINE.fetch_add(1, Ordering::AcqRel);
    }
}

/// All cores the firmware reported as usable (online or not).
pub fn cores() -> &'static [CoreSlot] {
    CORES.get().map_or(&[], |c| &c[..])
}

/// The slot of core `id`.
pub fn core(id: CoreId) -> Option<&'static CoreSlot> {
    cores().get(id.index())
}

/// Number of cores that are online.
pub fn online_cores() -> usize {
    ONLINE.load(Ordering::Acquire) as usize
}
