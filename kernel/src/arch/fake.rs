//! A simulated machine behind the arch interface, for host unit tests of
//! the layers above (the reactor's dispatch and idle decisions, the shell).
//!
//! One host thread plays one core at a time: [`set_core`] says which. The
//! clock only moves when a test advances it ([`advance`]), so timer
//! behaviour is deterministic. Halting never blocks: [`cpu::wait_for_interrupt`]
//! counts the halt, runs the test's hook (standing for whatever interrupt
//! ends the halt) and returns. Doorbells and timer programming are
//! recorded for the test to inspect.

extern crate std;

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::boxed::Box;
use std::sync::Mutex;
use std::vec::Vec;

use super::{CoreId, CoreStats};

/// The most cores the simulation has.
pub const MAX_CORES: usize = 8;

static ONLINE: AtomicUsize = AtomicUsize::new(4);
static STATS: [CoreStats; MAX_CORES] = [const { CoreStats::new() }; MAX_CORES];
static STOPPED: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];
static HALTS: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
/// The armed timer deadline of each core (0: not armed).
static ARMED: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
static CLOCK: AtomicU64 = AtomicU64::new(1);
static RUNG: Mutex<Vec<(CoreId, CoreId)>> = Mutex::new(Vec::new());

std::thread_local! {
    static CURRENT: Cell<u16> = const { Cell::new(0) };
    static MASKED: Cell<bool> = const { Cell::new(false) };
    static ON_WAIT: Cell<Option<Box<dyn FnOnce()>>> = const { Cell::new(None) };
}

/// Sets how many cores are online (at most [`MAX_CORES`]).
pub fn set_online(cores: usize) {
    ONLINE.store(cores.min(MAX_CORES), Ordering::Release);
}

/// Makes this thread play core `core`.
pub fn set_core(core: CoreId) {
    CURRENT.with(|c| c.set(core.0));
}

/// Moves the simulated clock forward by `ns` nanoseconds (one cycle is one ns).
pub fn advance(ns: u64) {
    CLOCK.fetch_add(ns, Ordering::AcqRel);
}

/// Halts of core `core` so far.
pub fn halts(core: CoreId) -> u64 {
    HALTS[core.index()].load(Ordering::Acquire)
}

/// The deadline core `core`'s timer is armed for, if it is.
pub fn armed(core: CoreId) -> Option<u64> {
    match ARMED[core.index()].load(Ordering::Acquire) {
        0 => None,
        deadline => Some(deadline),
    }
}

/// Takes the doorbells rung so far, as (from, to) pairs.
pub fn take_doorbells() -> Vec<(CoreId, CoreId)> {
    core::mem::take(&mut *RUNG.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Runs `hook` in the next halt of the core this thread plays (standing
/// for what happens on other cores while it sleeps).
pub fn on_next_halt(hook: impl FnOnce() + 'static) {
    ON_WAIT.with(|h| h.set(Some(Box::new(hook))));
}

/// `arch::cpu` of the simulation.
pub mod cpu {
    use super::*;

    pub fn core_id() -> CoreId {
        CoreId(CURRENT.with(Cell::get))
    }

    pub fn online_cores() -> usize {
        ONLINE.load(Ordering::Acquire)
    }

    pub fn core_count() -> usize {
        online_cores()
    }

    pub fn is_online(core: CoreId) -> bool {
        core.index() < online_cores()
    }

    pub fn stats(core: CoreId) -> Option<&'static CoreStats> {
        STATS.get(core.index()).filter(|_| is_online(core))
    }

    pub fn apic_id(core: CoreId) -> Option<u32> {
        is_online(core).then_some(u32::from(core.0))
    }

    pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
        let was = MASKED.with(|m| m.replace(true));
        let result = f();
        MASKED.with(|m| m.set(was));
        result
    }

    pub fn disable_interrupts() {
        MASKED.with(|m| m.set(true));
    }

    pub fn enable_interrupts() {
        MASKED.with(|m| m.set(false));
    }

    /// Counts a halt, runs the pending [`on_next_halt`] hook, and returns
    /// (with interrupts masked, like the machine).
    pub fn wait_for_interrupt() {
        HALTS[core_id().index()].fetch_add(1, Ordering::AcqRel);
        if let Some(hook) = ON_WAIT.with(Cell::take) {
            let me = core_id();
            hook();
            set_core(me);
        }
        disable_interrupts();
    }

    pub fn halt_forever() -> ! {
        panic!("core {} halted forever", core_id())
    }

    pub fn mark_stopped() {
        STOPPED[core_id().index()].store(true, Ordering::Release);
    }

    pub fn is_stopped(core: CoreId) -> bool {
        STOPPED
            .get(core.index())
            .is_some_and(|s| s.load(Ordering::Acquire))
    }

    pub fn stop_other_cores() {}
}

/// `arch::doorbell` of the simulation: recorded, see [`take_doorbells`].
pub mod doorbell {
    use super::*;

    pub fn ring(core: CoreId) -> bool {
        let me = cpu::core_id();
        STATS[me.index()].doorbells.fetch_add(1, Ordering::Relaxed);
        RUNG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((me, core));
        cpu::is_online(core)
    }
}

/// `arch::timer` of the simulation: recorded, see [`armed`].
pub mod timer {
    use super::*;

    pub fn arm(deadline: u64) {
        ARMED[cpu::core_id().index()].store(deadline.max(1), Ordering::Release);
    }

    pub fn cancel() {
        ARMED[cpu::core_id().index()].store(0, Ordering::Release);
    }
}

/// `arch::clock` of the simulation: 1 GHz, moved by [`advance`].
pub mod clock {
    use super::*;

    pub fn cycles() -> u64 {
        CLOCK.load(Ordering::Acquire)
    }

    pub fn hz() -> u64 {
        1_000_000_000
    }
}

/// `arch::call` of the simulation: there are no other threads of control.
pub mod call {
    use super::CoreId;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CallError {
        NoSuchCore(CoreId),
        Timeout(CoreId),
    }

    pub struct Pending;

    impl Pending {
        pub fn wait(self, _timeout_ms: u64) -> Result<u64, CallError> {
            Ok(0)
        }
    }

    pub fn post(
        target: CoreId,
        _func: fn(usize) -> u64,
        _arg: usize,
        _timeout_ms: u64,
    ) -> Result<Pending, CallError> {
        Err(CallError::NoSuchCore(target))
    }

    pub fn run_on(
        target: CoreId,
        func: fn(usize) -> u64,
        arg: usize,
        _timeout_ms: u64,
    ) -> Result<u64, CallError> {
        if target == super::cpu::core_id() {
            Ok(func(arg))
        } else {
            Err(CallError::NoSuchCore(target))
        }
    }

    pub fn serve_pending() -> bool {
        false
    }
}

/// `arch::serial` of the simulation: output is kept, input is empty.
pub mod serial {
    use super::*;

    static OUTPUT: Mutex<std::string::String> = Mutex::new(std::string::String::new());

    pub struct Uart;

    impl Uart {
        pub fn com1() -> Uart {
            Uart
        }

        pub fn try_receive(&mut self) -> Option<u8> {
            None
        }

        pub fn set_loopback(&mut self, _on: bool) {}
    }

    impl core::fmt::Write for Uart {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            OUTPUT.lock().unwrap_or_else(|e| e.into_inner()).push_str(s);
            Ok(())
        }
    }
}

/// `arch::io` of the simulation: no devices (reads see a floating bus).
pub mod io {
    /// # Safety
    /// None needed in the simulation; the signature matches the machine's.
    pub unsafe fn read_u8(_port: u16) -> u8 {
        0xFF
    }
    /// # Safety
    /// As [`read_u8`].
    pub unsafe fn read_u16(_port: u16) -> u16 {
        0xFFFF
    }
    /// # Safety
    /// As [`read_u8`].
    pub unsafe fn read_u32(_port: u16) -> u32 {
        0xFFFF_FFFF
    }
    /// # Safety
    /// As [`read_u8`].
    pub unsafe fn write_u8(_port: u16, _value: u8) {}
    /// # Safety
    /// As [`read_u8`].
    pub unsafe fn write_u16(_port: u16, _value: u16) {}
    /// # Safety
    /// As [`read_u8`].
    pub unsafe fn write_u32(_port: u16, _value: u32) {}
}

/// `arch::pci` of the simulation: no devices (every read sees all ones).
pub mod pci {
    use pci_types::{ConfigRegionAccess, PciAddress};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mechanism {
        Ecam,
        PortIo,
    }

    pub fn mechanism() -> Mechanism {
        Mechanism::PortIo
    }

    #[derive(Clone, Copy, Debug, Default)]
    pub struct ConfigSpace;

    #[derive(Clone, Copy, Debug, Default)]
    pub struct PortConfigSpace;

    impl ConfigRegionAccess for ConfigSpace {
        unsafe fn read(&self, _: PciAddress, _: u16) -> u32 {
            u32::MAX
        }
        unsafe fn write(&self, _: PciAddress, _: u16, _: u32) {}
    }

    impl ConfigRegionAccess for PortConfigSpace {
        unsafe fn read(&self, _: PciAddress, _: u16) -> u32 {
            u32::MAX
        }
        unsafe fn write(&self, _: PciAddress, _: u16, _: u32) {}
    }
}

/// `arch::irq` of the simulation: no IOAPIC; message-signalled vectors
/// from a pool per core like the machine's, delivered by a test with
/// [`deliver`](irq::deliver).
pub mod irq {
    use super::*;
    use crate::arch::irq::{MsiError, MsiMessage};
    use crate::arch::vectors::VectorPool;

    /// The simulation's device vectors (the machine's range).
    const FIRST: u8 = 0x40;
    const COUNT: u8 = 0xA0;

    type Handlers = Vec<(u8, fn(usize), usize)>;

    static POOLS: Mutex<[Option<VectorPool>; MAX_CORES]> = Mutex::new([const { None }; MAX_CORES]);
    static HANDLERS: Mutex<[Handlers; MAX_CORES]> = Mutex::new([const { Vec::new() }; MAX_CORES]);

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RouteError {
        NoIoApic,
    }

    pub fn route_isa(_irq: u8, _core: CoreId, _handler: fn()) -> Result<(), RouteError> {
        Err(RouteError::NoIoApic)
    }

    pub fn allocate_vector(
        core: CoreId,
        handler: fn(usize),
        context: usize,
    ) -> Result<u8, MsiError> {
        if !cpu::is_online(core) {
            return Err(MsiError::NoSuchCore(core));
        }
        let vector = POOLS.lock().unwrap_or_else(|e| e.into_inner())[core.index()]
            .get_or_insert_with(|| VectorPool::new(FIRST, COUNT))
            .allocate()
            .ok_or(MsiError::NoFreeVector(core))?;
        HANDLERS.lock().unwrap_or_else(|e| e.into_inner())[core.index()]
            .push((vector, handler, context));
        Ok(vector)
    }

    pub fn free_vector(core: CoreId, vector: u8) -> Result<(), MsiError> {
        let freed = POOLS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(core.index())
            .and_then(Option::as_mut)
            .is_some_and(|pool| pool.free(vector));
        HANDLERS.lock().unwrap_or_else(|e| e.into_inner())[core.index()]
            .retain(|(v, _, _)| *v != vector);
        freed
            .then_some(())
            .ok_or(MsiError::NotAllocated(core, vector))
    }

    pub fn msi_message(core: CoreId, vector: u8) -> Result<MsiMessage, MsiError> {
        match cpu::is_online(core) {
            true => Ok(MsiMessage {
                address: 0xFEE0_0000 | (u64::from(core.0) << 12),
                data: u32::from(vector),
            }),
            false => Err(MsiError::NoSuchCore(core)),
        }
    }

    pub fn msi_target(message: MsiMessage) -> Option<CoreId> {
        let core = CoreId(((message.address >> 12) & 0xFF) as u16);
        cpu::is_online(core).then_some(core)
    }

    /// Raises `vector` on `core`: runs its handler as that core (with
    /// interrupts masked, like the machine). False if it has none.
    pub fn deliver(core: CoreId, vector: u8) -> bool {
        let found = HANDLERS.lock().unwrap_or_else(|e| e.into_inner())[core.index()]
            .iter()
            .find(|(v, _, _)| *v == vector)
            .map(|&(_, handler, context)| (handler, context));
        let Some((handler, context)) = found else {
            return false;
        };
        let me = cpu::core_id();
        set_core(core);
        cpu::without_interrupts(|| handler(context));
        set_core(me);
        true
    }
}

/// `arch::mmio` of the simulation: there is no device memory to map.
pub mod mmio {
    use crate::mem::MemoryError;

    #[derive(Clone, Copy, Debug)]
    pub struct MmioRegion {
        pub base: u64,
        pub len: u64,
    }

    pub fn map(_phys: u64, _len: u64) -> Result<MmioRegion, MemoryError> {
        Err(MemoryError::NotInitialised)
    }
}

/// `arch::power` of the simulation.
pub mod power {
    use crate::arch::power::ExitCode;

    pub fn exit_qemu(code: ExitCode) -> ! {
        panic!("exit requested: {code:?}")
    }

    pub fn power_off() -> ! {
        panic!("power-off requested")
    }

    pub fn reboot() -> ! {
        panic!("reboot requested")
    }
}

/// `arch::trap` of the simulation: no exceptions happen.
pub mod trap {
    use core::sync::atomic::{AtomicU64, Ordering};

    static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

    #[derive(Clone, Debug)]
    pub struct ExceptionReport;

    impl core::fmt::Display for ExceptionReport {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("simulated exception")
        }
    }

    pub fn set_fatal_handler(_handler: fn(&ExceptionReport) -> !) {}

    pub fn breakpoint() {
        BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    }

    pub fn breakpoint_count() -> u64 {
        BREAKPOINTS.load(Ordering::Relaxed)
    }
}

/// `arch::user` of the simulation: frames are host pages (their "physical
/// address" is their host address), a page table is a map, and user mode
/// is a script the test sets ([`user::script`]). Frame counts are per host
/// thread, so tests running in parallel do not see each other's frames.
pub mod user {
    use super::*;
    use crate::arch::user::{Access, Trap};
    use crate::mem::{MemoryError, PAGE_SIZE, PhysAddr};
    use std::cell::RefCell;
    use std::collections::{BTreeMap, VecDeque};

    #[repr(C, align(4096))]
    struct Frame([u8; PAGE_SIZE as usize]);

    type Pages = RefCell<BTreeMap<u64, (PhysAddr, Access)>>;

    /// One step of a simulated user thread: changes its registers, says
    /// how it came back.
    pub type Step = Box<dyn FnOnce(&mut UserContext) -> Trap>;

    std::thread_local! {
        static LIVE: Cell<u64> = const { Cell::new(0) };
        static ACTIVE: Cell<*const Pages> = const { Cell::new(core::ptr::null()) };
        static SCRIPT: RefCell<VecDeque<Step>> = RefCell::new(VecDeque::new());
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Protection {
        pub smep: bool,
        pub smap: bool,
    }

    pub fn protection() -> Protection {
        Protection {
            smep: false,
            smap: false,
        }
    }

    pub fn fault_names(_vector: u8) -> (&'static str, &'static str) {
        ("#SIM", "simulated fault")
    }

    pub fn alloc_frame() -> Result<PhysAddr, MemoryError> {
        LIVE.with(|l| l.set(l.get() + 1));
        let frame = Box::new(Frame([0; PAGE_SIZE as usize]));
        Ok(PhysAddr(Box::into_raw(frame) as u64))
    }

    /// # Safety
    /// `frame` must come from [`alloc_frame`] and be freed once.
    pub unsafe fn free_frame(frame: PhysAddr) {
        LIVE.with(|l| l.set(l.get() - 1));
        // SAFETY: made by `alloc_frame` from a box, given back once.
        drop(unsafe { Box::from_raw(frame.0 as *mut Frame) });
    }

    pub fn write_frame(frame: PhysAddr, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= PAGE_SIZE as usize);
        // SAFETY: a live frame of this simulation, in bounds.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (frame.0 as *mut u8).add(offset),
                bytes.len(),
            )
        };
    }

    /// The host pointer to frame `frame`'s first byte (its "physical
    /// address" is its host address).
    pub fn frame_ptr(frame: PhysAddr) -> *mut u8 {
        frame.0 as *mut u8
    }

    /// Frames allocated and not freed by this host thread.
    pub fn frames_in_use() -> u64 {
        LIVE.with(Cell::get)
    }

    pub struct Table {
        pages: Box<Pages>,
    }

    impl Table {
        pub fn new() -> Result<Table, MemoryError> {
            Ok(Table {
                pages: Box::new(RefCell::new(BTreeMap::new())),
            })
        }

        pub fn map(
            &mut self,
            page: u64,
            frame: PhysAddr,
            access: Access,
        ) -> Result<(), MemoryError> {
            if page >= 1 << 47 || !page.is_multiple_of(PAGE_SIZE) {
                return Err(MemoryError::MapFailed);
            }
            let mut pages = self.pages.borrow_mut();
            if pages.contains_key(&page) {
                return Err(MemoryError::MapFailed);
            }
            pages.insert(page, (frame, access));
            Ok(())
        }

        pub fn unmap(&mut self, page: u64) -> Option<PhysAddr> {
            self.pages.borrow_mut().remove(&page).map(|(f, _)| f)
        }

        pub fn lookup(&mut self, addr: u64) -> Option<(PhysAddr, Access)> {
            self.pages.borrow().get(&(addr & !(PAGE_SIZE - 1))).copied()
        }

        pub fn activate(&self) {
            ACTIVE.with(|a| a.set(&*self.pages));
        }

        pub fn is_active(&self) -> bool {
            ACTIVE.with(|a| core::ptr::eq(a.get(), &*self.pages))
        }
    }

    impl Drop for Table {
        fn drop(&mut self) {
            if self.is_active() {
                ACTIVE.with(|a| a.set(core::ptr::null()));
            }
        }
    }

    /// The host pointer behind user address `addr` of the active table.
    fn resolve(addr: u64) -> Option<*mut u8> {
        let pages = ACTIVE.with(Cell::get);
        // SAFETY: ACTIVE points into a live table (cleared when it drops).
        let pages = unsafe { pages.as_ref()? };
        let (frame, _) = *pages.borrow().get(&(addr & !(PAGE_SIZE - 1)))?;
        Some((frame.0 + addr % PAGE_SIZE) as *mut u8)
    }

    /// # Safety
    /// None in the simulation; the signature matches the machine's.
    pub unsafe fn copy_from_user(dst: &mut [u8], src: u64) -> usize {
        for (i, byte) in dst.iter_mut().enumerate() {
            match resolve(src + i as u64) {
                // SAFETY: a byte of a live frame.
                Some(p) => *byte = unsafe { p.read() },
                None => return dst.len() - i,
            }
        }
        0
    }

    /// # Safety
    /// None in the simulation; the signature matches the machine's.
    pub unsafe fn copy_to_user(dst: u64, src: &[u8]) -> usize {
        for (i, byte) in src.iter().enumerate() {
            match resolve(dst + i as u64) {
                // SAFETY: a byte of a live frame.
                Some(p) => unsafe { p.write(*byte) },
                None => return src.len() - i,
            }
        }
        0
    }

    /// A user thread's registers in the simulation.
    pub struct UserContext {
        pub rip: u64,
        pub rsp: u64,
        /// The syscall number and its arguments.
        pub call: (u64, [u64; 6]),
        pub result: u64,
    }

    impl UserContext {
        pub fn new(entry: u64, stack_top: u64) -> UserContext {
            UserContext {
                rip: entry,
                rsp: stack_top,
                call: (0, [0; 6]),
                result: 0,
            }
        }

        pub fn syscall(&self) -> (u64, [u64; 6]) {
            self.call
        }

        pub fn set_result(&mut self, value: u64) {
            self.result = value;
        }

        pub fn rip(&self) -> u64 {
            self.rip
        }

        pub fn rsp(&self) -> u64 {
            self.rsp
        }
    }

    /// Queues the steps user mode takes on this host thread.
    pub fn script(steps: impl IntoIterator<Item = Step>) {
        SCRIPT.with(|s| s.borrow_mut().extend(steps));
    }

    /// Nothing to save: the fake has no FPU.
    pub fn save_fpu(_context: &mut UserContext) {}

    /// Runs the next scripted step; with none left, an invalid opcode.
    pub fn enter(context: &mut UserContext) -> Trap {
        match SCRIPT.with(|s| s.borrow_mut().pop_front()) {
            Some(step) => step(context),
            None => Trap::Fault(crate::arch::user::Fault {
                vector: 6,
                error_code: 0,
                rip: context.rip,
                address: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicUsize, Ordering};

    use super::{CoreId, cpu, irq, set_core, set_online};
    use crate::arch::irq::MsiError;

    static RAN_ON: AtomicUsize = AtomicUsize::new(usize::MAX);

    fn handler(context: usize) {
        RAN_ON.store(cpu::core_id().index() * 100 + context, Ordering::SeqCst);
    }

    /// A vector is per core: the same number on two cores names two
    /// handlers, each run as its own core; a freed vector raises nothing.
    #[test]
    fn message_vectors_are_per_core() {
        set_online(8);
        set_core(CoreId(0));
        let a = irq::allocate_vector(CoreId(2), handler, 7).unwrap();
        let b = irq::allocate_vector(CoreId(3), handler, 9).unwrap();
        assert!(irq::deliver(CoreId(2), a));
        assert_eq!(RAN_ON.load(Ordering::SeqCst), 207);
        assert!(irq::deliver(CoreId(3), b));
        assert_eq!(RAN_ON.load(Ordering::SeqCst), 309);
        assert_eq!(cpu::core_id(), CoreId(0));
        let message = irq::msi_message(CoreId(3), b).unwrap();
        assert_eq!(irq::msi_target(message), Some(CoreId(3)));
        irq::free_vector(CoreId(2), a).unwrap();
        assert!(!irq::deliver(CoreId(2), a));
        assert_eq!(
            irq::free_vector(CoreId(2), a),
            Err(MsiError::NotAllocated(CoreId(2), a))
        );
        assert_eq!(
            irq::allocate_vector(CoreId(9), handler, 0),
            Err(MsiError::NoSuchCore(CoreId(9)))
        );
        irq::free_vector(CoreId(3), b).unwrap();
    }
}
