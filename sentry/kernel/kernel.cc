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

bool Kernel::TgidFreeLocked(int tid) {
  auto it = tgs_.find(tid);
  if (it != tgs_.end()) {
    // A group's entry goes when it is reaped (ReapLocked); one whose last
    // reference went without a reap (a process no one waits for any more:
    // a control-server exec, a later container's init) frees its id here,
    // on the next look. Its own group/session ids go with it first: a
    // leader holds its tid as its pgid and sid, and checking the holders
    // before dropping them kept such an id taken for good.
    std::shared_ptr<ThreadGroup> tg = it->second.tg.lock();
    if (tg && tg->state != ThreadGroup::State::kReaped) return false;
    if (it->second.leader_charged) ChargePidsLocked(it->second.container_pids.get(), -1);
    HoldGroupIdsLocked(it->second, 0, 0);
    tgs_.erase(it);
  }
  if (group_id_users_.count(tid) != 0) return false;  // another group's pgid/sid
  ForgetIdLocked(tid);
  return true;
}

void Kernel::HoldGroupIdsLocked(TgSlot& slot, int pgid, int sid) {
  const int old_pgid = slot.held_pgid, old_sid = slot.held_sid;
  for (int id : {pgid, sid}) {
    if (id > 0) ++group_id_users_[id];
  }
  slot.held_pgid = pgid;
  slot.held_sid = sid;
  for (int id : {old_pgid, old_sid}) {
    if (id <= 0) continue;
    auto it = group_id_users_.find(id);
    if (it == group_id_users_.end() || --it->second > 0) continue;
    group_id_users_.erase(it);
    ForgetIdLocked(id);
  }
}

void Kernel::SetGroupIdsLocked(ThreadGroup& tg, int pgid, int sid) {
  tg.pgid = pgid;
  tg.sid = sid;
  auto it = tgs_.find(tg.tgid());
  if (it != tgs_.end() && it->second.tg.lock().get() == &tg) HoldGroupIdsLocked(it->second, pgid, sid);
}

int Kernel::IdIn(const PidNamespace* ns, int global) {
  if (ns == nullptr || global <= 0) return global;
  return ns->Local(global);
}

int Kernel::IdFrom(const PidNamespace* ns, int local) {
  if (ns == nullptr || local <= 0) return local;
  return ns->Global(local);
}

Status Kernel::AttachIdsLocked(const std::shared_ptr<PidNamespace>& ns, int global, int want) {
  if (ns == nullptr) return {};
  if (!ns->adding) return Errno(ENOMEM);
  // alloc_pid(): a namespace without its init yet takes only 1 as set_tid
  // (its first process is its init, whatever it asks for).
  if (want > 1 && ns->Global(1) == 0) return Errno(EINVAL);
  std::vector<std::pair<PidNamespace*, int>> ids;
  for (PidNamespace* n = ns.get(); n != nullptr; n = n->parent().get()) {
    const int local = n->Allocate(n == ns.get() ? want : 0);
    if (local == -EEXIST) return Errno(EEXIST);
    if (local < 0) return Errno(EAGAIN);
    ids.emplace_back(n, local);
  }
  for (const auto& [n, local] : ids) n->Add(local, global);
  id_ns_[global] = ns;
  return {};
}

void Kernel::ForgetIdLocked(int global) {
  auto it = id_ns_.find(global);
  if (it == id_ns_.end() || tasks_.count(global) != 0 || tgs_.count(global) != 0 ||
      group_id_users_.count(global) != 0) {
    return;
  }
  for (PidNamespace* n = it->second.get(); n != nullptr; n = n->parent().get()) n->Remove(global);
  id_ns_.erase(it);
}

void Kernel::ZapPidNamespaceLocked(PidNamespace& ns, ThreadGroup& init) {
  ns.adding = false;
  siginfo_t info{};
  info.si_signo = SIGKILL;
  info.si_code = SI_KERNEL;
  for (auto& [tid, t] : tasks_) {
    if (&t->tg() != &init && ns.Contains(t->pid_ns())) SendGroupSignal(t->tg(), info).ok();
  }
}

int Kernel::AllocateTid() {
  for (int i = 0; i < kPidMax; ++i) {
    int tid = next_tid_;
    next_tid_ = next_tid_ >= kPidMax - 1 ? 2 : next_tid_ + 1;
    if (tasks_.count(tid) == 0 && TgidFreeLocked(tid)) return tid;
  }
  return -1;
}

int Kernel::AllocateTidAt(int tid) {
  if (tasks_.count(tid) != 0 || !TgidFreeLocked(tid)) return -EEXIST;
  return tid;
}

void Kernel::RegisterTask(std::shared_ptr<Task> t) {
  if (t->tid() == t->tgid()) {
    TgSlot& slot = tgs_[t->tgid()] =
        TgSlot{.tg = t->shared_tg(), .container_pids = t->tg().container_pids};
    HoldGroupIdsLocked(slot, t->tg().pgid, t->tg().sid);
  }
  for (PidNamespace* n = t->pid_ns(); n != nullptr; n = n->parent().get()) {
    if (n->init.lock().get() != &t->tg()) ++n->others;
  }
  t->counted_uid_ = t->creds().ruid;
  ++tasks_per_uid_[t->counted_uid_];
  ChargePidsLocked(t->tg().container_pids.get(), 1);
  tasks_[t->tid()] = std::move(t);
}

Status Kernel::CheckTaskLimits(const Task& parent) {
  // pids_can_fork(): the container's limit binds root too.
  if (PidsLimitReachedLocked(parent.tg().container_pids.get()) > 0) return Errno(EAGAIN);
  const Credentials& c = parent.creds();
  const rlim_t limit = parent.tg().rlimits[RLIMIT_NPROC].rlim_cur;
  if (limit == RLIM_INFINITY || c.ruid == 0 || c.HasCap(CAP_SYS_RESOURCE) ||
      c.HasCap(CAP_SYS_ADMIN)) {
    return {};
  }
  auto it = tasks_per_uid_.find(c.ruid);
  const int64_t n = it == tasks_per_uid_.end() ? 0 : it->second;
  if (static_cast<uint64_t>(n) >= limit) return Errno(EAGAIN);
  return {};
}

void Kernel::ChargePidsLocked(ContainerPids* container, int64_t delta) {
  pids_charged_ += delta;
  if (container != nullptr) container->charged += delta;
}

std::shared_ptr<ContainerPids> Kernel::ContainerPidsOfLocked(const std::string& container) {
  if (container.empty()) return nullptr;
  std::shared_ptr<ContainerPids>& c = container_pids_[container];
  if (!c) c = std::make_shared<ContainerPids>();
  return c;
}

void Kernel::SetContainerPidsLimit(const std::string& container, int64_t limit) {
  if (container.empty()) return;
  ContainerPidsOfLocked(container)->limit = limit > 0 ? limit : 0;
}

int64_t Kernel::ContainerPidsLimitLocked(const std::string& container) const {
  auto it = container_pids_.find(container);
  return it == container_pids_.end() ? 0 : it->second->limit;
}

int64_t Kernel::ContainerPidsChargedLocked(const std::string& container) const {
  auto it = container_pids_.find(container);
  return it == container_pids_.end() ? 0 : it->second->charged;
}

int64_t Kernel::PidsLimitReachedLocked(const ContainerPids* container) const {
  if (const int64_t limit = pids_limit(); limit > 0 && pids_charged_ >= limit) return limit;
  if (container != nullptr && container->limit > 0 && container->charged >= container->limit) {
    return container->limit;
  }
  return 0;
}

void Kernel::RecountTaskUid(Task& t) {
  absl::MutexLock l(&mu_);
  if (tasks_.count(t.tid()) == 0 || t.counted_uid_ == t.creds().ruid) return;
  if (--tasks_per_uid_[t.counted_uid_] <= 0) tasks_per_uid_.erase(t.counted_uid_);
  t.counted_uid_ = t.creds().ruid;
  ++tasks_per_uid_[t.counted_uid_];
}

void Kernel::UnregisterTask(int tid) {
  auto t = tasks_.find(tid);
  if (t == tasks_.end()) return;
  Task& task = *t->second;
  const uid_t uid = task.counted_uid_;
  if (--tasks_per_uid_[uid] <= 0) tasks_per_uid_.erase(uid);
  // A pids cgroup uncharges a thread at its exit and a process's leader
  // when the process is reaped (release_task()); the group's id stays taken
  // until then too (tgs_).
  auto slot = tid == task.tgid() ? tgs_.find(tid) : tgs_.end();
  if (slot != tgs_.end() && !slot->second.released &&
      slot->second.tg.lock().get() == &task.tg()) {
    slot->second.leader_charged = true;
  } else {
    ChargePidsLocked(task.tg().container_pids.get(), -1);
  }
  std::shared_ptr<Task> keep = std::move(t->second);
  tasks_.erase(t);
  exit_cv_.SignalAll();
  ForgetIdLocked(tid);
  for (PidNamespace* n = keep->pid_ns(); n != nullptr; n = n->parent().get()) {
    if (n->init.lock().get() == &keep->tg() || --n->others > 0 || !n->exit_pending) continue;
    // The last task of a namespace whose init has exited: the init's
    // parent hears of it now (zap_pid_namespace() has waited).
    std::shared_ptr<ThreadGroup> init = std::move(n->exit_pending);
    ZombieToParentNow(*init);
  }
}

void Kernel::ReleasePidChargeLocked(ThreadGroup& tg) {
  auto it = tgs_.find(tg.tgid());
  if (it == tgs_.end() || it->second.tg.lock().get() != &tg) return;
  it->second.released = true;
  if (it->second.leader_charged) {
    it->second.leader_charged = false;
    ChargePidsLocked(it->second.container_pids.get(), -1);
  }
}

void Kernel::ReapLocked(ThreadGroup& tg) {
  tg.state = ThreadGroup::State::kReaped;
  exit_cv_.SignalAll();
  auto it = tgs_.find(tg.tgid());
  if (it == tgs_.end() || it->second.tg.lock().get() != &tg) return;
  if (it->second.leader_charged) ChargePidsLocked(it->second.container_pids.get(), -1);
  HoldGroupIdsLocked(it->second, 0, 0);
  tgs_.erase(it);
  ForgetIdLocked(tg.tgid());
}

std::shared_ptr<Task> Kernel::TaskByTid(int tid) {
  auto it = tasks_.find(tid);
  return it == tasks_.end() ? nullptr : it->second;
}

std::shared_ptr<ThreadGroup> Kernel::ThreadGroupByTgid(int tgid) {
  auto it = tgs_.find(tgid);
  if (it == tgs_.end()) return nullptr;
  auto tg = it->second.tg.lock();
  if (tg && tg->state == ThreadGroup::State::kReaped) return nullptr;
  return tg;
}

std::vector<std::shared_ptr<Task>> Kernel::Tasks() {
  std::vector<std::shared_ptr<Task>> out;
  for (auto& [tid, t] : tasks_) out.push_back(t);
  return out;
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
    return absl::ResourceExhaustedError(absl::StrCat("starting the init: the host refused a thread (",
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
    for (int r = 0; r < RLIM_NLIMITS; ++r) getrlimit(static_cast<__rlimit_resource>(r), &tg->rlimits[r]);
    tg->start_time_ns = boot_ns_;
    tg->unkillable = true;
    init_tg_ = tg;
    init = std::make_shared<Task>(*this, tid, tg);
    tg->tasks.push_back(init.get());
    tg->leader = init.get();
    RegisterTask(init);
  }
  init->fs_ = vfs_->NewFsContext();
  init->fds_ = std::make_shared<FdTable>();
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
