// A task's syscall (Task::HandleSyscall): the tracer's stops around it,
// the guest's seccomp filters, the handler from the table, strace, SIGPIPE
// with EPIPE, and the restart of an interrupted call (FinishRestart).
#include <sys/syscall.h>
#include <time.h>

#include <string>

#include "absl/container/flat_hash_set.h"
#include "sentry/base/log.h"
#include "sentry/kernel/file_owner.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/strace.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/table.h"

namespace seedvisor::sentry {

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool IsRestartErrno(int e) {
  return (e >= kERESTARTSYS && e <= kERESTARTNOHAND) || e == kERESTART_RESTARTBLOCK;
}

// Writes that may raise SIGPIPE along with EPIPE (pipe(7)): the argument
// that holds the fd written to, or -1. Whether they do is the file's
// (FileDescription::EpipeRaisesSigpipe: not for datagram sockets).
int SigpipeFdArg(int nr) {
  switch (nr) {
    case SYS_write:
    case SYS_writev:
    case SYS_pwrite64:
    case SYS_pwritev:
    case SYS_pwritev2:
    case SYS_sendfile:
    case SYS_vmsplice:
      return 0;
    case SYS_tee:
      return 1;
    case SYS_splice:
      return 2;
    default:
      return -1;
  }
}

bool EpipeRaisesSigpipe(Task& t, const SyscallArgs& a) {
  int arg = SigpipeFdArg(static_cast<int>(a.nr));
  if (arg < 0) return false;
  Result<FileRef> f = t.fds().Get(a.Int(arg));
  return !f.ok() || (*f)->EpipeRaisesSigpipe();
}

// Logs an unimplemented syscall once per number, with its arguments.
void LogUnsupported(int nr, const SyscallEntry* e, const SyscallArgs& a) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* seen = new absl::flat_hash_set<int>();
  {
    absl::MutexLock l(&mu);
    if (!seen->insert(nr).second) return;
  }
  Log::Debug("unsupported syscall %d (%s): args %#x %#x %#x %#x %#x %#x%s%s", nr,
               e != nullptr ? e->name : "unknown", a.raw[0], a.raw[1], a.raw[2], a.raw[3],
               a.raw[4], a.raw[5], e != nullptr && *e->note ? ": " : "",
               e != nullptr ? e->note : "");
}

}  // namespace

SyscallArgs Task::SyscallArgsFromRegs() const {
  SyscallArgs a;
  a.nr = static_cast<int>(regs_.orig_rax);
  a.raw[0] = regs_.rdi;
  a.raw[1] = regs_.rsi;
  a.raw[2] = regs_.rdx;
  a.raw[3] = regs_.r10;
  a.raw[4] = regs_.r8;
  a.raw[5] = regs_.r9;
  return a;
}

void Task::HandleSyscall() {
  SyscallArgs a = SyscallArgsFromRegs();
  // A tracer's syscall-entry stop comes before seccomp
  // (syscall_trace_enter()); it may change the number and the arguments,
  // or skip the call with -1 (rax keeps -ENOSYS or what the tracer set).
  const bool traced = traced_.load(std::memory_order_acquire);
  if (traced) {
    regs_.rax = static_cast<uint64_t>(-ENOSYS);
    if (!PtraceSyscallStop(true)) return;
    bool emulated;
    {
      absl::MutexLock l(&kernel_.mu());
      emulated = ptrace_.tracer != nullptr && ptrace_.emulates_syscalls();
    }
    if (emulated) return;  // PTRACE_SYSEMU: the tracer does the call
    a = SyscallArgsFromRegs();
    if (static_cast<int64_t>(regs_.orig_rax) == -1) {
      PtraceSyscallStop(false);
      return;
    }
  }
  // A guest's own seccomp filters see the call first (seccomp.h).
  if (seccomp_on_.load(std::memory_order_acquire) && !SeccompAllows(a)) {
    if (traced) PtraceSyscallStop(false);
    return;
  }
  const SyscallEntry* e = LookupSyscall(regs_.orig_rax);
  Strace* strace = kernel_.strace();
  std::string args;
  int64_t start = 0;
  if (strace != nullptr) {
    args = strace->FormatArgs(*this, e, a);
    strace->Enter(*this, e, a, args);
    start = NowNs();
  }
  regs_replaced_ = false;
  SyscallReturn r = Errno(ENOSYS);
  if (e != nullptr && e->handler != nullptr) {
    r = e->handler(*this, a);
  } else {
    LogUnsupported(a.nr, e, a);
  }
  int64_t result;
  if (r.ok()) {
    result = static_cast<int64_t>(r.value());
  } else {
    int err = r.error().value();
    result = -err;
    if (IsRestartErrno(err)) {
      restart_errno_ = err;
    } else if (err == EPIPE && EpipeRaisesSigpipe(*this, a)) {
      siginfo_t info{};
      info.si_signo = SIGPIPE;
      info.si_code = SI_USER;
      absl::MutexLock l(&kernel_.mu());
      kernel_.SendTaskSignal(*this, info).ok();
    }
  }
  // O_ASYNC files this call (or anything since) made ready: their owners'
  // SIGIO is queued before the call returns, as Linux's kill_fasync().
  SendReadySigios(*this);
  if (!regs_replaced_) regs_.rax = static_cast<uint64_t>(result);
  if (strace != nullptr) strace->Exit(*this, e, a, args, regs_replaced_ ? 0 : result, NowNs() - start);
  if (traced) {
    // exit and exit_group never return to a syscall-exit stop; a single
    // step over the syscall instruction traps right after it
    // (user_single_step_report()).
    bool ending, stepping;
    {
      absl::MutexLock l(&kernel_.mu());
      ending = exit_requested_ || tg_->group_exiting;
      stepping = ptrace_.tracer != nullptr && ptrace_.forced_tf;
    }
    if (!ending) PtraceSyscallStop(false);
    if (!ending && stepping) {
      siginfo_t info{};
      info.si_signo = SIGTRAP;
      info.si_code = TRAP_BRKPT;
      ForceSignal(info);
    }
  }
}

void Task::FinishRestart(bool handler_runs, const KernelSigaction* act) {
  if (restart_errno_ == 0) return;
  bool restart = true;
  if (handler_runs) {
    switch (restart_errno_) {
      case kERESTARTSYS:
        restart = (act->flags & SA_RESTART) != 0;
        break;
      case kERESTARTNOINTR:
        restart = true;
        break;
      case kERESTART_RESTARTBLOCK:
        restart = false;
        restart_block_ = nullptr;
        break;
      default:  // ERESTARTNOHAND
        restart = false;
        break;
    }
  }
  if (restart) {
    // Back up over the 2-byte syscall instruction, as the kernel's
    // arch_do_signal_or_restart() does; a restart block is resumed by
    // restart_syscall(2) instead of the original call.
    regs_.rax = restart_errno_ == kERESTART_RESTARTBLOCK ? SYS_restart_syscall : regs_.orig_rax;
    regs_.rip -= 2;
  } else {
    regs_.rax = static_cast<uint64_t>(-EINTR);
  }
  restart_errno_ = 0;
}

}  // namespace seedvisor::sentry
