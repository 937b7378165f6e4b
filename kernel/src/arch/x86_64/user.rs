//! Ring 3: entering user mode and coming back, on `SYSCALL`/`SYSRET` and
//! on interrupts and exceptions.
//!
//! User mode is entered like a function call that returns a reason (the
//! shape of Asterinas' `UserMode::execute`): [`enter`] saves the kernel's
//! callee-saved registers and stack pointer in this core's [`PerCore`],
//! loads the user registers from a [`UserContext`] and drops to ring 3.
//! Whatever brings the CPU back — a `SYSCALL`, an interrupt, an exception —
//! lands on this core's entry stack (`TSS.RSP0`, or loaded by the `SYSCALL`
//! stub), where the entry code saves every user register into the same
//! context and "returns" from [`enter`] on the kernel stack it left. The
//! reactor task that called it then handles the syscall, yields or kills
//! the process: kernel work never runs on a user thread's behalf in
//! interrupt context.
//!
//! Rules kept here:
//! - `swapgs` on every entry from and exit to ring 3; in user mode the GS
//!   base is the user's (0) and this core's block waits in `KERNEL_GS_BASE`.
//! - `SYSRET` only when the last entry was a `SYSCALL` (the user expects
//!   `rcx`/`r11` clobbered) and the return address is in the lower half: a
//!   non-canonical `rcx` would make `SYSRET` fault in ring 0 on a user
//!   stack. Everything else returns with `IRETQ`.
//! - Every general-purpose register the user sees comes from its context
//!   (its own values, the syscall result in `rax`, or zero at start): no
//!   kernel value leaks. The user's `RFLAGS` are sanitised (IF on, IOPL 0).
//! - FPU/SSE state is per thread. The kernel itself is built without SSE
//!   (soft-float target), so it never touches these registers: a thread's
//!   state can stay in them across its syscalls. [`enter`] restores
//!   (`FXRSTOR64`) a thread's state unless this core's registers already
//!   hold it (each context has an id, never reused, and the core records
//!   whose state it holds); [`save_fpu`] saves it (`FXSAVE64`) and must run
//!   before anything else may enter ring 3 on this core — before the
//!   thread's task yields to the reactor. A thread whose state was not
//!   saved loses its own changes, never sees another's: a context whose id
//!   the core does not hold is always restored.
//! - SMEP and SMAP are turned on where CPUID offers them; the entry path
//!   clears `RFLAGS.AC` (a user may set it) before running any handler.

use core::arch::naked_asm;
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use x86_64::VirtAddr;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;

use super::cpu_local::{CoreLocal, this_core};
use super::trap::TrapFrame;
use crate::arch::user::{Fault, Trap};

/// The `vector` a `SYSCALL` entry records in the frame (above every real vector).
pub const SYSCALL_VECTOR: u64 = 0x100;
/// User code and data selectors (see `gdt.rs`; `SYSRET` needs data right below code).
const USER_CODE: u64 = 0x23;
const USER_DATA: u64 = 0x1b;
/// The `RFLAGS` bits a user may set: arithmetic flags, DF, AC and ID.
const USER_FLAGS: u64 = 0x0000_0000_0024_0CD5;
/// Always set in user mode: IF and the reserved bit 1.
const USER_FLAGS_ON: u64 = 0x202;
/// General-purpose registers plus vector and error code, then the
/// interrupt frame: the words of a [`TrapFrame`].
const FRAME_WORDS: usize = 22;

/// What the entry and exit paths keep per core, at fixed offsets in
/// [`CoreLocal`] (reached as `gs:[...]` from assembly).
#[repr(C)]
pub struct PerCore {
    /// The user stack pointer, between `SYSCALL` and the push of the frame.
    scratch_rsp: AtomicU64,
    /// Top of this core's entry stack (also `TSS.RSP0`).
    entry_stack_top: AtomicU64,
    /// The kernel stack pointer [`enter`] left, with the callee-saved
    /// registers above it.
    kernel_rsp: AtomicU64,
    /// Where the exit path saves the user registers.
    context: AtomicPtr<TrapFrame>,
    /// CR2 of the last user page fault (read before anything can fault again).
    fault_address: AtomicU64,
    /// The id of the context whose x87/SSE state the registers hold (0: none).
    fpu_owner: AtomicU64,
}

impl PerCore {
    pub const fn new() -> PerCore {
        PerCore {
            scratch_rsp: AtomicU64::new(0),
            entry_stack_top: AtomicU64::new(0),
            kernel_rsp: AtomicU64::new(0),
            context: AtomicPtr::new(core::ptr::null_mut()),
            fault_address: AtomicU64::new(0),
            fpu_owner: AtomicU64::new(0),
        }
    }
}

const GS_SCRATCH: usize = offset_of!(CoreLocal, user) + offset_of!(PerCore, scratch_rsp);
const GS_STACK: usize = offset_of!(CoreLocal, user) + offset_of!(PerCore, entry_stack_top);
const GS_KERNEL_RSP: usize = offset_of!(CoreLocal, user) + offset_of!(PerCore, kernel_rsp);
const GS_CONTEXT: usize = offset_of!(CoreLocal, user) + offset_of!(PerCore, context);
const VECTOR_OFFSET: usize = offset_of!(TrapFrame, vector);
const RIP_OFFSET: usize = offset_of!(TrapFrame, rip);

static SMEP: AtomicBool = AtomicBool::new(false);
static SMAP: AtomicBool = AtomicBool::new(false);

/// What the CPU protects the kernel from user pages with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    /// Supervisor-mode execution prevention: the kernel cannot run user code.
    pub smep: bool,
    /// Supervisor-mode access prevention: the kernel reaches user memory
    /// only inside the checked copies.
    pub smap: bool,
}

/// Whether SMEP and SMAP are on (the same on every core).
pub fn protection() -> Protection {
    Protection {
        smep: SMEP.load(Ordering::Relaxed),
        smap: SMAP.load(Ordering::Relaxed),
    }
}

/// Whether SMAP is on (the copies bracket their access with `stac`/`clac`).
pub(super) fn smap() -> bool {
    SMAP.load(Ordering::Relaxed)
}

/// Sets this core up for ring 3: the entry stack, `SYSCALL` (STAR, LSTAR,
/// SFMASK, EFER.SCE), SSE for user threads, SMEP and SMAP where offered.
/// Called once per core, after its GDT and TSS are loaded.
pub fn init_this_core(entry_stack_top: u64) {
    this_core()
        .user
        .entry_stack_top
        .store(entry_stack_top, Ordering::Relaxed);
    let selectors = Star::write(
        SegmentSelector(USER_CODE as u16),
        SegmentSelector(USER_DATA as u16),
        super::gdt::KERNEL_CODE_SELECTOR,
        super::gdt::KERNEL_DATA_SELECTOR,
    );
    if let Err(error) = selectors {
        panic!("SYSCALL selectors rejected: {error}");
    }
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    // Cleared on SYSCALL: interrupts stay off until the frame is saved, and
    // the kernel never runs with the user's TF, DF, AC, NT or IOPL.
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::NESTED_TASK
            | RFlags::IOPL_HIGH
            | RFlags::IOPL_LOW,
    );
    // SAFETY: enabling SYSCALL/SYSRET, whose MSRs were just written.
    unsafe { Efer::update(|flags| flags.insert(EferFlags::SYSTEM_CALL_EXTENSIONS)) };
    // CPUID leaf 7, subleaf 0: EBX bit 7 is SMEP, bit 20 SMAP.
    let features = core::arch::x86_64::__cpuid_count(7, 0).ebx;
    let smep = features & (1 << 7) != 0;
    let smap = features & (1 << 20) != 0;
    let mut cr4 = Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE;
    if smep {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if smap {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: the kernel runs no code from user pages and reaches user
    // memory only in `usercopy`, which lifts SMAP for its one instruction;
    // OSFXSR lets user threads use SSE, whose state is saved per thread.
    unsafe { Cr4::update(|flags| flags.insert(cr4)) };
    SMEP.store(smep, Ordering::Relaxed);
    SMAP.store(smap, Ordering::Relaxed);
}

/// The FXSAVE area of one thread's x87/SSE state.
#[derive(Clone)]
#[repr(C, align(16))]
struct FpuState([u8; 512]);

impl FpuState {
    /// The state after `FNINIT` with default MXCSR: all exceptions masked.
    fn initial() -> FpuState {
        let mut area = [0u8; 512];
        area[0..2].copy_from_slice(&0x037Fu16.to_le_bytes()); // FCW
        area[24..28].copy_from_slice(&0x1F80u32.to_le_bytes()); // MXCSR
        area[28..32].copy_from_slice(&0xFFFFu32.to_le_bytes()); // MXCSR_MASK (ignored by FXRSTOR)
        FpuState(area)
    }
}

/// The next context's id (0 means none, in [`PerCore::fpu_owner`]).
static NEXT_FPU_ID: AtomicU64 = AtomicU64::new(1);

/// One user thread's registers while it is not running.
#[repr(C)]
pub struct UserContext {
    regs: TrapFrame,
    fpu: FpuState,
    /// Names this context's x87/SSE state in [`PerCore::fpu_owner`].
    fpu_id: u64,
}

impl UserContext {
    /// A thread that starts at `entry` with stack pointer `stack_top`,
    /// every other register zero.
    pub fn new(entry: u64, stack_top: u64) -> UserContext {
        UserContext {
            regs: TrapFrame {
                r15: 0,
                r14: 0,
                r13: 0,
                r12: 0,
                r11: 0,
                r10: 0,
                r9: 0,
                r8: 0,
                rbp: 0,
                rdi: 0,
                rsi: 0,
                rdx: 0,
                rcx: 0,
                rbx: 0,
                rax: 0,
                vector: 0,
                error_code: 0,
                rip: entry,
                cs: USER_CODE,
                rflags: USER_FLAGS_ON,
                rsp: stack_top,
                ss: USER_DATA,
            },
            fpu: FpuState::initial(),
            fpu_id: NEXT_FPU_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The syscall number (`rax`) and arguments (`rdi, rsi, rdx, r10, r8, r9`).
    pub fn syscall(&self) -> (u64, [u64; 6]) {
        let r = &self.regs;
        (r.rax, [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9])
    }

    /// Sets the value the interrupted syscall returns (`rax`).
    pub fn set_result(&mut self, value: u64) {
        self.regs.rax = value;
    }

    /// Where the thread resumes.
    pub fn rip(&self) -> u64 {
        self.regs.rip
    }

    pub fn rsp(&self) -> u64 {
        self.regs.rsp
    }
}

/// Runs the thread of `context` in ring 3 until it traps back, and says
/// why. The address space it runs in must be active. Returns with
/// interrupts in the state it found them, and the thread's x87/SSE state
/// still in the registers: [`save_fpu`] it before another thread may run
/// on this core.
pub fn enter(context: &mut UserContext) -> Trap {
    let regs = &mut context.regs;
    regs.cs = USER_CODE;
    regs.ss = USER_DATA;
    regs.rflags = (regs.rflags & USER_FLAGS) | USER_FLAGS_ON;
    let enabled = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::disable();
    let user = &this_core().user;
    if user.fpu_owner.load(Ordering::Relaxed) != context.fpu_id {
        // SAFETY: the area is 16-byte aligned and holds a state FXSAVE
        // wrote or the valid initial state.
        unsafe { core::arch::x86_64::_fxrstor64(context.fpu.0.as_ptr()) };
        user.fpu_owner.store(context.fpu_id, Ordering::Relaxed);
    }
    // SAFETY: interrupts are off until the CPU is in ring 3; the context
    // lives (borrowed mutably here) until `enter_user` returns, which is
    // when the exit path has finished writing it.
    unsafe { enter_user(&raw mut context.regs) };
    let fault_address = this_core().user.fault_address.load(Ordering::Relaxed);
    if enabled {
        x86_64::instructions::interrupts::enable();
    }
    let regs = &context.regs;
    match regs.vector {
        SYSCALL_VECTOR => Trap::Syscall,
        vector @ 0..32 => Trap::Fault(Fault {
            vector: vector as u8,
            error_code: regs.error_code,
            rip: regs.rip,
            address: (vector == 14).then_some(fault_address),
        }),
        _ => Trap::Interrupt,
    }
}

/// Saves the thread's x87/SSE state into its context if this core's
/// registers hold it, so that another thread may run here next.
pub fn save_fpu(context: &mut UserContext) {
    let user = &this_core().user;
    if user.fpu_owner.load(Ordering::Relaxed) == context.fpu_id {
        // SAFETY: the area is 16-byte aligned; the registers hold this
        // thread's state (the kernel never touches them, see the module doc).
        unsafe { core::arch::x86_64::_fxsave64(context.fpu.0.as_mut_ptr()) };
        user.fpu_owner.store(0, Ordering::Relaxed);
    }
}

/// Called by `trap_common` for a trap taken in ring 3, on the entry stack,
/// after `swapgs`: runs the interrupt's handler (an exception is the
/// process's problem, decided after the return to the kernel).
#[unsafe(no_mangle)]
extern "C" fn user_trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector == super::exception::vector::NMI && super::stopping() {
        super::cpu::mark_stopped();
        super::cpu::halt_forever();
    }
    if vector == super::exception::vector::PAGE_FAULT {
        let cr2 = x86_64::registers::control::Cr2::read_raw();
        this_core().user.fault_address.store(cr2, Ordering::Relaxed);
    }
    if vector >= 32 {
        super::trap::dispatch_interrupt(frame);
    }
}

/// Drops to ring 3 with the registers at `regs`; "returns" when
/// [`user_exit`] switches back to the stack saved here.
///
/// # Safety
/// Interrupts must be off; `regs` must stay valid until the return and
/// hold user selectors and sanitised flags.
#[unsafe(naked)]
unsafe extern "sysv64" fn enter_user(regs: *mut TrapFrame) {
    naked_asm!(
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov gs:[{kernel_rsp}], rsp",
        "mov gs:[{context}], rdi",
        // SYSRET only after a SYSCALL, to a lower-half address.
        "cmp qword ptr [rdi + {vector}], {syscall}",
        "jne 2f",
        "mov rax, [rdi + {rip}]",
        "shr rax, 47",
        "jnz 2f",
        "mov rsp, rdi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "add rsp, 8", // r11: the flags, below
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rbp",
        "pop rdi",
        "pop rsi",
        "pop rdx",
        "add rsp, 8", // rcx: the return address, below
        "pop rbx",
        "pop rax",
        "add rsp, 16", // vector, error code
        "mov rcx, [rsp]",
        "mov r11, [rsp + 16]",
        "mov rsp, [rsp + 24]",
        "swapgs",
        "sysretq",
        "2:",
        "mov rsp, rdi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop r11",
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rbp",
        "pop rdi",
        "pop rsi",
        "pop rdx",
        "pop rcx",
        "pop rbx",
        "pop rax",
        "add rsp, 16",
        "swapgs",
        "iretq",
        kernel_rsp = const GS_KERNEL_RSP,
        context = const GS_CONTEXT,
        vector = const VECTOR_OFFSET,
        rip = const RIP_OFFSET,
        syscall = const SYSCALL_VECTOR,
    )
}

/// The `SYSCALL` entry (LSTAR): interrupts are off (SFMASK). Builds a
/// [`TrapFrame`] on this core's entry stack, as an interrupt from ring 3
/// would, and leaves through [`user_exit`].
#[unsafe(naked)]
extern "C" fn syscall_entry() {
    naked_asm!(
        "swapgs",
        "mov gs:[{scratch}], rsp",
        "mov rsp, gs:[{stack}]",
        "push {user_data}",
        "push qword ptr gs:[{scratch}]",
        "push r11",
        "push {user_code}",
        "push rcx",
        "push 0",
        "push {syscall}",
        "push rax",
        "push rbx",
        "push rcx",
        "push rdx",
        "push rsi",
        "push rdi",
        "push rbp",
        "push r8",
        "push r9",
        "push r10",
        "push r11",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "jmp {exit}",
        scratch = const GS_SCRATCH,
        stack = const GS_STACK,
        user_data = const USER_DATA,
        user_code = const USER_CODE,
        syscall = const SYSCALL_VECTOR,
        exit = sym user_exit,
    )
}

/// The way back from ring 3 (the `SYSCALL` entry and `trap_common` jump
/// here with a full frame on the stack and the kernel's GS): copies the
/// frame into the context [`enter_user`] named and returns from it.
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn user_exit() {
    naked_asm!(
        "cld",
        "mov rdi, gs:[{context}]",
        "mov rsi, rsp",
        "mov ecx, {words}",
        "rep movsq",
        "mov rsp, gs:[{kernel_rsp}]",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "ret",
        context = const GS_CONTEXT,
        words = const FRAME_WORDS,
        kernel_rsp = const GS_KERNEL_RSP,
    )
}
