# Application-processor start-up trampoline.
#
# The bootstrap core copies the bytes from ap_trampoline_start to
# ap_trampoline_end to a free page below 1 MiB, fills in the parameter block at
# the end, and sends STARTUP with that page. The AP begins in real mode at
# CS:IP = page:0, and goes
#   real mode -> protected mode (own GDT) -> PAE + EFER.LME/NXE + CR3 + paging
#   -> long mode -> jump to the kernel's Rust entry with its stack and argument.
# The kernel identity-maps the page for the instant paging turns on.
# All addresses inside the page are taken relative to its base, which the
# real-mode code computes from CS and keeps in %ebx/%rbx.

.section .text.ap_trampoline, "ax"
.global ap_trampoline_start
.global ap_trampoline_end
.global ap_trampoline_params

.code16
ap_trampoline_start:
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    movzwl %ax, %ebx
    shll $4, %ebx                       # %ebx = physical base of the page
    lgdtl (tramp_gdt_ptr - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax                        # CR0.PE
    movl %eax, %cr0
    ljmpl *(tramp_pm_ptr - ap_trampoline_start)

.code32
tramp_protected:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $(1 << 5), %eax                 # CR4.PAE
    movl %eax, %cr4
    movl (tramp_cr3 - ap_trampoline_start)(%ebx), %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx              # IA32_EFER
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax   # LME | NXE (kernel pages use NX)
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16)), %eax  # PG | WP
    movl %eax, %cr0
    ljmpl *(tramp_lm_ptr - ap_trampoline_start)(%ebx)

.code64
tramp_long:
    movl %ebx, %ebx                     # zero-extend the base
    xorl %eax, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq (tramp_stack - ap_trampoline_start)(%rbx), %rsp
    movq (tramp_arg - ap_trampoline_start)(%rbx), %rdi
    movq (tramp_entry - ap_trampoline_start)(%rbx), %rax
    xorl %ebp, %ebp
    pushq $0                            # fake return address: ends backtraces
    jmpq *%rax

.balign 8
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff            # 0x08: 32-bit code, flat
    .quad 0x00cf92000000ffff            # 0x10: 32-bit data, flat
    .quad 0x00af9a000000ffff            # 0x18: 64-bit code
tramp_gdt_ptr:
    .word 4 * 8 - 1
    .long 0                             # base: page + (tramp_gdt - start)

# Parameter block, filled in by the kernel (layout: TrampolineParams).
.balign 8
ap_trampoline_params:
tramp_pm_ptr:
    .long 0                             # page + (tramp_protected - start)
    .word 0x08
    .word 0
tramp_lm_ptr:
    .long 0                             # page + (tramp_long - start)
    .word 0x18
    .word 0
tramp_gdt_base_slot:
    .quad tramp_gdt_ptr - ap_trampoline_start
tramp_offsets:
    .quad tramp_gdt - ap_trampoline_start
    .quad tramp_protected - ap_trampoline_start
    .quad tramp_long - ap_trampoline_start
tramp_cr3:
    .quad 0
tramp_stack:
    .quad 0
tramp_entry:
    .quad 0
tramp_arg:
    .quad 0
ap_trampoline_end:
