#include "sentry/sfork/sfork.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/mm/mm.h"
#include "sentry/socket/netns.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {
namespace {

// What the child tells the seed, in one pipe write (< PIPE_BUF: atomic).
struct Report {
  int32_t ok = 0;
  pid_t pid = 0;
  char message[512] = {};
};
static_assert(sizeof(Report) < PIPE_BUF);

// ---- The anchor: between fork and its loop, async-signal-safe only ----

void KillGroup(int) {
  kill(0, SIGKILL);  // our process group: every host process of the sandbox
  _exit(0);
}

[[noreturn]] void RunAnchor(pid_t sentry) {
  setpgid(0, 0);
  struct sigaction sa {};
  sa.sa_handler = KillGroup;
  sigaction(SIGUSR1, &sa, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (getppid() != sentry) KillGroup(0);  // the sentry died before prctl
  syscall(SYS_close_range, 0, ~0U, 0);     // hold nothing of the sentry's
  for (;;) ppoll(nullptr, 0, nullptr, nullptr);
}

absl::Status Fail(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

// Steps 1-3 of sfork.h, in the child.
absl::Status AdoptKernel(Kernel& k, const ForkOptions& opts, std::vector<pid_t>* pids) {
  k.ReinitInForkChild();
  ResetLoopbackNetworkInForkChild();

  const pid_t self = getpid();
  pid_t anchor = fork();
  if (anchor < 0) return Fail("forking the sandbox's anchor process", errno);
  if (anchor == 0) RunAnchor(self);
  // The anchor makes its group itself (the filter allows only setpgid(x,
  // 0)); the stubs can join it once it exists.
  for (int i = 0; getpgid(anchor) != anchor; ++i) {
    if (i == 20000) return absl::InternalError("the sandbox's anchor process did not start");
    usleep(50);
  }
  pids->push_back(anchor);
  absl::StatusOr<pid_t> zygote = k.platform().AdoptInForkChild(anchor);
  if (!zygote.ok()) return zygote.status();
  if (*zygote > 0) pids->push_back(*zygote);

  std::vector<std::shared_ptr<Task>> tasks;
  {
    absl::MutexLock l(&k.mu());
    for (auto& t : k.Tasks()) {
      if (!t->exited()) tasks.push_back(t);
    }
  }
  // One copy per address space, made by one of its parked threads.
  std::map<MM*, std::vector<std::shared_ptr<Task>>> by_mm;
  for (auto& t : tasks) {
    if (t->mm_ == nullptr || t->ctx_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("task ", t->tid(), " has no address space yet (still starting)"));
    }
    by_mm[t->mm_.get()].push_back(t);
  }
  for (auto& [mm, mm_tasks] : by_mm) {
    for (const Vma& v : mm->Vmas()) {
      // A shared mapping of a read-only host file shares only the host's
      // page cache, which no sandbox can write: it may stay as it is.
      if ((v.flags & MAP_SHARED) && !(v.file != nullptr && v.file->DataImmutableInSandbox())) {
        return absl::UnimplementedError(absl::StrCat(
            "process ", mm_tasks[0]->tgid(), " has a MAP_SHARED mapping (", v.name.empty() ? "anonymous" : v.name,
            ") that sandbox fork cannot copy yet"));
      }
    }
    std::shared_ptr<platform::AddressSpace> old = mm->shared_address_space();
    auto copy = k.platform().CloneSeedAddressSpace(*old, mm_tasks[0]->ctx_->thread());
    if (!copy.ok()) return copy.status();
    pids->push_back((*copy)->host_pid());
    for (size_t i = 0; i < mm_tasks.size(); ++i) {
      platform::ThreadHandle h = (*copy)->initial_thread();
      if (i > 0) {
        auto th = k.platform().NewParkedThread(**copy);
        if (!th.ok()) return th.status();
        h = *th;
      }
      if (absl::Status s = mm_tasks[i]->AdoptInForkChild(h); !s.ok()) return s;
    }
    old->AbandonInForkChild();
    mm->ReplaceAddressSpace(*copy);
  }

  // Files: every description reachable from a task's fd table or mapping.
  ForkFileContext fctx;
  for (int i = 0; i < 3; ++i) fctx.stdio[i] = opts.stdio[i];
  if (opts.init != nullptr && !opts.init->tasks.empty()) {
    auto fds = opts.init->tasks.front()->fds_;
    for (int i = 0; i < 3 && fds != nullptr; ++i) {
      if (auto f = fds->Get(i); f.ok()) fctx.stdio_slot.emplace(f->get(), i);
    }
  }
  std::set<FileDescription*> seen;
  std::set<FdTable*> tables;
  auto adopt = [&](const FileRef& f, int tgid) -> absl::Status {
    if (f == nullptr || !seen.insert(f.get()).second) return absl::OkStatus();
    absl::Status s = f->AdoptInForkChild(fctx);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("process ", tgid, ": ", s.message()));
    }
    return s;
  };
  for (auto& t : tasks) {
    if (t->fds_ != nullptr && tables.insert(t->fds_.get()).second) {
      for (auto& [fd, e] : t->fds_->Snapshot()) {
        if (absl::Status s = adopt(e.file, t->tgid()); !s.ok()) return s;
      }
    }
  }
  for (auto& [mm, mm_tasks] : by_mm) {
    for (const Vma& v : mm->Vmas()) {
      if (absl::Status s = adopt(v.file, mm_tasks[0]->tgid()); !s.ok()) return s;
    }
  }
  for (auto& fn : fctx.deferred) {
    if (absl::Status s = fn(); !s.ok()) return s;
  }
  // Uniqueness: the guest may learn it was forked and re-seed. After the
  // files: the watchers now poll readiness fds of their own.
  k.BumpForkGeneration();
  // Last, once nothing can refuse the fork: tmpfs data becomes copy-on-write
  // in the seed and here (tmpfs.h).
  return AdoptTmpfsInForkChild();
}

[[noreturn]] void ChildMain(Kernel& k, const ForkOptions& opts, int report_fd,
                            const ForkChildSetup& child_setup,
                            const std::function<void()>& child_main) {
  Report r;
  std::vector<pid_t> pids = {getpid()};
  absl::Status s = AdoptKernel(k, opts, &pids);
  r.pid = getpid();
  if (s.ok()) s = child_setup(pids, &r.pid);
  if (s.ok()) {
    // The tasks' new host threads attach their contexts and park (the
    // kernel is still quiesced: the caller's child_main resumes it, or not).
    std::vector<std::shared_ptr<Task>> tasks;
    {
      absl::MutexLock l(&k.mu());
      tasks = k.Tasks();
    }
    for (auto& t : tasks) {
      if (!t->exited()) t->StartForked();
    }
  }
  r.ok = s.ok() ? 1 : 0;
  std::string msg(s.message());
  std::strncpy(r.message, msg.c_str(), sizeof(r.message) - 1);
  ssize_t n = write(report_fd, &r, sizeof(r));
  (void)n;
  close(report_fd);
  if (!s.ok()) {
    // Take the anchor's group (our stubs) along; the seed is untouched.
    if (pids.size() > 1) kill(-pids[1], SIGKILL);
    _exit(1);
  }
  child_main();
  _exit(0);
}

// Forked sentries are our children: reaped on the next fork once they end.
std::vector<pid_t> forked_;

// In the seed, before the host fork, where the platform needs it
// (Platform::SeedForkOnTaskThreads: ptrace, whose stub threads only their
// tasks' threads may touch): every parked task saves its FP state on its own
// thread, and one task per address space has the platform copy its stub.
// The forked sentry then finds both in the memory it inherits.
absl::Status PrepareSeed(Kernel& k) {
  if (!k.platform().SeedForkOnTaskThreads()) return absl::OkStatus();
  std::vector<std::shared_ptr<Task>> tasks;
  std::vector<bool> copies;  // copies[i]: tasks[i] copies its address space
  {
    absl::MutexLock l(&k.mu());
    std::set<MM*> mms;
    for (auto& t : k.Tasks()) {
      // A task without a context yet is refused by the child (AdoptKernel).
      if (t->exited() || t->mm_ == nullptr || t->ctx_ == nullptr) continue;
      copies.push_back(mms.insert(t->mm_.get()).second);
      tasks.push_back(t);
    }
  }
  return k.RunOnParkedTasks(tasks, [&](Task& t, size_t i) -> absl::Status {
    if (!t.SaveFpState().ok()) {
      return absl::InternalError(absl::StrCat("task ", t.tid(), ": reading its FP state failed"));
    }
    return copies[i] ? k.platform().PrepareSeedFork(*t.ctx_) : absl::OkStatus();
  });
}

}  // namespace

absl::StatusOr<ForkResult> ForkSandbox(Kernel& k, const ForkOptions& opts,
                                       const ForkChildSetup& child_setup,
                                       const std::function<void()>& child_main) {
  {
    absl::MutexLock l(&k.mu());
    if (!k.park_requested() || !k.AllParked()) {
      return absl::FailedPreconditionError("the sandbox is not paused: pause it first (a seed)");
    }
  }
  for (auto it = forked_.begin(); it != forked_.end();) {
    it = waitpid(*it, nullptr, WNOHANG) != 0 ? forked_.erase(it) : it + 1;
  }
  // Whatever PrepareSeed made is the child's once it reported success, and
  // is killed on every other way out.
  bool child_took_copies = false;
  struct FinishSeed {
    Kernel& k;
    const bool& took;
    ~FinishSeed() { k.platform().FinishSeedFork(took); }
  } finish_seed{k, child_took_copies};
  if (absl::Status s = PrepareSeed(k); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("sandbox fork: ", s.message()));
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Fail("pipe", errno);
  pid_t pid;
  {
    // Held across fork(): no other thread of ours is inside the kernel's
    // lock then (the child starts it over anyway, see ReinitInForkChild).
    absl::MutexLock l(&k.mu());
    pid = fork();
  }
  if (pid == 0) {
    close(p[0]);
    ChildMain(k, opts, p[1], child_setup, child_main);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return Fail("forking the sentry", errno);
  }
  Report r;
  ssize_t n;
  do {
    n = read(p[0], &r, sizeof(r));
  } while (n < 0 && errno == EINTR);
  close(p[0]);
  if (n != static_cast<ssize_t>(sizeof(r))) {
    waitpid(pid, nullptr, 0);
    return absl::InternalError("the forked sandbox died before it reported");
  }
  if (!r.ok) {
    waitpid(pid, nullptr, 0);
    return absl::FailedPreconditionError(absl::StrCat("sandbox fork: ", r.message));
  }
  child_took_copies = true;
  // The seed's state now exists twice: its guest must re-seed too.
  k.BumpForkGeneration();
  ForkResult out;
  out.pid = r.pid;
  forked_.push_back(pid);  // reaped by a later ForkSandbox once it ends
  return out;
}

}  // namespace seedvisor::sentry
