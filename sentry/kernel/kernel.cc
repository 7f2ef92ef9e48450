#include "sentry/kernel/kernel.h"

#include <sys/resource.h>
#include <cstring>
#include <time.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "seccomp/sentry_filter.h"
#include "sentry/base/log.h"
#include "sentry/kernel/strace.h"
#include "sentry/socket/net_service.h"
#include "sentry/socket/net_takeover.h"
#include "sentry/socket/netns.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace

Kernel::Kernel(const KernelOptions& opts) : opts_(opts) {
  SetPidsLimit(opts.pids_limit);
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  boot_ns_ = ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

Kernel::~Kernel() = default;

absl::StatusOr<std::unique_ptr<Kernel>> Kernel::Create(const KernelOptions& opts) {
  std::unique_ptr<Kernel> k(new Kernel(opts));
  auto platform = platform::NewPlatform(opts.platform);
  if (!platform.ok()) return platform.status();
  k->platform_ = std::move(*platform);
  // --network=none: the loopback-only namespace must be made now, before
  // the seccomp filter forbids unshare (sentry/socket/netns.h).
  // --network=sandbox needs no host network at all: its own stack serves
  // AF_INET (sentry/socket/net_service.h).
  if (opts.network == "sandbox") {
    k->net_ = std::make_unique<NetService>();
    if (opts.taken_interfaces) {
      if (absl::Status s = k->net_->AttachInterfaces(*opts.taken_interfaces); !s.ok()) return s;
    } else if (opts.take_over_interfaces) {
      absl::StatusOr<std::vector<TakenInterface>> taken = TakeOverInterfaces();
      if (!taken.ok()) return taken.status();
      if (absl::Status s = k->net_->AttachInterfaces(*taken); !s.ok()) return s;
    }
    if (absl::Status s = k->net_->Start(); !s.ok()) return s;
  } else if (opts.network != "host") {
    if (int err = StartLoopbackNetwork(); err != 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the host refused the loopback network's thread (", std::strerror(err),
          "); the host pids cgroup may be full"));
    }
  }
  auto vfs =
      Vfs::Create(*k, VfsOptions{.host_root = opts.root, .read_only_root = opts.read_only_root});
  if (!vfs.ok()) return vfs.status();
  k->vfs_ = std::move(*vfs);
  if (opts.strace) k->strace_ = std::make_unique<Strace>();
  k->timers_ = std::make_unique<TimerService>(*k);
  return k;
}

void Kernel::InitExited(int status) {
  init_exited_ = true;
  init_status_ = status;
  exit_cv_.SignalAll();
  // Like the death of a pid namespace's init: everyone else gets SIGKILL.
  siginfo_t info{};
  info.si_signo = SIGKILL;
  for (auto& [tid, t] : tasks_) {
    if (t->tgid() != 1) SendGroupSignal(t->tg(), info).ok();
  }
}

absl::StatusOr<int> Kernel::RunInit(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& envp,
                                    std::function<void()> started) {
  if (argv.empty()) return absl::InvalidArgumentError("no command given");
  Result<HostThread> host = HostThread::Spawn();
  if (!host.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("starting the init: the host refused a thread (",
                     std::strerror(host.error().value()), ")"));
  }
  std::shared_ptr<Task> init;
  {
    absl::MutexLock l(&mu_);
    int tid = AllocateTid();
    auto tg = std::make_shared<ThreadGroup>(tid);
    tg->pgid = tid;
    tg->sid = tid;
    tg->handlers = std::make_shared<SignalHandlers>();
    for (int r = 0; r < RLIM_NLIMITS; ++r) {
      getrlimit(static_cast<__rlimit_resource>(r), &tg->rlimits[r]);
    }
    tg->start_time_ns = boot_ns_;
    tg->unkillable = true;
    init_tg_ = tg;
    init = std::make_shared<Task>(*this, tid, tg);
    tg->tasks.push_back(init.get());
    tg->leader = init.get();
    RegisterTask(init);
  }
  init->set_fs(vfs_->NewFsContext());
  init->set_fds(std::make_shared<FdTable>());
  Result<DentryRef> console = vfs_->ResolveAt(*init, AT_FDCWD, "/dev/console", 0);
  for (int i = 0; i < 3; ++i) {
    init->fds_->InstallAt(i, NewHostStdioFile(opts_.stdio[i], console.ok() ? *console : nullptr),
                          false)
        .ok();
  }
  if (opts_.cwd != "/") {
    Result<DentryRef> d = vfs_->ResolveAt(*init, AT_FDCWD, opts_.cwd, 0);
    if (!d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("working directory ", opts_.cwd, ": ",
                                                     std::strerror(d.error().value())));
    }
    init->fs_->SetCwd(*d);
  }

  // argv[0] without a slash is looked up in the PATH the command gets.
  std::vector<std::string> candidates;
  if (argv[0].find('/') != std::string::npos) {
    candidates.push_back(argv[0]);
  } else {
    std::string path = kDefaultPath;
    for (const std::string& e : envp) {
      if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
    }
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      candidates.push_back(absl::StrCat(dir.empty() ? "." : std::string(dir), "/", argv[0]));
    }
  }
  // The sandbox is set up: from here on the sentry makes only the host
  // syscalls its policy allows (seccomp/sentry_policy.cc).
  if (int r = seccomp::InstallSentryFilter(); r != 0) {
    return absl::InternalError(absl::StrCat("installing the sentry's seccomp filter: ",
                                            std::strerror(-r)));
  }
  absl::Mutex exec_mu;
  bool exec_done = false;
  Status exec_status;
  init->StartWithExec(std::move(*host), candidates, argv, envp, [&](Status s) {
    absl::MutexLock l(&exec_mu);
    exec_status = s;
    exec_done = true;
  });
  {
    absl::MutexLock l(&exec_mu);
    exec_mu.Await(absl::Condition(&exec_done));
  }
  if (started) started();
  absl::MutexLock l(&mu_);
  while (!init_exited_ || !tasks_.empty()) exit_cv_.Wait(&mu_);
  if (!exec_status.ok()) {
    return absl::NotFoundError(absl::StrCat("cannot run \"", argv[0], "\": ",
                                            std::strerror(exec_status.error().value())));
  }
  return init_status_;
}

}  // namespace seedvisor::sentry
