// FAST_GS_SLOT_CHECK as a function for syscall_patch_test.cc:
// int64_t FastGsSlotCheck(uint64_t rflags_in, uint64_t* rflags_out)
// runs the check with rflags = rflags_in and returns the slot index or -1,
// storing the rflags the check left.
#include "platform/systrap/fast_gs_check_amd64.inc"

        .text
        .globl  FastGsSlotCheck
        .type   FastGsSlotCheck, @function
FastGsSlotCheck:
        push    %rdi
        popfq
        FAST_GS_SLOT_CHECK 1f
        pushfq
        pop     (%rsi)
        mov     %r11, %rax
        ret
1:      pushfq
        pop     (%rsi)
        mov     $-1, %rax
        ret
        .size   FastGsSlotCheck, .-FastGsSlotCheck

        .section .note.GNU-stack,"",@progbits
