// The systrap stub: the host process that holds a guest address space.
//
// The pieces every stub has (platform/stub/stub_common_amd64.inc: entry
// point, gadgets, scratch page), plus a signal handler. Guest code runs on
// the stub's threads under a seccomp filter (seccomp/stub_policy.cc) that turns every guest
// syscall into SIGSYS; faults arrive as SIGSEGV, SIGBUS, SIGFPE, SIGILL and
// SIGTRAP, and the sentry's kick as SIGURG. All of them land in `handler`, on
// the thread's alternate stack inside its slot of the shared region
// (systrap_layout.h). The handler posts the event in the slot's comm page,
// wakes the sentry with a futex, waits for the reply and returns through
// rt_sigreturn with the ucontext the sentry rewrote in place.
//
// No libc, no writable memory of its own; the text page must stay one page
// (the filter allows the handler's calls from that page only).

#include "platform/stub/stub_common_amd64.inc"

#define SYS_rt_sigprocmask 14
#define SYS_rt_sigreturn 15
#define SYS_sigaltstack 131
#define SLOT_MASK -0x8000           // kSlotSize = 32 KiB, slots aligned
#define ST_EVENT 1
#define SPIN_MAX 0x40000             // TSC ticks: the longest spin, whatever the page says
#define ST_EXIT 3
#define ST_CALL 5
#define ST_GONE 4

        STUB_COMMON_TEXT

        .org    0x180
enter:                                   // +0x180: a new thread's first event;
        mov     %rdi, %rbx               // rdi = its slot (set by the sentry)
        mov     $SYS_sigaltstack, %eax
        lea     64(%rbx), %rdi           // the stack_t the sentry wrote
        xor     %esi, %esi
        syscall
        mov     $SYS_rt_sigprocmask, %eax
        mov     $2, %edi                 // SIG_SETMASK to the empty set
        lea     128(%rbx), %rsi
        xor     %edx, %edx
        mov     $8, %r10d
        syscall
        ud2                              // SIGILL -> handler -> the sentry

        .org    0x200
handler:                                 // +0x200: rdi=signo rsi=info rdx=uc
        mov     %rsp, %rbx
        and     $SLOT_MASK, %rbx         // the slot's comm page
        mov     %edi, 4(%rbx)
        mov     %rsi, 8(%rbx)
        mov     %rdx, 16(%rbx)
        rdfsbase %rax
        mov     %rax, 24(%rbx)
        rdgsbase %rax
        mov     %rax, 32(%rbx)
post:                                    // tell the sentry: an event or a result
        rdtsc                            // when we post: the sentry measures our
        shl     $32, %rdx                // wait from it to tune our spin
        or      %rdx, %rax
        mov     %rax, 120(%rbx)
        mov     %rax, %r12
        mov     112(%rbx), %rcx          // how long to spin (the sentry's choice,
        cmp     $SPIN_MAX, %rcx          // capped: the page is guest-writable)
        jbe     1f
        mov     $SPIN_MAX, %ecx
1:      add     %rcx, %r12               // r12: the spin's deadline (TSC); not
        mov     $ST_EVENT, %eax          // in rcx, which syscall clobbers
        xchg    %eax, (%rbx)             // a full barrier before the next load
        cmpl    $0, 40(%rbx)             // the sentry sleeps: wake it
        je      spin
        mov     $SYS_futex, %eax
        mov     %rbx, %rdi
        mov     $1, %esi                 // FUTEX_WAKE (shared: the sentry maps it too)
        mov     $1, %edx
        syscall
spin:                                    // no sched_yield: see systrap_handoff.h
        cmpl    $ST_EVENT, (%rbx)
        jne     answered
        pause
        rdtsc
        shl     $32, %rdx
        or      %rdx, %rax
        cmp     %r12, %rax
        jb      spin
wait:
        mov     $1, %eax
        xchg    %eax, 44(%rbx)           // we sleep: the sentry must wake us
        cmpl    $ST_EVENT, (%rbx)
        jne     awake
        mov     $SYS_futex, %eax
        mov     %rbx, %rdi
        xor     %esi, %esi               // FUTEX_WAIT while state == EVENT
        mov     $ST_EVENT, %edx
        xor     %r10, %r10
        syscall
awake:
        movl    $0, 44(%rbx)
        cmpl    $ST_EVENT, (%rbx)
        je      wait
answered:
        mov     (%rbx), %eax
        cmp     $ST_EXIT, %eax
        je      done
        cmp     $ST_CALL, %eax
        je      call
        mov     24(%rbx), %rax           // the guest's fs and gs bases
        wrfsbase %rax
        mov     32(%rbx), %rax
        wrgsbase %rax
        ret                              // to restorer, rsp back at the frame

        .org    0x380
restorer:                                // +0x380: sa_restorer
        mov     $SYS_rt_sigreturn, %eax
        syscall
        ud2

call:                                    // a memory call the sentry asked for:
        mov     48(%rbx), %rax           // anonymous mmap, munmap, mprotect ...
        mov     56(%rbx), %rdi           // (the filter allows no other)
        mov     64(%rbx), %rsi
        mov     72(%rbx), %rdx
        mov     80(%rbx), %r10
        mov     88(%rbx), %r8
        mov     96(%rbx), %r9
        syscall
        mov     %rax, 104(%rbx)
        jmp     post

done:                                    // after this store the thread never
        movl    $ST_GONE, (%rbx)         // touches its slot again
        mov     $SYS_futex, %eax         // (the address is in a register)
        mov     %rbx, %rdi
        mov     $1, %esi                 // FUTEX_WAKE the sentry
        mov     $1, %edx
        syscall
        mov     $SYS_exit, %eax
        xor     %edi, %edi
        syscall
        ud2

        STUB_COMMON_DATA
