#include "platform/stub/injector.h"

#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <cerrno>

namespace seedvisor::platform::stub {

int WaitFor(pid_t tid) {
  int status = 0;
  while (waitpid(tid, &status, __WALL) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

Status SeizeAndStop(pid_t tid) {
  if (::ptrace(PTRACE_SEIZE, tid, nullptr,
               // TRACESECCOMP: systrap stubs let injected calls through with
               // SECCOMP_RET_TRACE (seccomp/stub_policy.cc); ptrace stubs have
               // no filter and never stop for it.
               reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
                                       PTRACE_O_TRACESECCOMP)) != 0) {
    return Errno(errno);
  }
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return Errno(errno);
  int status = WaitFor(tid);
  if (status < 0 || !WIFSTOPPED(status)) return Errno(ESRCH);
  return {};
}

long InjectSyscall(pid_t tid, uint64_t gadget_addr, long nr, const long (&args)[6], bool* dead) {
  user_regs_struct saved;
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &saved) != 0) return -ESRCH;
  user_regs_struct r = saved;
  r.rip = gadget_addr;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = static_cast<uint64_t>(-1);  // no syscall restart on resume
  r.rdi = static_cast<uint64_t>(args[0]);
  r.rsi = static_cast<uint64_t>(args[1]);
  r.rdx = static_cast<uint64_t>(args[2]);
  r.r10 = static_cast<uint64_t>(args[3]);
  r.r8 = static_cast<uint64_t>(args[4]);
  r.r9 = static_cast<uint64_t>(args[5]);
  if (::ptrace(PTRACE_SETREGS, tid, nullptr, &r) != 0) return -ESRCH;
  for (;;) {
    if (::ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0) return -ESRCH;
    int status = WaitFor(tid);
    if (status < 0 || !WIFSTOPPED(status)) {
      *dead = true;
      return -ESRCH;
    }
    // Only the gadget's int3 ends the call: a SIGTRAP signal-delivery-stop.
    // An event stop (status >> 16) is continued, though it may carry SIGTRAP
    // too: a seccomp stop (systrap's filter saying SECCOMP_RET_TRACE) lets
    // the injected syscall run; a PTRACE_EVENT_STOP is a PTRACE_INTERRUPT
    // still pending, our seize's own when a signal stop (a SIGCHLD in the
    // zygote) was reported first, or a kick meant for guest mode. Taken for
    // the trap, it returned the syscall number as the result of a call that
    // never ran (a forked stub "pid" 56: ESRCH).
    if ((status >> 16) != 0) continue;
    const int sig = WSTOPSIG(status);
    if (sig == SIGTRAP) break;
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL) {
      // No gadget there: `tid` is no stub. Continuing would fault again
      // forever, with the caller's locks held.
      ::ptrace(PTRACE_SETREGS, tid, nullptr, &saved);
      return -EFAULT;
    }
    // Any other signal (a SIGCHLD in the zygote) is dropped: the task checks
    // its signals before it returns to the guest anyway.
  }
  ::ptrace(PTRACE_GETREGS, tid, nullptr, &r);
  ::ptrace(PTRACE_SETREGS, tid, nullptr, &saved);
  return static_cast<long>(r.rax);
}

Injector::Injector(pid_t tid, uint64_t entry) : tid_(tid), entry_(entry) {
  ok_ = SeizeAndStop(tid).ok();
}

Injector::~Injector() {
  if (ok_ && !dead_) ::ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
}

long Injector::CallAt(uint64_t gadget, long nr, const long (&args)[6]) {
  if (!ok_ || dead_) return -ESRCH;
  return InjectSyscall(tid_, entry_ + gadget, nr, args, &dead_);
}

Result<pid_t> ForkStub(pid_t zygote, uint64_t entry) {
  Injector inj(zygote, entry);
  if (!inj.ok()) return Errno(ESRCH);
  // The child parks at once (the fork gadget); the zygote, its parent, reaps
  // it when it dies.
  const long args[6] = {SIGCHLD, 0, 0, 0, 0, 0};
  long pid = inj.CallAt(kStubForkGadget, SYS_clone, args);
  if (pid < 0) return Errno(static_cast<int>(-pid));
  if (pid == 0) return Errno(EAGAIN);
  return static_cast<pid_t>(pid);
}

Result<std::vector<pid_t>> PrepareForkedStub(pid_t pid, uint64_t entry, pid_t pgid, int threads) {
  constexpr long kThreadFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                                CLONE_SYSVSEM;
  Injector inj(pid, entry);
  if (!inj.ok()) return Errno(ESRCH);
  long r = inj.Call(SYS_setpgid, 0, pgid);
  if (r != 0) return Errno(r < 0 ? static_cast<int>(-r) : EINVAL);
  std::vector<pid_t> tids = {pid};
  for (int i = 1; i < threads; ++i) {
    // The new thread shares this thread's stack pointer but never touches
    // the stack: it parks at once (the fork gadget).
    const long args[6] = {kThreadFlags, 0, 0, 0, 0, 0};
    long tid = inj.CallAt(kStubForkGadget, SYS_clone, args);
    if (tid < 0) return Errno(static_cast<int>(-tid));
    if (tid == 0) return Errno(EAGAIN);
    tids.push_back(static_cast<pid_t>(tid));
  }
  return tids;
}

Result<pid_t> ForkZygoteInGroup(pid_t zygote, uint64_t entry, pid_t pgid) {
  SV_ASSIGN_OR_RETURN(pid_t z, ForkStub(zygote, entry));
  long r;
  {
    Injector inj(z, entry);
    r = inj.ok() ? inj.Call(SYS_setpgid, 0, pgid) : -ESRCH;
    user_regs_struct regs;
    if (r == 0 && ::ptrace(PTRACE_GETREGS, z, nullptr, &regs) == 0) {
      regs.rip = entry + kStubZygoteLoop;
      regs.orig_rax = static_cast<uint64_t>(-1);
      if (::ptrace(PTRACE_SETREGS, z, nullptr, &regs) != 0) r = -errno;
    } else if (r == 0) {
      r = -errno;
    }
  }
  if (r != 0) {
    kill(z, SIGKILL);  // not reaped yet (the seed's zygote reaps it): the pid is still z's
    return Errno(r < 0 ? static_cast<int>(-r) : EINVAL);
  }
  return z;
}

}  // namespace seedvisor::platform::stub
