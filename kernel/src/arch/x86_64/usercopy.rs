//! The one routine that touches user memory: a copy whose page fault is
//! not fatal. The exception handler sees a fault inside
//! `[percore_usercopy_start, percore_usercopy_end)` and resumes at the
//! fixup, which returns the bytes left (the model is Linux's exception
//! table, and Hubris' `umem.rs` / Redox's `usercopy.rs` for the checks
//! around it, which `process` makes before calling here). With SMAP on,
//! access to user pages is allowed for the length of the copy only
//! (`stac` ... `clac`); an interrupt meanwhile runs its handler with SMAP
//! back on (`trap_common` clears AC, `iretq` restores it).
//!
//! The copy moves 32 bytes per loop turn through four registers, then the
//! tail byte by byte, rather than `rep movsb`: under QEMU's TCG every
//! iteration of a `rep` string instruction is a trip through the
//! translator's dispatch loop (about 10 ns a byte), and a 4 KiB copy of
//! ring entries cost 40 µs; the loop runs as chained translated code.
//! The byte count left (`rdx`) is updated after each block is stored, so
//! a fault reports at most one block of 32 bytes copied as not copied.

core::arch::global_asm!(
    ".section .text.usercopy, \"ax\"",
    ".global percore_usercopy",
    ".global percore_usercopy_start",
    ".global percore_usercopy_end",
    ".global percore_usercopy_fixup",
    // rdi = destination, rsi = source, rdx = length; returns bytes not copied.
    "percore_usercopy:",
    "percore_usercopy_start:",
    "cmp rdx, 32",
    "jb 3f",
    "2:",
    "mov rax, [rsi]",
    "mov rcx, [rsi + 8]",
    "mov r8, [rsi + 16]",
    "mov r9, [rsi + 24]",
    "mov [rdi], rax",
    "mov [rdi + 8], rcx",
    "mov [rdi + 16], r8",
    "mov [rdi + 24], r9",
    "add rsi, 32",
    "add rdi, 32",
    "sub rdx, 32",
    "cmp rdx, 32",
    "jae 2b",
    "3:",
    "test rdx, rdx",
    "jz 5f",
    "4:",
    "mov al, [rsi]",
    "mov [rdi], al",
    "inc rsi",
    "inc rdi",
    "dec rdx",
    "jnz 4b",
    "5:",
    "xor eax, eax",
    "ret",
    "percore_usercopy_end:",
    "percore_usercopy_fixup:",
    "mov rax, rdx",
    "ret",
);

unsafe extern "sysv64" {
    fn percore_usercopy(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static percore_usercopy_start: u8;
    static percore_usercopy_end: u8;
    static percore_usercopy_fixup: u8;
}

/// Where a fault at `rip` resumes, if `rip` is inside the copy.
pub(super) fn fixup(rip: u64) -> Option<u64> {
    // Only the addresses of the extern statics are taken, never their values.
    let start = core::ptr::addr_of!(percore_usercopy_start) as u64;
    let end = core::ptr::addr_of!(percore_usercopy_end) as u64;
    (start..end)
        .contains(&rip)
        .then_some(core::ptr::addr_of!(percore_usercopy_fixup) as u64)
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
