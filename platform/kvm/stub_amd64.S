// The kvm stub: the host process that holds a guest address space and the
// KVM VM that runs it (README.md, design A).
//
// The pieces every stub has (platform/stub/stub_common_amd64.inc), plus the
// loop each thread runs once the sentry has sent it to `enter` with its
// slot of the shared region (kvm_layout.h): post an event in the slot's
// comm page, wait for the answer, then either
//   - RUN: copy the guest registers from the slot's mirror into the vCPU's
//     kvm_run page, KVM_RUN, copy kvm_run's exit data and registers back
//     into the mirror, post; or
//   - CALL: make the host syscall the sentry asked for (the vCPU's ioctls,
//     mmap and friends in this process), post its result; or
//   - EXIT: end the thread.
// SIGURG (the sentry's kick) stays blocked outside KVM_RUN; the vCPU's
// signal mask (KVM_SET_SIGNAL_MASK) lets it interrupt KVM_RUN, and after
// an interrupted KVM_RUN the stub takes it with rt_sigtimedwait, so a kick
// that arrives at any moment ends exactly one KVM_RUN.
//
// No libc, no writable memory of its own.

#include "platform/stub/stub_common_amd64.inc"

#define SYS_ioctl 16
#define SYS_rt_sigprocmask 14
#define SYS_rt_sigreturn 15
#define SYS_rt_sigtimedwait 128
#define KVM_RUN 0xae80
#define ST_EVENT 1
#define ST_RUN 2
#define ST_EXIT 3
#define ST_GONE 4
#define ST_CALL 5
#define EINTR 4
#define MIRROR 0x800                     // kMirrorOff
#define MIRROR_QWORDS 103                // kMirrorSize / 8
#define RUN_VALID 288                    // offsetof(kvm_run, kvm_valid_regs)
#define RUN_DIRTY 296
#define RUN_REGS 304                     // offsetof(kvm_run, s)
#define SPIN_MAX 0x40000                 // TSC ticks: the longest spin, whatever the page says

        STUB_COMMON_TEXT

        .org    0x180
enter:                                   // +0x180: rdi = this thread's slot
        mov     %rdi, %rbx
        mov     $SYS_rt_sigprocmask, %eax
        xor     %edi, %edi               // SIG_BLOCK {SIGURG}
        lea     96(%rbx), %rsi
        xor     %edx, %edx
        mov     $8, %r10d
        syscall
post:                                    // tell the sentry
        rdtsc                            // when we post: the sentry measures our
        shl     $32, %rdx                // wait from it to tune our spin
        or      %rdx, %rax
        mov     %rax, 128(%rbx)
        mov     120(%rbx), %r13          // how long to spin (the sentry's choice,
        cmp     $SPIN_MAX, %r13          // capped)
        jbe     1f
        mov     $SPIN_MAX, %r13d
1:      add     %rax, %r13               // r13: the spin's deadline (TSC)
        mov     $ST_EVENT, %eax
        xchg    %eax, (%rbx)             // a full barrier before the next load
        cmpl    $0, 16(%rbx)             // the sentry sleeps: wake it
        je      spin
        mov     $SYS_futex, %eax
        mov     %rbx, %rdi
        mov     $1, %esi                 // FUTEX_WAKE (shared: the sentry maps it too)
        mov     $1, %edx
        syscall
spin:                                    // no sched_yield (systrap_handoff.h)
        cmpl    $ST_EVENT, (%rbx)
        jne     answered
        pause
        rdtsc
        shl     $32, %rdx
        or      %rdx, %rax
        cmp     %r13, %rax
        jb      spin
wait:
        cmpl    $ST_EVENT, (%rbx)
        jne     answered
        mov     $1, %eax
        xchg    %eax, 20(%rbx)           // we sleep: the sentry must wake us
        cmpl    $ST_EVENT, (%rbx)
        jne     awake
        mov     $SYS_futex, %eax
        mov     %rbx, %rdi
        xor     %esi, %esi               // FUTEX_WAIT while state == EVENT
        mov     $ST_EVENT, %edx
        xor     %r10, %r10
        syscall
awake:
        movl    $0, 20(%rbx)
        jmp     wait
answered:
        mov     (%rbx), %eax
        cmp     $ST_RUN, %eax
        je      run
        cmp     $ST_CALL, %eax
        je      call
        cmp     $ST_EXIT, %eax
        je      done
        ud2                              // nothing else is ever asked

run:
        mov     88(%rbx), %r12           // kvm_run
        lea     MIRROR+RUN_REGS(%rbx), %rsi
        lea     RUN_REGS(%r12), %rdi
        mov     $18, %ecx                // struct kvm_regs
        cld
        rep movsq
        mov     MIRROR+RUN_VALID(%rbx), %rax
        mov     %rax, RUN_VALID(%r12)
        mov     MIRROR+RUN_DIRTY(%rbx), %rax
        mov     %rax, RUN_DIRTY(%r12)
        mov     $SYS_ioctl, %eax
        mov     4(%rbx), %edi
        mov     $KVM_RUN, %esi
        xor     %edx, %edx
        syscall
        mov     %rax, 8(%rbx)
        cmp     $-EINTR, %rax
        jne     1f
        mov     $SYS_rt_sigtimedwait, %eax  // take the kick (it is blocked again)
        lea     96(%rbx), %rdi
        xor     %esi, %esi
        lea     104(%rbx), %rdx
        mov     $8, %r10d
        syscall
1:      mov     %r12, %rsi
        lea     MIRROR(%rbx), %rdi
        mov     $MIRROR_QWORDS, %ecx
        rep movsq
        jmp     post

call:                                    // a host syscall the sentry asked for
        mov     24(%rbx), %rax
        cmp     $ATOMIC_UPDATE_CALL, %rax
        je      atomic_call
        mov     32(%rbx), %rdi
        mov     40(%rbx), %rsi
        mov     48(%rbx), %rdx
        mov     56(%rbx), %r10
        mov     64(%rbx), %r8
        mov     72(%rbx), %r9
        syscall
        mov     %rax, 80(%rbx)
        jmp     post

        .org    0x300
urg_handler:                             // +0x300: SIGURG is only ever taken
        ret                              // by rt_sigtimedwait; a handler keeps
        .org    0x308                    // it from being ignored
restorer:
        mov     $SYS_rt_sigreturn, %eax
        syscall
        ud2

atomic_call:                             // Context::AtomicUpdate32
        ATOMIC_UPDATE_FROM_CALL 32, 80
        jmp     post

done:                                    // after this store the thread never
        movl    $ST_GONE, (%rbx)         // touches its slot again
        mov     $SYS_futex, %eax
        mov     %rbx, %rdi
        mov     $1, %esi
        mov     $1, %edx
        syscall
        mov     $SYS_exit, %eax
        xor     %edi, %edi
        syscall
        ud2

        STUB_COMMON_DATA
