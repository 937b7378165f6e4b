//! Bringing up the application processors (APs).
//!
//! Sequence (Intel MP spec / SDM vol. 3, 9.4, with the delays measured on the
//! calibrated TSC):
//! 1. INIT to every AP, back to back, then one 10 ms wait for all of them.
//! 2. For each AP in turn: fill the trampoline's parameter block (its own
//!    guarded stack and `CoreLocal`), STARTUP, and if it has not entered the
//!    kernel after 200 µs a second STARTUP. As soon as the AP is running on
//!    its own stack — it no longer needs the trampoline — the next AP is
//!    started, so the rest of each AP's set-up (descriptor tables, interrupt
//!    stacks, local APIC, timer calibration) runs in parallel with the others.
//! 3. Wait until every AP reports itself online.
//!
//! The trampoline runs from one page below 1 MiB, identity-mapped for the
//! switch to long mode and unmapped again afterwards.

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};

use super::cpu_local::{self, CoreId, CoreLocal};
use super::{gdt, idt, ipi, lapic, paging, tsc};
use crate::mem;

core::arch::global_asm!(include_str!("ap_trampoline.S"), options(att_syntax));

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_trampoline_params: u8;
}

/// Stack size of each AP's kernel stack.
pub const AP_STACK_SIZE: usize = 64 * 1024;

/// The trampoline's parameter block (see `ap_trampoline.S`).
#[repr(C)]
struct TrampolineParams {
    protected_target: u32,
    protected_selector: u16,
    _pad0: u16,
    long_target: u32,
    long_selector: u16,
    _pad1: u16,
    gdt_pointer_offset: u64,
    gdt_offset: u64,
    protected_offset: u64,
    long_offset: u64,
    cr3: u64,
    stack: u64,
    entry: u64,
    arg: u64,
}

/// Timings of one AP's start-up, in TSC cycles from its STARTUP IPI.
#[derive(Clone, Copy, Debug)]
pub struct ApTiming {
    pub core: CoreId,
    pub apic_id: u32,
    /// STARTUP IPIs sent (1 or 2).
    pub startups: u32,
    /// Until the AP ran its first kernel instruction.
    pub entered_cycles: u64,
    /// Until it was fully online.
    pub online_cycles: u64,
}

/// What SMP start-up did.
#[derive(Clone, Debug, Default)]
pub struct SmpReport {
    pub timings: Vec<ApTiming>,
    /// Cores that did not come up (APIC ids).
    pub failed: Vec<u32>,
    /// From the first INIT to the last AP online, in TSC cycles.
    pub total_cycles: u64,
}

/// Why SMP start-up could not begin (the bootstrap core carries on alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpError {
    NoLowPage,
    PageTableAbove4GiB,
    Memory(mem::MemoryError),
}

static ENTERED: AtomicU32 = AtomicU32::new(0);
static ONLINE_AT: [AtomicU64; MAX_TIMED] = [const { AtomicU64::new(0) }; MAX_TIMED];
const MAX_TIMED: usize = 1024;
/// CR4 of the bootstrap core, copied by every AP.
static BSP_CR4: AtomicU64 = AtomicU64::new(0);

/// Starts every AP in `apic_ids` (the bootstrap core's own id excluded).
pub fn start_aps(
    apic_ids: &[u32],
    regions: &MemoryRegions,
    phys_offset: u64,
) -> Result<SmpReport, SmpError> {
    let mut report = SmpReport::default();
    if apic_ids.is_empty() {
        return Ok(report);
    }
    let (l4, _) = x86_64::registers::control::Cr3::read();
    if l4.start_address().as_u64() >= 1 << 32 {
        return Err(SmpError::PageTableAbove4GiB);
    }
    BSP_CR4.store(
        x86_64::registers::control::Cr4::read_raw(),
        Ordering::Relaxed,
    );
    let page = map_trampoline(regions)?;
    // SAFETY: `page` is a free low frame we just identity-mapped; the
    // trampoline blob is code/data in the kernel image.
    let params = unsafe { install_trampoline(page, phys_offset, l4.start_address().as_u64()) };

    let start = tsc::rdtsc();
    for &apic_id in apic_ids {
        lapic::send_init(apic_id);
    }
    spin_for_us(10_000);
    for (i, &apic_id) in apic_ids.iter().enumerate() {
        let core = CoreId(i as u16 + 1);
        match start_one(core, apic_id, params, page) {
            Ok(timing) => report.timings.push(timing),
            Err(error) => {
                log::error!("core {core} (APIC id {apic_id}) did not start: {error}");
                report.failed.push(apic_id);
                // Put it back into wait-for-STARTUP so that a late start
                // cannot run on the next core's stack.
                lapic::send_init(apic_id);
            }
        }
    }
    // Everyone who entered must finish coming online.
    let expected = 1 + report.timings.len();
    let deadline = tsc::rdtsc() + tsc::hz() * 5;
    while cpu_local::online_cores() < expected && tsc::rdtsc() < deadline {
        core::hint::spin_loop();
    }
    report.total_cycles = tsc::rdtsc() - start;
    for timing in &mut report.timings {
        let online = ONLINE_AT
            .get(timing.core.index())
            .map_or(0, |t| t.load(Ordering::Acquire));
        timing.online_cycles = online.saturating_sub(start_of(timing));
    }
    unmap_trampoline(page);
    Ok(report)
}

/// TSC at which core `timing.core` was sent STARTUP (kept in entered_cycles' base).
fn start_of(timing: &ApTiming) -> u64 {
    SIPI_AT
        .get(timing.core.index())
        .map_or(0, |t| t.load(Ordering::Relaxed))
}

static SIPI_AT: [AtomicU64; MAX_TIMED] = [const { AtomicU64::new(0) }; MAX_TIMED];

/// Why one application core did not start.
enum StartError {
    Stack(mem::MemoryError),
    NeverEntered,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Stack(error) => write!(f, "no stack for it ({error:?})"),
            StartError::NeverEntered => f.write_str("it never entered the trampoline"),
        }
    }
}

fn start_one(
    core: CoreId,
    apic_id: u32,
    params: *mut TrampolineParams,
    page: u64,
) -> Result<ApTiming, StartError> {
    let name: &'static str = alloc::string::String::leak(format!("ap-{core}"));
    let stack = paging::allocate_stack(AP_STACK_SIZE, name).map_err(StartError::Stack)?;
    let local: *mut CoreLocal = cpu_local::new_core_local(core, apic_id);
    // SAFETY: no AP is using the parameter block: the previous one left the
    // trampoline (ENTERED was incremented) before we got here.
    unsafe {
        (*params).stack = stack.top;
        (*params).entry = ap_entry as *const () as u64;
        (*params).arg = local as u64;
    }
    let entered_before = ENTERED.load(Ordering::Acquire);
    let sipi_at = tsc::rdtsc();
    if let Some(slot) = SIPI_AT.get(core.index()) {
        slot.store(sipi_at, Ordering::Relaxed);
    }
    let vector = (page >> 12) as u8;
    let mut startups = 1;
    lapic::send_startup(apic_id, vector);
    if !wait_entered(entered_before, 200) {
        startups = 2;
        lapic::send_startup(apic_id, vector);
        // Generous: under emulation a core can take a long time to start.
        if !wait_entered(entered_before, 2_000_000) {
            return Err(StartError::NeverEntered);
        }
    }
    Ok(ApTiming {
        core,
        apic_id,
        startups,
        entered_cycles: tsc::rdtsc() - sipi_at,
        online_cycles: 0,
    })
}

fn wait_entered(before: u32, timeout_us: u64) -> bool {
    let deadline = tsc::rdtsc() + tsc::hz() / 1_000_000 * timeout_us;
    while tsc::rdtsc() < deadline {
        if ENTERED.load(Ordering::Acquire) != before {
            return true;
        }
        core::hint::spin_loop();
    }
    ENTERED.load(Ordering::Acquire) != before
}

fn spin_for_us(us: u64) {
    let end = tsc::rdtsc() + tsc::hz() / 1_000_000 * us;
    while tsc::rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// Picks a usable page in [4 KiB, 640 KiB) that can be identity-mapped, and maps it.
fn map_trampoline(regions: &MemoryRegions) -> Result<u64, SmpError> {
    let candidates = regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .flat_map(|r| (r.start.next_multiple_of(4096)..r.end.min(0xA_0000)).step_by(4096))
        .filter(|&p| p >= 0x1000 && p + 4096 <= 0xA_0000);
    for page in candidates {
        if paging::map_identity(page).map_err(SmpError::Memory)? {
            return Ok(page);
        }
    }
    Err(SmpError::NoLowPage)
}

fn unmap_trampoline(page: u64) {
    paging::unmap_identity(page);
}

/// Copies the trampoline to `page` and fills in its parameter block.
///
/// # Safety
/// `page` must be a free, identity-mapped low frame.
unsafe fn install_trampoline(page: u64, phys_offset: u64, cr3: u64) -> *mut TrampolineParams {
    let start = core::ptr::addr_of!(ap_trampoline_start);
    let len = core::ptr::addr_of!(ap_trampoline_end) as usize - start as usize;
    let params_offset = core::ptr::addr_of!(ap_trampoline_params) as usize - start as usize;
    assert!(len <= 4096, "AP trampoline larger than a page");
    let dst = (phys_offset + page) as *mut u8;
    // SAFETY: caller guarantees the page is ours; source is the kernel image.
    unsafe {
        core::ptr::copy_nonoverlapping(start, dst, len);
        let params = dst.add(params_offset).cast::<TrampolineParams>();
        let p = &mut *params;
        let base = page as u32;
        p.protected_target = base + p.protected_offset as u32;
        p.long_target = base + p.long_offset as u32;
        // The GDT pointer's 32-bit base field follows its 16-bit limit.
        dst.add(p.gdt_pointer_offset as usize + 2)
            .cast::<u32>()
            .write_unaligned(base + p.gdt_offset as u32);
        p.cr3 = cr3;
        params
    }
}

/// Where an AP enters the kernel, on its own stack, interrupts disabled.
extern "C" fn ap_entry(local: *mut CoreLocal) -> ! {
    ENTERED.fetch_add(1, Ordering::AcqRel);
    // SAFETY: the bootstrap core allocated this block for this core alone.
    let local = unsafe { &mut *local };
    let id = local.id;
    // SAFETY: first thing on this core; the block is leaked (lives forever).
    unsafe { CoreLocal::install(local) };
    // SAFETY: the bootstrap core's CR4 is valid on an identical core.
    unsafe { x86_64::registers::control::Cr4::write_raw(BSP_CR4.load(Ordering::Relaxed)) };
    if let Err(error) = gdt::init_this_core() {
        panic!("core {id}: cannot allocate interrupt stacks: {error:?}");
    }
    idt::load();
    lapic::init_this_core();
    if let Some(slot) = ONLINE_AT.get(id.index()) {
        slot.store(tsc::rdtsc(), Ordering::Release);
    }
    cpu_local::mark_online();
    ipi::idle_serving_calls()
}
