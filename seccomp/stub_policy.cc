#include "seccomp/stub_policy.h"

#include <linux/futex.h>
#include <sys/syscall.h>

namespace seedvisor::seccomp {

Policy StubPolicy(uint64_t stub_text_begin, uint64_t stub_text_end) {
  Policy p;
  p.name = "systrap-stub";
  p.ip_begin = stub_text_begin;
  p.ip_end = stub_text_end;
  // Guest syscalls (anything issued outside the stub's text) go to the
  // stub's SIGSYS handler and from there to the sentry.
  p.outside_action = SECCOMP_RET_TRAP;
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
      // Injected by the sentry over ptrace (see systrap_platform.h); useless
      // to the guest, which is never traced.
      {SYS_mmap, {}, kTrace, "sentry: guest mappings, the shared region"},
      {SYS_munmap, {}, kTrace, "sentry: guest munmap"},
      {SYS_mprotect, {}, kTrace, "sentry: guest mprotect"},
      {SYS_madvise, {}, kTrace, "sentry: guest madvise"},
      {SYS_msync, {}, kTrace, "sentry: guest msync"},
      {SYS_mremap, {}, kTrace, "sentry: guest mremap"},
      {SYS_clone, {}, kTrace, "sentry: new stub thread or forked address space"},
      {SYS_openat, {}, kTrace, "sentry: open its own fd through /proc to map a file"},
      {SYS_close, {}, kTrace, "sentry: close that fd again"},
      {SYS_sigaltstack, {}, kTrace, "sentry: a new thread's handler stack"},
      {SYS_rt_sigprocmask, {}, kTrace, "sentry: unblock a new thread's signals"},
  };
  return p;
}

}  // namespace seedvisor::seccomp
