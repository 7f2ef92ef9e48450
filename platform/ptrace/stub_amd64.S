// The ptrace stub: the host process that holds a guest address space.
//
// It is a few instructions, linked at a fixed high address the guest may not
// map over, with no writable memory of its own. Guest code runs on its threads
// under PTRACE_SYSEMU; the sentry uses the gadgets below to make host
// syscalls on the stub's behalf (mmap, munmap, clone ...). Offsets from
// _start are fixed: stub_layout.h mirrors them.

#define SYS_nanosleep 35
#define SYS_wait4 61
#define SYS_exit 60
#define SYS_futex 202
#define WALL 0x40000000

        .section .text
        .globl _start
_start:                                  // +0x00
        mov     (%rsp), %rax             // argc > 1: this is the zygote
        cmp     $1, %rax
        jg      zygote
        jmp     park

        .org    0x20
syscall_gadget:                          // +0x20: one host syscall, then trap
        syscall
        int3

        .org    0x30
fork_gadget:                             // +0x30: clone; the child parks
        syscall
        test    %rax, %rax
        jz      park
        int3

        .org    0x40
exit_gadget:                             // +0x40: end this host thread
        mov     $SYS_exit, %eax
        xor     %edi, %edi
        syscall
        ud2

        .org    0x50
park:                                    // +0x50: wait to be attached, forever
        mov     $SYS_futex, %eax
        lea     park_word(%rip), %rdi
        xor     %esi, %esi               // FUTEX_WAIT
        xor     %edx, %edx               // while *park_word == 0
        xor     %r10, %r10
        syscall
        jmp     park

zygote:                                  // reap every stub ever forked
        mov     $SYS_wait4, %eax
        mov     $-1, %rdi
        xor     %esi, %esi
        mov     $WALL, %edx
        xor     %r10, %r10
        syscall
        cmp     $-10, %rax               // -ECHILD: nothing to reap yet
        jne     zygote
        mov     $SYS_nanosleep, %eax
        lea     nap(%rip), %rdi
        xor     %esi, %esi
        syscall
        jmp     zygote

        .org    0x100
scratch_addr:                            // +0x100: where the scratch page is
        .quad   scratch

        .section .rodata
        .balign 16
nap:    .quad   0, 20000000              // 20 ms
park_word:
        .long   0
        // Read-only to the guest; the sentry writes it through /proc/PID/mem
        // (FOLL_FORCE) to pass paths and structs to injected syscalls.
        .balign 4096
scratch:
        .zero   4096

        .section .note.GNU-stack,"",@progbits
