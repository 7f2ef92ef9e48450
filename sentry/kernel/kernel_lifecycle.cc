// The OCI lifecycle's entry points into the kernel: start the container's
// init (or an exec'd process) on demand, wait for processes, pause/resume.
// `seedsc do` keeps using RunInit (kernel.cc), which is StartProcess +
// WaitInit in one.
#include <fcntl.h>
#include <signal.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sentry/base/deadline.h"
#include "sentry/base/mono_clock.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// execvp(3)'s search: argv[0] with a slash is used as is, otherwise each
// PATH entry (from the process's own environment) in order.
std::vector<std::string> ExecCandidates(const ProcessSpec& spec) {
  std::vector<std::string> out;
  if (!spec.exec_path.empty()) return {spec.exec_path};
  if (spec.argv[0].find('/') != std::string::npos) {
    out.push_back(spec.argv[0]);
    return out;
  }
  std::string path = kDefaultPath;
  for (const std::string& e : spec.envp) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    out.push_back(absl::StrCat(dir.empty() ? "." : std::string(dir), "/", spec.argv[0]));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<ThreadGroup>> Kernel::StartProcess(const ProcessSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("no command given");
  // The host thread first: a refusal (a full pids cgroup) fails the start
  // before anything the guest can see changes.
  Result<HostThread> host = HostThread::Spawn();
  if (!host.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the host refused a thread for the new process (",
        std::strerror(host.error().value()), "); the sandbox's host cgroup may be full"));
  }
  std::shared_ptr<Task> task;
  std::shared_ptr<ThreadGroup> tg;
  {
    absl::MutexLock l(&mu_);
    if (init_exited_) return absl::FailedPreconditionError("the sandbox's init has exited");
    if (no_new_processes_) return absl::FailedPreconditionError("the sandbox is shutting down");
    // runc exec's process joins the container's pids cgroup, and its fork
    // fails there at the limit.
    std::shared_ptr<ContainerPids> container_pids = ContainerPidsOfLocked(spec.container_id);
    if (const int64_t limit = PidsLimitReachedLocked(container_pids.get()); limit > 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the container has reached its pids limit (linux.resources.pids.limit ", limit, ")"));
    }
    // pid 1 stays the init's, whatever ran before it.
    if (spec.before_init && next_tid_ == 1) next_tid_ = 2;
    int tid = !init_tg_ && !spec.before_init ? (!TgidFreeLocked(1) || tasks_.count(1) ? -1 : 1)
                                             : AllocateTid();
    if (tid < 0) return absl::ResourceExhaustedError("no free pid in the sandbox");
    if (tid == 1 && last_tid_ == 0) last_tid_ = 1;  // the init's, given, not allocated
    // Its ids in its pid namespace and those above it (as a fork into it).
    const std::shared_ptr<PidNamespace> pid_ns = spec.before_init ? nullptr : spec.pid_ns;
    if (Status s = AttachIdsLocked(pid_ns, tid, 0); !s.ok()) {
      return absl::FailedPreconditionError(
          s.error().value() == ENOMEM
              ? "the container's pid namespace has ended (its init has exited)"
              : "no free pid in the container's pid namespace");
    }
    const int local = pid_ns ? pid_ns->Local(tid) : 0;
    tg = std::make_shared<ThreadGroup>(tid);
    tg->pid_ns = pid_ns;
    if (local != 0) tg->set_vtgid(local);
    if (local == 1) {
      // Its init (the container's first process): its orphans' reaper,
      // unkillable from inside, and its end ends the namespace.
      pid_ns->init = tg;
      tg->unkillable = true;
    }
    // A new session and process group of its own, like a container init
    // (and like runc exec's process, which calls setsid when it has a tty).
    tg->pgid = tid;
    tg->sid = tid;
    tg->container_id = spec.container_id;
    tg->container_pids = std::move(container_pids);
    tg->handlers = std::make_shared<SignalHandlers>();
    for (int r = 0; r < RLIM_NLIMITS; ++r) getrlimit(static_cast<__rlimit_resource>(r), &tg->rlimits[r]);
    for (const auto& [res, lim] : spec.rlimits) {
      if (res >= 0 && res < RLIM_NLIMITS) tg->rlimits[res] = lim;
    }
    if (Status s = timers().WatchCpuLimit(tg); !s.ok()) {
      // The ids go back, and the namespace's init that never ran.
      if (local == 1) pid_ns->init.reset();
      ForgetIdLocked(tid);
      return absl::ResourceExhaustedError(absl::StrCat(
          "the host refused the timer thread that enforces RLIMIT_CPU (",
          std::strerror(s.error().value()), "); the sandbox's host cgroup may be full"));
    }
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    tg->start_time_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (!init_tg_ && !spec.before_init) {
      tg->unkillable = true;
      init_tg_ = tg;
    }
    task = std::make_shared<Task>(*this, tid, tg);
    task->vtid_ = local;
    task->pid_ns_for_children_ = pid_ns;
    tg->tasks.push_back(task.get());
    tg->leader = task.get();
    task->creds_ = spec.creds;
    RegisterTask(task);
  }
  task->set_fs(vfs_->NewFsContext());
  task->set_fds(std::make_shared<FdTable>());
  Status root_status;
  if (!spec.root.empty() && spec.root != "/") {
    // chroot(2) into the container's root, which the caller mounted.
    ResolveContext c{vfs_->root(), vfs_->root(), FsCreds{}, 0};
    Result<DentryRef> r = vfs_->Resolve(c, spec.root, true);
    if (r.ok()) {
      task->fs_->SetRoot(*r);
      task->fs_->SetCwd(*r);
    } else {
      root_status = r.error();
    }
  }
  Result<DentryRef> console = vfs_->ResolveAt(*task, AT_FDCWD, "/dev/console", 0);
  for (int i = 0; i < 3; ++i) {
    task->fds_->InstallAt(i, NewHostStdioFile(spec.stdio[i], console.ok() ? *console : nullptr),
                          false)
        .ok();
  }
  Status cwd_status = root_status;
  if (root_status.ok() && spec.cwd != "/" && !spec.cwd.empty()) {
    Result<DentryRef> d = vfs_->ResolveAt(*task, AT_FDCWD, spec.cwd, 0);
    if (d.ok()) {
      task->fs_->SetCwd(*d);
    } else {
      cwd_status = d.error();
    }
  }
  absl::Mutex exec_mu;
  bool exec_done = false;
  Status exec_status;
  // A bad cwd still runs the task so that it exits (127) through the normal
  // path and its waiters and the pid table see it go.
  std::vector<std::string> candidates =
      cwd_status.ok() ? ExecCandidates(spec) : std::vector<std::string>{};
  task->StartWithExec(std::move(*host), candidates, spec.argv, spec.envp, [&](Status s) {
    absl::MutexLock l(&exec_mu);
    exec_status = s;
    exec_done = true;
  });
  {
    absl::MutexLock l(&exec_mu);
    exec_mu.Await(absl::Condition(&exec_done));
  }
  if (!root_status.ok()) {
    return absl::NotFoundError(absl::StrCat("the container's root ", spec.root, ": ",
                                            std::strerror(root_status.error().value())));
  }
  if (!cwd_status.ok()) {
    return absl::NotFoundError(absl::StrCat("working directory ", spec.cwd, ": ",
                                            std::strerror(cwd_status.error().value())));
  }
  if (!exec_status.ok()) {
    return absl::NotFoundError(absl::StrCat("cannot run \"", spec.argv[0], "\": ",
                                            std::strerror(exec_status.error().value())));
  }
  return tg;
}

int Kernel::WaitInit() {
  absl::MutexLock l(&mu_);
  while (!init_exited_ || !tasks_.empty()) exit_cv_.Wait(&mu_);
  return init_status_;
}

int Kernel::WaitProcess(const std::shared_ptr<ThreadGroup>& tg) {
  absl::MutexLock l(&mu_);
  while (tg->state == ThreadGroup::State::kAlive) exit_cv_.Wait(&mu_);
  return tg->exit_status;
}


std::optional<int> Kernel::WaitProcessFor(const std::shared_ptr<ThreadGroup>& tg,
                                          absl::Duration timeout) {
  const Deadline by = Deadline::In(timeout);
  absl::MutexLock l(&mu_);
  while (tg->state == ThreadGroup::State::kAlive) {
    // On the monotonic clock: a step of the wall clock neither stretches
    // nor ends the wait (mono_condvar.h).
    if (exit_cv_.WaitUntil(&mu_, by) && tg->state == ThreadGroup::State::kAlive) {
      return std::nullopt;
    }
  }
  return tg->exit_status;
}

void Kernel::KillProcess(ThreadGroup& tg) {
  absl::MutexLock l(&mu_);
  if (tg.state != ThreadGroup::State::kAlive) return;
  siginfo_t info{};
  info.si_signo = SIGKILL;
  SendGroupSignal(tg, info).ok();
}

void Kernel::Release(const std::shared_ptr<ThreadGroup>& tg) {
  absl::MutexLock l(&mu_);
  if (tg->state != ThreadGroup::State::kZombie) return;
  ReapLocked(*tg);
}

}  // namespace seedvisor::sentry
