//! The one instruction that touches user memory: a `rep movsb` whose page
//! fault is not fatal. The exception handler sees a fault at
//! [`COPY_INSTRUCTION`] and resumes at the fixup, which returns the bytes
//! left (the model is Linux's exception table, and Hubris' `umem.rs` /
//! Redox's `usercopy.rs` for the checks around it, which `process` makes
//! before calling here). With SMAP on, access to user pages is allowed for
//! the length of the copy only (`stac` ... `clac`).

core::arch::global_asm!(
    ".section .text.usercopy, \"ax\"",
    ".global percore_usercopy",
    ".global percore_usercopy_insn",
    ".global percore_usercopy_fixup",
    // rdi = destination, rsi = source, rdx = length; returns bytes not copied.
    "percore_usercopy:",
    "mov rcx, rdx",
    "percore_usercopy_insn:",
    "rep movsb",
    "xor eax, eax",
    "ret",
    "percore_usercopy_fixup:",
    "mov rax, rcx",
    "ret",
);

unsafe extern "sysv64" {
    fn percore_usercopy(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static percore_usercopy_insn: u8;
    static percore_usercopy_fixup: u8;
}

/// Where a fault at `rip` resumes, if `rip` is the copy instruction.
pub(super) fn fixup(rip: u64) -> Option<u64> {
    // Only the addresses of the extern statics are taken, never their values.
    let insn = core::ptr::addr_of!(percore_usercopy_insn) as u64;
    (rip == insn).then_some(core::ptr::addr_of!(percore_usercopy_fixup) as u64)
}

/// Copies `len` bytes from `src` to `dst`; a page fault ends the copy.
/// Returns the bytes not copied (0: all of them).
///
/// # Safety
/// The kernel side must be valid for `len` bytes; the user side must lie
/// in the user half (the caller checks: a kernel address there would be
/// copied, not refused).
unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) -> usize {
    let smap = super::user::smap();
    if smap {
        // SAFETY: `stac` exists where SMAP does; it only lifts SMAP.
        unsafe { core::arch::asm!("stac", options(nomem, nostack)) };
    }
    // SAFETY: forwarded to the caller; a fault inside is fixed up.
    let left = unsafe { percore_usercopy(dst, src, len) };
    if smap {
        // SAFETY: puts SMAP back.
        unsafe { core::arch::asm!("clac", options(nomem, nostack)) };
    }
    left
}

/// Copies user memory at `src` of the active address space into `dst`.
/// Returns the bytes not copied (a page fault ended the copy).
///
/// # Safety
/// `[src, src + dst.len())` must lie in the user half.
pub unsafe fn copy_from_user(dst: &mut [u8], src: u64) -> usize {
    // SAFETY: `dst` is valid kernel memory; the user side is the caller's.
    unsafe { copy(dst.as_mut_ptr(), src as *const u8, dst.len()) }
}

/// Copies `src` to user memory at `dst` of the active address space.
/// Returns the bytes not copied (a page fault ended the copy).
///
/// # Safety
/// `[dst, dst + src.len())` must lie in the user half.
pub unsafe fn copy_to_user(dst: u64, src: &[u8]) -> usize {
    // SAFETY: `src` is valid kernel memory; the user side is the caller's.
    unsafe { copy(dst as *mut u8, src.as_ptr(), src.len()) }
}
