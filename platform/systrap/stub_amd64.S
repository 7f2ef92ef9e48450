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
// A patched syscall site (PATCHING.md) enters `fast_entry` by a jump, with
// no signal: it saves the guest's registers into the slot's fast frame,
// posts through the same comm-page handoff and, on the reply, restores
// them and jumps to the rip the sentry chose. The sentry's kick (SIGURG)
// that lands anywhere in this text is returned from at once: the fast path
// posts an event anyway (see `handler`).
//
// No libc, no writable memory of its own; the text page must stay one page
// (the filter allows the handler's calls from that page only).

#include "platform/stub/stub_common_amd64.inc"

#define SYS_rt_sigprocmask 14
#define SYS_rt_sigreturn 15
#define SYS_sigaltstack 131
#define SYS_arch_prctl 158
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004
// The bases this thread's kernel state holds, kept by the handler that has
// no FSGSBASE instructions (systrap_layout.h kFsBaseHeld, kGsBaseHeld).
#define FS_HELD 0x90
#define GS_HELD 0x98
#define SLOT_MASK -0x8000           // kSlotSize = 32 KiB, slots aligned
#define ST_EVENT 1
#define SPIN_MAX 0x80000             // TSC ticks: the longest spin, whatever the page says
#define ST_EXIT 3
#define ST_CALL 5
#define ST_GONE 4
#define SIGURG 23

// The fast frame (systrap_layout.h: kFastHeader, kFastGregs, kFastXsave).
#define FAST_STACK_TOP 0x4000
#define FAST_ID 0x4000
#define FAST_XMASK 0x4008
#define FAST_FPDIRTY 0x4010
#define FAST_SLOW 0x4014
#define FG(i) (0x4100 + 8 * (i))         // gregs[i], mcontext order
#define FG_R8 FG(0)
#define FG_R9 FG(1)
#define FG_R10 FG(2)
#define FG_R11 FG(3)
#define FG_R12 FG(4)
#define FG_R13 FG(5)
#define FG_R14 FG(6)
#define FG_R15 FG(7)
#define FG_RDI FG(8)
#define FG_RSI FG(9)
#define FG_RBP FG(10)
#define FG_RBX FG(11)
#define FG_RDX FG(12)
#define FG_RAX FG(13)
#define FG_RCX FG(14)
#define FG_RSP FG(15)
#define FG_RIP FG(16)
#define FG_EFL FG(17)
#define FAST_XSAVE 0x4400

#include "platform/systrap/fast_gs_check_amd64.inc"

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
        mov     $SYS_arch_prctl, %eax    // the bases this thread starts with,
        mov     $ARCH_GET_FS, %edi       // for handler_nofsgs (a clone keeps
        lea     FS_HELD(%rbx), %rsi      // its creator's)
        syscall
        mov     $SYS_arch_prctl, %eax
        mov     $ARCH_GET_GS, %edi
        lea     GS_HELD(%rbx), %rsi
        syscall
        ud2                              // SIGILL -> handler -> the sentry

        .org    0x1f0
handler_nofsgs:                          // +0x1f0: the handler where the host
        mov     $1, %r14d                // kernel keeps user space from FSGSBASE
        jmp     handler_body             // (AT_HWCAP2): r14 = 1, arch_prctl

        .org    0x200
handler:                                 // +0x200: rdi=signo rsi=info rdx=uc
        xor     %r14d, %r14d             // r14 = 0: rd/wrfsbase, rd/wrgsbase
handler_body:
        cmp     $SIGURG, %edi            // a kick inside this text (the fast
        jne     1f                       // path: SIGURG is blocked in here
        mov     168(%rdx), %rax          // otherwise) is dropped: the fast
        lea     _start(%rip), %rcx       // path posts an event anyway, or has
        sub     %rcx, %rax               // just been answered (the sentry
        cmp     $0x1000, %rax            // kicks again if it still waits)
        jb      dropped
1:      xor     %r13d, %r13d             // r13 = 0: a signal frame's event
        mov     %rsp, %rbx
        and     $SLOT_MASK, %rbx         // the slot's comm page
        mov     %edi, 4(%rbx)
        mov     %rsi, 8(%rbx)
        mov     %rdx, 16(%rbx)
        test    %r14d, %r14d
        jnz     1f
        rdfsbase %rax
        mov     %rax, 24(%rbx)
        rdgsbase %rax
        mov     %rax, 32(%rbx)
        jmp     post
1:      mov     FS_HELD(%rbx), %rax      // without FSGSBASE the guest cannot
        mov     %rax, 24(%rbx)           // change them but through us
        mov     GS_HELD(%rbx), %rax
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
        test    %r13d, %r13d
        jnz     fast_exit
        test    %r14d, %r14d
        jnz     set_bases
        mov     24(%rbx), %rax           // the guest's fs and gs bases
        wrfsbase %rax
        mov     32(%rbx), %rax
        wrgsbase %rax
dropped:
        ret                              // to restorer, rsp back at the frame

        .org    0x380
restorer:                                // +0x380: sa_restorer
        mov     $SYS_rt_sigreturn, %eax
        syscall
        ud2

call:                                    // a memory call the sentry asked for:
        mov     48(%rbx), %rax           // anonymous mmap, munmap, mprotect ...
        cmp     $ATOMIC_UPDATE_CALL, %rax
        je      atomic_call
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

        .org    0x3f0
fast_fail:                               // +0x3f0: GS is no slot (the guest
        ud2                              // set its own): SIGILL, rax = site id
        .org    0x3f8
fast_slow:                               // +0x3f8: the sentry wants a signal
        ud2                              // frame to exit through (sigreturn)

        .org    0x400
fast_entry:                              // +0x400: from a patched site's slot:
        FAST_GS_SLOT_CHECK fast_fail     // rax = site id; rcx, r11 are free
        mov     %rsp, %gs:FG_RSP         // (syscall clobbers them); nothing
        rdgsbase %rsp                    // below the guest's rsp is written,
        lea     FAST_STACK_TOP(%rsp), %rsp  // no flag changes before pushfq
        pushfq
        pop     %gs:FG_EFL
        mov     %rax, %gs:FAST_ID
        mov     %r8, %gs:FG_R8
        mov     %r9, %gs:FG_R9
        mov     %r10, %gs:FG_R10
        mov     %r12, %gs:FG_R12
        mov     %r13, %gs:FG_R13
        mov     %r14, %gs:FG_R14
        mov     %r15, %gs:FG_R15
        mov     %rdi, %gs:FG_RDI
        mov     %rsi, %gs:FG_RSI
        mov     %rbp, %gs:FG_RBP
        mov     %rbx, %gs:FG_RBX
        mov     %rdx, %gs:FG_RDX
        rdgsbase %rbx                    // the slot: its comm page
        mov     FAST_XMASK(%rbx), %eax   // the guest's FP state, as the kernel
        mov     FAST_XMASK+4(%rbx), %edx // saves it in a signal frame
        xsave   FAST_XSAVE(%rbx)
        rdfsbase %rax
        mov     %rax, 24(%rbx)
        mov     %rbx, 32(%rbx)           // GS: the slot (the guest's 0)
        movl    $0, 4(%rbx)              // signo 0: a fast event
        mov     $1, %r13d                // answered: leave through fast_exit
        jmp     post

fast_exit:                               // rbx = the slot; the reply is in
        cmpl    $0, FAST_SLOW(%rbx)      // the fast frame
        jne     fast_slow
        cmpl    $0, FAST_FPDIRTY(%rbx)   // the sentry wrote FP state
        je      1f
        mov     FAST_XMASK(%rbx), %eax
        mov     FAST_XMASK+4(%rbx), %edx
        xrstor  FAST_XSAVE(%rbx)
1:      mov     24(%rbx), %rax
        wrfsbase %rax                    // GS stays the slot (else: slow)
        lea     FAST_STACK_TOP(%rbx), %rsp
        push    FG_EFL(%rbx)
        mov     FG_R8(%rbx), %r8
        mov     FG_R9(%rbx), %r9
        mov     FG_R10(%rbx), %r10
        mov     FG_R11(%rbx), %r11
        mov     FG_R12(%rbx), %r12
        mov     FG_R13(%rbx), %r13
        mov     FG_R14(%rbx), %r14
        mov     FG_R15(%rbx), %r15
        mov     FG_RDI(%rbx), %rdi
        mov     FG_RSI(%rbx), %rsi
        mov     FG_RBP(%rbx), %rbp
        mov     FG_RDX(%rbx), %rdx
        mov     FG_RAX(%rbx), %rax
        mov     FG_RCX(%rbx), %rcx
        mov     FG_RBX(%rbx), %rbx
        popfq                            // from here on no flag changes
        mov     %gs:FG_RSP, %rsp
        jmp     *%gs:FG_RIP

atomic_call:                             // Context::AtomicUpdate32
        ATOMIC_UPDATE_FROM_CALL 56, 104
        jmp     post

set_bases:                               // handler_nofsgs: the guest's fs and
        mov     24(%rbx), %rsi           // gs bases through arch_prctl, each
        cmp     FS_HELD(%rbx), %rsi      // only when it changed (one call
        je      1f                       // per change, not per event); one
        mov     $SYS_arch_prctl, %eax    // the kernel refuses stays as it was
        mov     $ARCH_SET_FS, %edi
        syscall
        test    %rax, %rax
        jnz     1f
        mov     %rsi, FS_HELD(%rbx)
1:      mov     32(%rbx), %rsi
        cmp     GS_HELD(%rbx), %rsi
        je      2f
        mov     $SYS_arch_prctl, %eax
        mov     $ARCH_SET_GS, %edi
        syscall
        test    %rax, %rax
        jnz     2f
        mov     %rsi, GS_HELD(%rbx)
2:      ret                              // to restorer, rsp back at the frame

        STUB_COMMON_DATA
