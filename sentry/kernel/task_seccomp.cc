// A task's seccomp mode and filters, applied to each syscall before the
// sentry dispatches it (__secure_computing() in kernel/seccomp.c).
#include <linux/audit.h>
#include <linux/ptrace.h>
#include <signal.h>
#include <sys/syscall.h>

#include "sentry/base/log.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/seccomp_listener.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

constexpr int kSysSeccompCode = 1;  // SYS_SECCOMP, siginfo's si_code for SIGSYS
constexpr uint32_t kMaxErrno = 4095;

// SECCOMP_MODE_STRICT allows these four (mode1_syscalls).
bool StrictAllows(int nr) {
  return nr == SYS_read || nr == SYS_write || nr == SYS_exit || nr == SYS_rt_sigreturn;
}

}  // namespace

SeccompState Task::seccomp() const {
  absl::MutexLock l(&seccomp_mu_);
  return seccomp_;
}

void Task::set_seccomp(SeccompState s) {
  absl::MutexLock l(&seccomp_mu_);
  seccomp_on_.store(s.mode != SECCOMP_MODE_DISABLED, std::memory_order_release);
  seccomp_ = std::move(s);
}

void Task::KillThread(int sig) {
  absl::MutexLock l(&kernel_.mu());
  exit_requested_ = true;
  exit_status_ = sig;
}

void Task::KillGroup(int status) {
  absl::MutexLock l(&kernel_.mu());
  KillGroupLocked(status);
}

void Task::KillGroupLocked(int status) {
  if (tg_->group_exiting) return;
  tg_->group_exiting = true;
  tg_->exit_status = status;
  for (Task* t : tg_->tasks) {
    if (t != this) t->Interrupt();
  }
}

bool Task::SeccompAllows(SyscallArgs& a, bool recheck) {
  SeccompState s = seccomp();
  if (s.mode == SECCOMP_MODE_STRICT) {
    if (StrictAllows(a.nr)) return true;
    // __secure_computing_strict(): the thread dies with SIGKILL.
    Log::Debug("task %d: syscall %d outside seccomp strict mode; killed", tid_, a.nr);
    KillThread(SIGKILL);
    return false;
  }
  if (s.mode != SECCOMP_MODE_FILTER || s.filter == nullptr) return true;
  if (s.sync_no_new_privs) creds_.no_new_privs = true;  // a TSYNC's, on our own thread

  seccomp_data d{};
  d.nr = a.nr;
  d.arch = AUDIT_ARCH_X86_64;
  d.instruction_pointer = regs_.rip;
  for (int i = 0; i < 6; ++i) d.args[i] = a.raw[i];
  bool log = false;
  const SeccompFilter* winner = nullptr;
  const uint32_t ret = RunSeccompFilters(*s.filter, d, &log, &winner);
  const uint32_t action = ret & SECCOMP_RET_ACTION_FULL;
  uint32_t data = ret & SECCOMP_RET_DATA;
  if (log || (action != SECCOMP_RET_ALLOW && action != SECCOMP_RET_ERRNO &&
              action != SECCOMP_RET_TRACE && action != SECCOMP_RET_USER_NOTIF)) {
    Log::Debug("task %d: seccomp action %#x for syscall %d at %#llx", tid_, ret, a.nr,
               static_cast<unsigned long long>(regs_.rip));
  }
  switch (action) {
    case SECCOMP_RET_ALLOW:
    case SECCOMP_RET_LOG:
      return true;
    case SECCOMP_RET_ERRNO:
      // The errno is capped at MAX_ERRNO; ERRNO with data 0 "succeeds" with 0.
      if (data > kMaxErrno) data = kMaxErrno;
      regs_.rax = static_cast<uint64_t>(-static_cast<int64_t>(data));
      return false;
    case SECCOMP_RET_TRACE: {
      if (recheck) return true;
      bool wanted;
      {
        absl::MutexLock l(&kernel_.mu());
        wanted = ptrace_.tracer != nullptr && (ptrace_.options & PTRACE_O_TRACESECCOMP);
      }
      // Without a tracer that asked for it: -ENOSYS.
      regs_.rax = static_cast<uint64_t>(-ENOSYS);
      if (!wanted) return false;
      // PTRACE_EVENT_SECCOMP with the filter's data; the tracer may skip
      // the call (-1: rax is its result) or change it, which the filters
      // then see again.
      PtraceEvent(PTRACE_EVENT_SECCOMP, data);
      {
        absl::MutexLock l(&kernel_.mu());
        if (exit_requested_ || tg_->group_exiting) return false;
      }
      if (static_cast<int64_t>(regs_.orig_rax) == -1) return false;
      a = SyscallArgsFromRegs();
      return SeccompAllows(a, true);
    }
    case SECCOMP_RET_USER_NOTIF: {
      // seccomp_do_user_notification(): the winning filter's supervisor
      // answers; without a listener, -ENOSYS.
      SeccompListener* listener = winner->listener.get();
      if (listener == nullptr) {
        regs_.rax = static_cast<uint64_t>(-ENOSYS);
        return false;
      }
      // WAIT_KILLABLE_RECV's sleep: Block() would end at once for any
      // pending signal; this one ends only for SIGKILL (a group exit) or a
      // sandbox quiesce, and lets other signals wait.
      auto block_killable = [this]() -> Status {
        if (FatalSignalPending() || kernel_.park_requested()) return Errno(kERESTARTSYS);
        WaitForWake();
        return {};
      };
      SeccompNotifyResult r = listener->Notify(*this, d, block_killable);
      switch (r.kind) {
        case SeccompNotifyResult::Kind::kContinue:
          return true;  // the call runs, the filters not asked again
        case SeccompNotifyResult::Kind::kRestart:
          // A signal withdrew the notification: the call restarts (or
          // fails with EINTR for a handler without SA_RESTART) and is
          // notified anew.
          regs_.rax = static_cast<uint64_t>(-kERESTARTSYS);
          restart_errno_ = kERESTARTSYS;
          return false;
        case SeccompNotifyResult::Kind::kReturn:
          regs_.rax = static_cast<uint64_t>(r.value);
          return false;
      }
      return false;
    }
    case SECCOMP_RET_TRAP: {
      // The handler sees the registers as the syscall found them
      // (syscall_rollback()) and a SIGSYS describing the call.
      regs_.rax = regs_.orig_rax;
      siginfo_t info{};
      info.si_signo = SIGSYS;
      info.si_code = kSysSeccompCode;
      info.si_errno = static_cast<int>(data);
      info.si_call_addr = reinterpret_cast<void*>(regs_.rip);  // SAFETY: only reported
      info.si_syscall = a.nr;
      info.si_arch = AUDIT_ARCH_X86_64;
      ForceSignal(info);
      return false;
    }
    case SECCOMP_RET_KILL_THREAD: {
      bool last;
      {
        absl::MutexLock l(&kernel_.mu());
        last = tg_->tasks.size() == 1;
      }
      if (!last) {
        KillThread(SIGSYS);  // do_exit(SIGSYS): this thread only
        return false;
      }
      [[fallthrough]];  // the last thread takes the process with it, with a core
    }
    default:  // SECCOMP_RET_KILL_PROCESS and any unknown action
      KillGroup(tg_->CoreDumpStatus(SIGSYS));
      return false;
  }
}

}  // namespace seedvisor::sentry
