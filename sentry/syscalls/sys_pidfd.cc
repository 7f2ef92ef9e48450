// pidfd_open, pidfd_send_signal and pidfd_getfd over PidfdFile
// (sentry/kernel/pidfd.h). waitid(P_PIDFD) is in sys_process.cc and
// clone(CLONE_PIDFD) in task_clone.cc.
#include <fcntl.h>
#include <signal.h>
#include <sys/statfs.h>

#include <algorithm>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_signal.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

// pidfd_send_signal(2) flags (linux/pidfd.h, Linux 6.9): who gets it.
constexpr unsigned kSignalThread = 1 << 0;        // the pidfd's thread
constexpr unsigned kSignalThreadGroup = 1 << 1;   // its process
constexpr unsigned kSignalProcessGroup = 1 << 2;  // its process group

// The pid a /proc/PID directory `f` is for; 0 for other files.
int ProcDirPid(FileDescription& f) {
  constexpr long kProcSuperMagic = 0x9fa0;
  const std::shared_ptr<Dentry>& d = f.dentry();
  if (!d || !d->parent() || !d->parent()->IsMountRoot() || d->name().empty()) return 0;
  auto fs = d->parent()->inode()->StatFs();
  if (!fs.ok() || fs->f_type != kProcSuperMagic) return 0;
  int pid = 0;
  for (char c : d->name()) {
    if (c < '0' || c > '9' || pid > 100000000) return 0;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

// Whether the /proc/PID directory `f` names a process that is gone: the
// directory names the process it was made for (a struct pid in Linux),
// and once that id went to another process /proc shows another directory
// under the name. Asked without Kernel::mu() (the lookup takes it).
bool ProcDirStale(FileDescription& f) {
  if (ProcDirPid(f) == 0) return false;
  const std::shared_ptr<Dentry>& d = f.dentry();
  Result<std::shared_ptr<Inode>> now = d->parent()->inode()->Lookup(d->name());
  return now.ok() && now->get() != d->inode().get();
}

// pidfd_send_signal(2) also takes an fd of a /proc/PID directory (Linux
// 5.1): the process it names, under Kernel::mu(). EBADF for other files,
// ESRCH for a process that is gone (`stale`: ProcDirStale).
Result<std::shared_ptr<ThreadGroup>> ProcDirGroup(Kernel& k, FileDescription& f, bool stale) {
  const int pid = ProcDirPid(f);
  if (pid == 0) return Errno(EBADF);
  if (stale) return Errno(ESRCH);
  std::shared_ptr<ThreadGroup> tg = k.ThreadGroupByTgid(pid);
  if (!tg) return Errno(ESRCH);
  return tg;
}

}  // namespace

SyscallReturn SysPidfdOpen(Task& t, const SyscallArgs& a) {
  int pid = a.Int(0);
  unsigned flags = a.Uint(1);
  // PIDFD_NONBLOCK, PIDFD_THREAD.
  if (flags & ~static_cast<unsigned>(O_NONBLOCK | kPidfdThread)) return Errno(EINVAL);
  if (pid <= 0) return Errno(EINVAL);
  auto f = std::make_shared<PidfdFile>(static_cast<int>(flags));
  {
    absl::MutexLock l(&t.kernel().mu());
    if (flags & kPidfdThread) {
      // Any thread, leader or not, that has not exited.
      std::shared_ptr<Task> task = t.kernel().TaskByVtid(t.pid_ns(), pid);
      if (!task || task->exited()) return Errno(ESRCH);
      SV_TRY(f->BindThread(task));
    } else {
      std::shared_ptr<ThreadGroup> tg = t.kernel().ThreadGroupByVtgid(t.pid_ns(), pid);
      if (!tg) {
        // A thread that is not a group leader: ENOENT (EINVAL before
        // Linux 6.15-ish; this host's 6.18 says ENOENT).
        return t.kernel().TaskByVtid(t.pid_ns(), pid) ? Errno(ENOENT) : Errno(ESRCH);
      }
      SV_TRY(f->Bind(std::move(tg)));
    }
  }
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, /*cloexec=*/true, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn SysPidfdSendSignal(Task& t, const SyscallArgs& a) {
  int sig = a.Int(1);
  unsigned flags = a.Uint(3);
  constexpr unsigned kScopes = kSignalThread | kSignalThreadGroup | kSignalProcessGroup;
  if ((flags & ~kScopes) || __builtin_popcount(flags) > 1) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(a.Int(0)));
  if (sig < 0 || sig > kNumSignals) return Errno(EINVAL);
  siginfo_t info{};
  bool user_info = !a.Addr(2).IsNull();
  if (user_info) {
    SV_TRY(t.CopyInObj(a.Addr(2), &info));
    // pidfd_send_signal(2): the info must be for this signal.
    if (info.si_signo != sig) return Errno(EINVAL);
  } else {
    info.si_signo = sig;
    info.si_code = SI_USER;
    info.si_pid = t.tgid();
    info.si_uid = t.creds().ruid;
  }
  Kernel& k = t.kernel();
  auto* pidfd = dynamic_cast<PidfdFile*>(f.get());
  const bool stale = pidfd == nullptr && ProcDirStale(*f);
  absl::MutexLock l(&k.mu());
  // Without a flag, a thread pidfd signals its thread, a process pidfd its
  // process (Linux 6.9).
  const bool thread_pidfd = pidfd != nullptr && pidfd->is_thread();
  if (flags == 0 && thread_pidfd) flags = kSignalThread;
  auto group = PidfdGroup(*f);
  if (!group.ok() && group.error() == Errno(EBADF)) group = ProcDirGroup(k, *f, stale);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> tg, std::move(group));
  // Only the kernel may claim SI_USER or a positive code for another
  // process (as rt_sigqueueinfo(2)).
  if (user_info && tg.get() != &t.tg() && (info.si_code >= 0 || info.si_code == SI_TKILL)) {
    return Errno(EPERM);
  }
  if (flags & kSignalProcessGroup) {
    // As kill(-pgid): every process of the group.
    int pgid = tg->pgid;
    std::vector<std::shared_ptr<ThreadGroup>> targets;
    for (auto& task : k.Tasks()) {
      std::shared_ptr<ThreadGroup> g = task->shared_tg();
      if (g->pgid == pgid && std::find(targets.begin(), targets.end(), g) == targets.end()) {
        targets.push_back(g);
      }
    }
    // __kill_pgrp_info(): those the caller may signal; EPERM if none.
    bool sent = false;
    for (auto& g : targets) {
      if (!MaySignalGroup(t, *g, sig)) continue;
      sent = true;
      (void)k.SendGroupSignal(*g, info, nullptr, SignalSender::kSandboxTask);
    }
    if (!sent) return Errno(EPERM);
    return 0;
  }
  // check_kill_permission(), as kill(2).
  if (!MaySignalGroup(t, *tg, sig)) return Errno(EPERM);
  if (thread_pidfd) {
    // The thread must still be there, whatever the scope (the thread's
    // pid is what names the process, too).
    std::shared_ptr<Task> thread = pidfd->LiveThread();
    if (!thread) return Errno(ESRCH);
    if (flags & kSignalThread) {
      SV_TRY(k.SendTaskSignal(*thread, info, nullptr, SignalSender::kSandboxTask));
      return 0;
    }
  }
  // A zombie still exists until it is reaped: the signal goes nowhere.
  if (tg->state == ThreadGroup::State::kZombie) return 0;
  if (flags & kSignalThread) {
    // A process's pidfd names its leader thread.
    if (!tg->leader) return Errno(ESRCH);
    SV_TRY(k.SendTaskSignal(*tg->leader, info, nullptr, SignalSender::kSandboxTask));
    return 0;
  }
  SV_TRY(k.SendGroupSignal(*tg, info, nullptr, SignalSender::kSandboxTask));
  return 0;
}

SyscallReturn SysPidfdGetfd(Task& t, const SyscallArgs& a) {
  if (a.Uint(2) != 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(a.Int(0)));
  std::shared_ptr<FdTable> fds;
  {
    absl::MutexLock l(&t.kernel().mu());
    SV_ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> tg, PidfdGroup(*f));
    // An exited process has no fd table left (fget_task() finds nothing).
    if (tg->tasks.empty()) return Errno(EBADF);
    Task* target = tg->leader ? tg->leader : tg->tasks.front();
    // PTRACE_MODE_ATTACH_REALCREDS.
    if (!MayPtraceAccess(t, *tg, target->creds(), PtraceCreds::kReal)) return Errno(EPERM);
    fds = target->shared_fds();
  }
  if (!fds) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(FileRef file, fds->Get(a.Int(1)));
  // pidfd_getfd(2): the new fd is close-on-exec.
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(file, /*cloexec=*/true, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

}  // namespace seedvisor::sentry
