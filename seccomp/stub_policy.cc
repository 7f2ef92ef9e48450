#include "seccomp/stub_policy.h"

#include <asm/prctl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

namespace seedvisor::seccomp {
namespace {

constexpr int kSysMseal = 462;  // mseal(2), Linux 6.10; older headers lack SYS_mseal

}  // namespace

Policy StubPolicy() {
  Policy p;
  p.name = "systrap-stub";
  // int 0x80 and x32 calls from the guest trap too; the sentry decides.
  p.foreign_abi_action = SECCOMP_RET_TRAP;
  // Anything else from the stub's text means the guest jumped into the stub:
  // that address space dies (the sentry sees its context as dead).
  p.default_action = SECCOMP_RET_KILL_PROCESS;
  constexpr uint32_t kTrace = SECCOMP_RET_TRACE;
  p.rules = {
      // The handler's protocol with the sentry; the guest could call these
      // from the stub's text too, and gains nothing: a futex on its own memory.
      {SYS_futex, {ArgEq(1, FUTEX_WAIT)}, SECCOMP_RET_ALLOW, "handler/park: wait for the sentry"},
      {SYS_futex, {ArgEq(1, FUTEX_WAKE)}, SECCOMP_RET_ALLOW, "handler: wake the sentry"},
      {SYS_rt_sigreturn, {}, SECCOMP_RET_ALLOW, "handler: resume the guest"},
      {SYS_exit, {}, SECCOMP_RET_ALLOW, "a stub thread the sentry is done with"},
      {SYS_sched_yield, {}, SECCOMP_RET_ALLOW, "handler: yield while spinning"},
      // Memory calls the stub makes itself on the sentry's request (the
      // comm page's kStateCall), much cheaper than ptrace injection. A guest
      // that jumps here can only change its own address space, as its own
      // mmap would: anonymous memory, no fd.
      {SYS_mmap, {ArgMasked(3, MAP_ANONYMOUS, MAP_ANONYMOUS)}, SECCOMP_RET_ALLOW,
       "sentry: anonymous guest mappings"},
      // The kept host files (kStubKeptFdBase, stub_policy.h); the fd on all
      // 64 bits, as the kernel's fget() truncates it to an int.
      {SYS_mmap,
       {ArgMasked(4, ~uint64_t{kStubKeptFds - 1}, static_cast<uint64_t>(kStubKeptFdBase))},
       SECCOMP_RET_ALLOW,
       "sentry: a host file mapped before (ld.so maps each library several times)"},
      {SYS_munmap, {}, SECCOMP_RET_ALLOW, "sentry: guest munmap"},
      {SYS_mprotect, {}, SECCOMP_RET_ALLOW, "sentry: guest mprotect"},
      {SYS_madvise, {}, SECCOMP_RET_ALLOW, "sentry: guest madvise"},
      {SYS_msync, {}, SECCOMP_RET_ALLOW, "sentry: guest msync"},
      {SYS_mremap, {}, SECCOMP_RET_ALLOW, "sentry: guest mremap"},
      // rseq(2) acts on the calling thread, so the guest's own stub thread
      // registers the guest's area (Context::Rseq). A guest that jumps here
      // registers an area for its own thread; the host then writes that
      // thread's CPU numbers, only where the guest could write itself.
      {SYS_rseq, {}, SECCOMP_RET_ALLOW, "sentry: the guest thread's rseq area"},
      {SYS_getcpu, {}, SECCOMP_RET_ALLOW, "sentry: the guest's getcpu, on its own thread"},
      // The guest's CPU affinity on its own thread only (pid 0), within
      // what the host lets the stub use (platform/host_affinity.h).
      {SYS_sched_setaffinity, {ArgEq(0, 0)}, SECCOMP_RET_ALLOW,
       "sentry: the guest thread's CPU affinity, on itself"},
      // A thread's own CPU clock is exact only when the thread reads it
      // (the scheduler's account lags a tick behind a running thread).
      {SYS_clock_gettime, {ArgEq(0, CLOCK_THREAD_CPUTIME_ID)}, SECCOMP_RET_ALLOW,
       "sentry: the guest thread's own CPU clock, exactly"},
      {SYS_clock_gettime, {ArgEq(0, CLOCK_PROCESS_CPUTIME_ID)}, SECCOMP_RET_ALLOW,
       "sentry: the guest process's CPU clock, its own thread exactly"},
      // Syscall-site patching (platform/systrap/PATCHING.md): between the
      // steps of a text rewrite every CPU running the stub's mm must
      // serialize, and membarrier acts on the caller's mm, so a stub
      // thread makes it on the sentry's request. A guest that jumps here
      // only makes its own threads serialize (or registers that it may).
      {SYS_membarrier, {ArgEq(0, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE)},
       SECCOMP_RET_ALLOW, "sentry: site patching may serialize the stub's CPUs"},
      {SYS_membarrier, {ArgEq(0, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)}, SECCOMP_RET_ALLOW,
       "sentry: serialize the stub's CPUs between steps of a site rewrite"},
      // Context::AtomicSetBit32: the sentry's one atomic update of guest
      // memory (a PI futex's FUTEX_WAITERS bit). A guest that jumps here
      // gets an atomic op on its own memory and wakes no host thread of
      // its own process (none waits on guest memory; private: never another
      // process's).
      {SYS_futex, {ArgEq(1, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG)}, SECCOMP_RET_ALLOW,
       "sentry: set a bit of a guest futex word atomically"},
      // Injected by the sentry over ptrace (see systrap_platform.h); useless
      // to the guest, which is never traced.
      {SYS_mmap, {}, kTrace, "sentry: file mappings, the shared region"},
      {SYS_clone, {}, kTrace, "sentry: new stub thread or forked address space"},
      {SYS_openat, {}, kTrace, "sentry: open its own fd through /proc to map a file"},
      {SYS_close, {}, kTrace, "sentry: close that fd again"},
      {SYS_dup3, {}, kTrace, "sentry: keep a world-readable host file at a kept fd"},
      {kSysMseal, {}, kTrace, "sentry: seal a forked stub's new shared region"},
      {SYS_setpgid, {}, kTrace, "sentry: a sandbox fork's stub joins the fork's process group"},
      {SYS_prctl, {ArgEq(0, PR_SET_PDEATHSIG)}, kTrace,
       "sentry: a new stub dies with the zygote; a sandbox fork's copy outlives the seed's"},
      // Hosts whose kernel keeps user space from FSGSBASE (AT_HWCAP2): the
      // handler knows and sets the guest's FS/GS bases this way (systrap_layout.h
      // UserFsgsbase). A guest that jumps here changes only its own bases.
      {SYS_arch_prctl, {ArgEq(0, ARCH_GET_FS)}, SECCOMP_RET_ALLOW, "enter: the thread's FS base"},
      {SYS_arch_prctl, {ArgEq(0, ARCH_GET_GS)}, SECCOMP_RET_ALLOW, "enter: the thread's GS base"},
      {SYS_arch_prctl, {ArgEq(0, ARCH_SET_FS)}, SECCOMP_RET_ALLOW,
       "handler without FSGSBASE: install the guest's FS base"},
      {SYS_arch_prctl, {ArgEq(0, ARCH_SET_GS)}, SECCOMP_RET_ALLOW,
       "handler without FSGSBASE: install the guest's GS base"},
      {SYS_sigaltstack, {}, SECCOMP_RET_ALLOW, "enter: a new thread's handler stack"},
      {SYS_rt_sigprocmask, {}, SECCOMP_RET_ALLOW, "enter: unblock a new thread's signals"},
  };
  return p;
}

}  // namespace seedvisor::seccomp
