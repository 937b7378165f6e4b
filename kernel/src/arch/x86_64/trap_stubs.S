# Entry stubs for all 256 interrupt vectors.
#
# Each stub is 16 bytes (so the IDT can address stub N as trap_stubs + 16*N).
# The CPU pushes an error code for some exceptions only; for every other vector
# the stub pushes a 0 so that all vectors share one frame layout (TrapFrame).
# The stub then pushes its vector number and jumps to trap_common, which saves
# the general-purpose registers and calls trap_dispatch(&mut TrapFrame).
# A trap taken in ring 3 (CS.RPL = 3) goes to trap_from_user instead, which
# never returns here (see user.rs).
#
# Stack alignment: in 64-bit mode the CPU aligns RSP to 16 bytes before pushing
# SS..RIP (5 words). Error code + vector (2) + 15 GPRs = 22 words = 176 bytes,
# so RSP is 16-byte aligned again at the `call`, as the SysV ABI requires.

.section .text.trap_stubs, "ax"
.global trap_stubs
.balign 16
trap_stubs:
.set vec, 0
.rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
        pushq $0
    .endif
    pushq $vec
    jmp trap_common
    .set vec, vec + 1
.endr

.balign 16
trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    testb $3, 144(%rsp)
    jnz trap_from_user
    # From ring 0: without AC, so a handler that interrupted a user copy
    # (stac ... clac) runs with SMAP on; iretq restores the flags.
    pushfq
    andq $~0x40000, (%rsp)
    popfq
    movq %rsp, %rdi
    cld
    call trap_dispatch
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

# From ring 3: the kernel's GS, flags without the user's AC (which would
# lift SMAP for the handler) or DF, the interrupt's handler, then back to
# the kernel through user_exit (user.rs), which saves the frame.
trap_from_user:
    swapgs
    pushfq
    andq $~0x40400, (%rsp)
    popfq
    movq %rsp, %rdi
    call user_trap_dispatch
    jmp user_exit
