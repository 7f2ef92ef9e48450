#include "platform/stub/injector.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "platform/stub/slot_registry.h"

namespace seedvisor::platform::stub {

// Unbounded on purpose. What is waited for is the next ptrace stop of a
// stub thread that the sentry itself resumed into a call of its own
// choosing (mmap, munmap, clone, ...: none blocks on anything a guest
// controls), or its death; a guest cannot make it wait, since its code
// does not run until the injector lets go, and a stray call of the guest
// is killed (KillForeignCall). Only the host can hold the thread (a frozen
// cgroup, memory pressure), and then a SIGKILL of the stub (a sandbox
// destroyed, seedsc kill) still ends the wait. Giving up early instead
// would lose the stop that is still to come: the next waitpid of this
// thread would see it, out of step with what the injector asked for.
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

namespace {

// Whether a syscall stop of `tid` is the call we injected: made by the
// gadget's own syscall instruction (ip is past it), with our number and
// arguments. `op` is the PTRACE_SYSCALL_INFO_* the stop must be.
bool IsOurCall(pid_t tid, uint8_t op, uint64_t gadget_addr, long nr, const long (&args)[6]) {
  __ptrace_syscall_info info{};
  if (::ptrace(PTRACE_GET_SYSCALL_INFO, tid, reinterpret_cast<void*>(sizeof(info)), &info) <= 0) {
    return false;
  }
  if (info.op != op || info.instruction_pointer != gadget_addr + kSyscallInsnSize) return false;
  const auto& e = op == PTRACE_SYSCALL_INFO_SECCOMP ? info.seccomp.nr : info.entry.nr;
  const auto* a = op == PTRACE_SYSCALL_INFO_SECCOMP ? info.seccomp.args : info.entry.args;
  if (e != static_cast<uint64_t>(nr)) return false;
  for (int i = 0; i < 6; ++i) {
    if (a[i] != static_cast<uint64_t>(args[i])) return false;
  }
  return true;
}

// The thread made a host syscall we did not inject: only guest code can
// have asked for it (an rseq abort handler the host ran instead of our
// gadget). Its process dies before the call runs.
long KillForeignCall(pid_t tid, bool* dead) {
  kill(tid, SIGKILL);  // any thread's id names its process
  *dead = true;
  return -ESRCH;
}

}  // namespace

long InjectSyscall(pid_t tid, uint64_t gadget_addr, long nr, const long (&args)[6], bool* dead,
                   bool guarded, uint64_t rseq_cs, bool* rseq_segv, bool no_syscall) {
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
  // `guarded`: every syscall the thread makes stops first, and only ours
  // runs; the result is taken at its exit stop, before the thread could
  // return to user mode (where an rseq abort may move it), and the thread
  // stays stopped there. Else the gadget's int3 ends the call; a filtered
  // stub (systrap) still shows each traced call at a seccomp stop.
  bool ours_seen = false;
  // A healthy call stops a few times (an interrupt meant for guest mode);
  // a thread that never gets to it is stuck in something of the guest's.
  constexpr int kMaxStrayStops = 1000;
  for (int stray = 0;; ++stray) {
    if (stray > kMaxStrayStops) return KillForeignCall(tid, dead);
    if (::ptrace(guarded ? PTRACE_SYSCALL : PTRACE_CONT, tid, nullptr, nullptr) != 0) return -ESRCH;
    int status = WaitFor(tid);
    if (status < 0 || !WIFSTOPPED(status)) {
      *dead = true;
      return -ESRCH;
    }
    // A seccomp stop (systrap's filter saying SECCOMP_RET_TRACE): continuing
    // lets the call run, so it must be ours, and only once.
    if ((status >> 16) == PTRACE_EVENT_SECCOMP) {
      if (ours_seen || !IsOurCall(tid, PTRACE_SYSCALL_INFO_SECCOMP, gadget_addr, nr, args)) {
        return KillForeignCall(tid, dead);
      }
      ours_seen = true;
      continue;
    }
    // Any other event stop is continued, though it may carry SIGTRAP: a
    // PTRACE_EVENT_STOP is a PTRACE_INTERRUPT still pending, our seize's
    // own when a signal stop (a SIGCHLD in the zygote) was reported first,
    // or a kick meant for guest mode. Taken for the trap, it returned the
    // syscall number as the result of a call that never ran (a forked stub
    // "pid" 56: ESRCH).
    if ((status >> 16) != 0) continue;
    const int sig = WSTOPSIG(status);
    if (guarded && sig == (SIGTRAP | 0x80)) {
      __ptrace_syscall_info info{};
      if (::ptrace(PTRACE_GET_SYSCALL_INFO, tid, reinterpret_cast<void*>(sizeof(info)), &info) <=
          0) {
        return KillForeignCall(tid, dead);
      }
      if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
        // Before ours entered: the end of the emulated guest syscall the
        // thread was stopped in (SYSEMU), which makes none.
        if (!ours_seen) continue;
        ::ptrace(PTRACE_SETREGS, tid, nullptr, &saved);
        return static_cast<long>(info.exit.rval);
      }
      if (ours_seen || no_syscall ||
          !IsOurCall(tid, PTRACE_SYSCALL_INFO_ENTRY, gadget_addr, nr, args)) {
        return KillForeignCall(tid, dead);
      }
      ours_seen = true;
      continue;
    }
    // Only the gadget's int3 ends an unguarded call: a SIGTRAP signal stop.
    // A gadget without a syscall has no exit stop to end it, guarded or not.
    if ((!guarded || no_syscall) && sig == SIGTRAP) break;
    if (guarded && rseq_cs != 0 && sig == SIGSEGV) {
      siginfo_t si{};
      if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &si) == 0 && si.si_code == SI_KERNEL) {
        // rseq_handle_notify_resume()'s force_sig(): the guest's rseq_cs
        // is invalid. The guest gets its SIGSEGV from the platform.
        uint64_t zero = 0;
        iovec local{&zero, sizeof(zero)};
        // SAFETY: a guest address, written in the stub only.
        iovec remote{reinterpret_cast<void*>(rseq_cs), sizeof(zero)};
        if (process_vm_writev(tid, &local, 1, &remote, 1, 0) != sizeof(zero)) {
          return KillForeignCall(tid, dead);
        }
        if (rseq_segv != nullptr) *rseq_segv = true;
        continue;
      }
    }
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

namespace {

// The parent pid of `pid` (field 4 of /proc/<pid>/stat, after the command
// name's closing parenthesis), or -1.
pid_t ParentOf(pid_t pid) {
  char path[32];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* end = std::strrchr(buf, ')');
  int ppid;
  char state;
  if (end == nullptr || std::sscanf(end + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

// Ties the stopped tracee `child` (ForkTied): 0, or -errno with the child
// dead.
long TieToParent(pid_t child, uint64_t entry, pid_t parent) {
  // Its first stop: CLONE_PTRACE from a seized tracee is an event stop.
  const int status = WaitFor(child);
  // An exit instead of a stop (a cgroup kill between clone and stop): its
  // notice is taken, and the pid may be reaped and reused: never kill it.
  bool dead = status < 0 || !WIFSTOPPED(status);
  long r = -ESRCH;
  if (!dead) {
    const long tie[6] = {PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0};
    r = InjectSyscall(child, entry + kStubSyscallGadget, SYS_prctl, tie, &dead);
    // Read after the prctl: a parent that dies from now on signals the
    // child; one that died before has given it another parent already
    // (forget_original_parent() re-parents before the exit is complete).
    // The child, our stopped tracee, is not reaped: its /proc entry is its.
    if (r == 0 && ParentOf(child) != parent) r = -ESRCH;
  }
  if (r == 0 && ::ptrace(PTRACE_DETACH, child, nullptr, nullptr) == 0) return 0;
  if (!dead) {
    kill(child, SIGKILL);  // our tracee, not reaped before we wait: still its pid
    WaitFor(child);
  }
  return r != 0 ? r : -ESRCH;
}

}  // namespace

long ForkTied(pid_t parent, uint64_t entry, absl::FunctionRef<long(long flags)> clone) {
  const long pid = clone(parent > 0 ? CLONE_PTRACE : 0);
  if (pid == 0) return -EAGAIN;
  if (pid < 0 || parent <= 0) return pid;
  if (long r = TieToParent(static_cast<pid_t>(pid), entry, parent); r != 0) return r;
  return pid;
}

Result<pid_t> ForkStub(pid_t zygote, uint64_t entry, bool dies_with_zygote) {
  const long pid = ForkTied(dies_with_zygote ? zygote : 0, entry, [&](long flags) -> long {
    Injector inj(zygote, entry);
    if (!inj.ok()) return -ESRCH;
    // The child parks at once (the fork gadget); the zygote, its parent,
    // reaps it when it dies.
    const long args[6] = {SIGCHLD | flags, 0, 0, 0, 0, 0};
    return inj.CallAt(kStubForkGadget, SYS_clone, args);
  });
  if (pid < 0) return Errno(static_cast<int>(-pid));
  return static_cast<pid_t>(pid);
}

Result<ThreadHandle> NewStubThread(pid_t tid, uint64_t entry, SlotRegistry& slots) {
  const int slot = slots.Alloc();
  if (slot < 0) return Errno(EAGAIN);
  long child;
  {
    Injector inj(tid, entry);
    const long args[6] = {kStubThreadCloneFlags, 0, 0, 0, 0, 0};
    child = inj.CallAt(kStubForkGadget, SYS_clone, args);
  }
  if (child <= 0) {
    slots.Free(slot);
    return Errno(child == -ENOMEM ? ENOMEM : EAGAIN);
  }
  slots.Reserve(static_cast<pid_t>(child), slot);
  return ThreadHandle{static_cast<int>(child)};
}

Result<std::vector<pid_t>> PrepareForkedStub(pid_t pid, uint64_t entry, pid_t pgid, int threads) {
  Injector inj(pid, entry);
  if (!inj.ok()) return Errno(ESRCH);
  long r = inj.Call(SYS_setpgid, 0, pgid);
  if (r == 0) r = inj.Call(SYS_prctl, PR_SET_PDEATHSIG, 0);
  if (r != 0) return Errno(r < 0 ? static_cast<int>(-r) : EINVAL);
  std::vector<pid_t> tids = {pid};
  for (int i = 1; i < threads; ++i) {
    // The new thread shares this thread's stack pointer but never touches
    // the stack: it parks at once (the fork gadget).
    const long args[6] = {kStubThreadCloneFlags, 0, 0, 0, 0, 0};
    long tid = inj.CallAt(kStubForkGadget, SYS_clone, args);
    if (tid < 0) return Errno(static_cast<int>(-tid));
    if (tid == 0) return Errno(EAGAIN);
    tids.push_back(static_cast<pid_t>(tid));
  }
  return tids;
}

Result<pid_t> ForkZygoteInGroup(pid_t zygote, uint64_t entry, pid_t pgid) {
  SV_ASSIGN_OR_RETURN(pid_t z, ForkStub(zygote, entry, /*dies_with_zygote=*/false));
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
