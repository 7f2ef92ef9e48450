#include "sentry/sfork/spares.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <iterator>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/log.h"
#include "sentry/mm/mm.h"
#include "sentry/sfork/anchor.h"
#include "sentry/sfork/dirty_pages.h"
#include "sentry/sfork/host_group.h"
#include "sentry/sfork/spare_warming.h"

namespace seedvisor::sentry {
namespace {

// The caller's fork lock guards these (spares.h). Spares made but not yet
// here are being warmed (spare_warming.h).
std::deque<Spare> spares_;  // ready, oldest first

absl::Status Fail(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

// Our children that end on their own: forked sentries and anchors, reaped
// on the next fork or spare once they have.
std::vector<pid_t> forked_;

void ReapForked() {
  for (auto it = forked_.begin(); it != forked_.end();) {
    it = waitpid(*it, nullptr, WNOHANG) != 0 ? forked_.erase(it) : it + 1;
  }
}

std::map<MM*, size_t> Shape(const TasksByMm& by_mm) {
  std::map<MM*, size_t> shape;
  for (auto& [mm, tasks] : by_mm) shape[mm] = tasks.size();
  return shape;
}

}  // namespace

TasksByMm LiveTasksByMm(Kernel& k) {
  TasksByMm by_mm;
  absl::MutexLock l(&k.mu());
  for (auto& t : k.Tasks()) {
    // A task without a context yet is refused by the child (AdoptKernel).
    if (t->exited() || t->mm_ == nullptr || t->ctx_ == nullptr) continue;
    by_mm[t->mm_.get()].push_back(t);
  }
  return by_mm;
}

void LetGoOfSpare(Kernel& k, Spare& spare, bool child_took_it) {
  if (spare.life_fd >= 0) close(spare.life_fd);
  if (spare.ahead()) {
    // A fork made ahead that no fork took: it dies (the end of file on its
    // channel would end it too, once it waits), and its anchor with it.
    close(spare.channel);
    kill(spare.sentry, SIGKILL);
    forked_.push_back(spare.sentry);
    ForkTrace::Unmap(spare.trace);
  }
  if (spare.anchor > 0) {
    forked_.push_back(spare.anchor);
    k.platform().FinishSeedFork(spare.anchor, child_took_it);
  }
  spare = Spare{};
}

namespace {

void DropSpares(Kernel& k) {
  DropWarmingSpares();  // let go of once warmed
  while (!spares_.empty()) {
    LetGoOfSpare(k, spares_.front(), false);
    spares_.pop_front();
  }
}

// Every parked task saves its FP state on its own thread where the platform
// needs it (SeedForkOnTaskThreads), and one task per address space has the
// platform copy its stub into group `pgid`, with one parked thread per task.
absl::Status PrepareCopies(Kernel& k, const TasksByMm& by_mm, pid_t pgid) {
  std::vector<std::shared_ptr<Task>> tasks;
  std::vector<int> copies;  // copies[i] > 0: tasks[i] copies its address space, with that many threads
  for (auto& [mm, mm_tasks] : by_mm) {
    for (size_t i = 0; i < mm_tasks.size(); ++i) {
      tasks.push_back(mm_tasks[i]);
      copies.push_back(i == 0 ? static_cast<int>(mm_tasks.size()) : 0);
    }
  }
  const bool fp = k.platform().SeedForkOnTaskThreads();
  // By value: a task still at it when RunOnParkedTasks gives up (a stub
  // that does not answer) runs this after we have returned.
  absl::Status s = k.RunOnParkedTasks(tasks, [&k, fp, copies, pgid](Task& t, size_t i) -> absl::Status {
    if (fp && !t.SaveFpState().ok()) {
      return absl::InternalError(absl::StrCat("task ", t.tid(), ": reading its FP state failed"));
    }
    return copies[i] > 0 ? k.platform().PrepareSeedFork(*t.ctx_, pgid, copies[i]) : absl::OkStatus();
  });
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("copying the stubs on the parked tasks' threads: ",
                                             s.message()));
}

// Whether our child `pid` has exited; it stays unreaped (WNOWAIT).
bool ChildExited(pid_t pid) {
  siginfo_t info{};
  return pid > 0 && waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

// Drops the spares whose anchor has died (the OOM killer, a stray kill),
// or whose fork made ahead has: a fork that took one would end at once
// (WatchOwnAnchor) or never answer. Their groups go too (an unreaped
// anchor's pid is still its group's).
void DropDeadSpares(Kernel& k) {
  for (auto it = spares_.begin(); it != spares_.end();) {
    if (!ChildExited(it->anchor) && !(it->ahead() && ChildExited(it->sentry))) {
      ++it;
      continue;
    }
    Log::Debug("sandbox fork: a spare whose %s died is dropped",
               ChildExited(it->anchor) ? "anchor" : "fork made ahead");
    kill(-it->anchor, SIGKILL);
    LetGoOfSpare(k, *it, false);
    it = spares_.erase(it);
  }
}

// Drops the spares that no longer fit the seed (it was resumed and paused
// again, or its tasks changed): all of them, since they are all of one
// state; and the dead ones.
void DropStaleSpares(Kernel& k) {
  if (spares_.empty()) return;
  const Spare& s = spares_.front();
  if (!k.park_requested() || s.epoch != k.quiesce_epoch() || s.shape != Shape(LiveTasksByMm(k))) {
    DropSpares(k);
  }
  DropDeadSpares(k);
}

// Kills the forks made ahead of another seed version than `version`: they
// copied a seed that has changed since.
void DropAheadNotOf(Kernel& k, uint64_t version) {
  for (auto it = spares_.begin(); it != spares_.end();) {
    if (it->ahead() && it->version != version) {
      LetGoOfSpare(k, *it, false);
      it = spares_.erase(it);
    } else {
      ++it;
    }
  }
}

void Tell(const ForkProgress& progress, const char* step) {
  if (progress) progress(step);
}

// One more spare at the back of spares_, or with `warm` (if there is
// something to write ahead in it) held for the caller to warm and publish
// (spare_warming.h).
absl::Status MakeSpare(Kernel& k, const ForkProgress& progress, SpareWarmup* warm = nullptr) {
  ReapForked();
  PrimeAbseilForHostForks();
  auto by_mm = LiveTasksByMm(k);
  // Before the anchor's fork: it inherits the socket its report goes to.
  const int report_fd = DirtyPageLog::Get().report_fd();
  Tell(progress, "making a spare: forking its anchor");
  int life[2];
  if (pipe2(life, O_CLOEXEC) != 0) return Fail("pipe", errno);
  pid_t anchor = fork();
  if (anchor == 0) RunAnchor(life[0], report_fd);
  close(life[0]);
  if (anchor < 0) {
    close(life[1]);
    return Fail("forking the sandbox's anchor process", errno);
  }
  // Its group exists from here on (the anchor does the same; no race).
  setpgid(anchor, 0);
  Spare spare;
  spare.anchor = anchor;
  spare.life_fd = life[1];
  Tell(progress, "making a spare: forking its zygote from the seed's");
  absl::Status s = k.platform().PrepareForkZygote(anchor);
  if (s.ok()) {
    Tell(progress, "making a spare: copying the stubs on the parked tasks' threads");
    s = PrepareCopies(k, by_mm, anchor);
  }
  if (!s.ok()) {
    LetGoOfSpare(k, spare, false);
    return s;
  }
  spare.epoch = k.quiesce_epoch();
  spare.shape = Shape(by_mm);
  Tell(progress, "making a spare: naming its copies to its anchor");
  PlanSpareDirtyPages(k, by_mm, spare, warm);
  if (warm != nullptr && !warm->jobs.empty()) {
    HoldForWarming(std::move(spare), *warm);
  } else {
    spares_.push_back(std::move(spare));
  }
  return absl::OkStatus();
}

// Reaps our SIGKILLed child `p` by `deadline` (MonotonicNow()); false if it
// is still exiting then.
bool ReapChildBy(pid_t p, absl::Duration deadline) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, p, 0));
  if (fd >= 0) WaitPidfdsBy({fd}, deadline);
  const pid_t r = waitpid(p, nullptr, WNOHANG);
  return r == p || (r < 0 && errno == ECHILD);
}

}  // namespace

absl::StatusOr<Spare> TakeSpare(Kernel& k, const ForkProgress& progress,
                                const uint64_t* ahead_version) {
  ReapForked();
  DropStaleSpares(k);
  if (ahead_version != nullptr) {
    DropAheadNotOf(k, *ahead_version);
    auto it = std::find_if(spares_.begin(), spares_.end(), [](const Spare& s) { return s.ahead(); });
    if (it != spares_.end()) {
      Spare spare = std::move(*it);
      spares_.erase(it);
      return spare;
    }
  }
  auto plain = [](const Spare& s) { return !s.ahead(); };
  auto it = std::find_if(spares_.begin(), spares_.end(), plain);
  if (it == spares_.end()) {
    if (absl::Status s = MakeSpare(k, progress); !s.ok()) return s;
    it = std::find_if(spares_.begin(), spares_.end(), plain);
  }
  Spare spare = std::move(*it);
  spares_.erase(it);
  return spare;
}

std::optional<Spare> TakeSpareToForkAhead(Kernel& k, size_t want, uint64_t version) {
  ReapForked();
  DropStaleSpares(k);
  DropAheadNotOf(k, version);
  if (CountForksAhead() >= want) return std::nullopt;
  // The newest plain one: the oldest go first to forks that cannot take
  // one made ahead.
  for (auto it = spares_.rbegin(); it != spares_.rend(); ++it) {
    if (it->ahead()) continue;
    Spare spare = std::move(*it);
    spares_.erase(std::next(it).base());
    return spare;
  }
  return std::nullopt;
}

size_t AddForkAhead(Spare spare) {
  spares_.push_back(std::move(spare));
  return CountForksAhead();
}

size_t CountForksAhead() {
  return static_cast<size_t>(
      std::count_if(spares_.begin(), spares_.end(), [](const Spare& s) { return s.ahead(); }));
}

void PutBackSpare(Spare spare) { spares_.push_front(std::move(spare)); }

void AddForkedChild(pid_t pid) { forked_.push_back(pid); }

void AdoptSpareInForkChild(const Spare& spare) {
  // Our parent's anchor line is not ours to hold, nor are the lines of its
  // other spares; the spare's line is.
  AdoptOwnAnchor(spare.anchor, spare.life_fd);
  for (Spare& other : spares_) {
    close(other.life_fd);
    if (other.ahead()) {
      // A sibling made ahead: its channel and trace are the seed's.
      close(other.channel);
      ForkTrace::Unmap(other.trace);
    }
  }
  spares_.clear();
  LetGoOfWarmingInForkChild();
  forked_.clear();  // the seed's children
}

absl::StatusOr<bool> PrepareForkSpare(Kernel& k, size_t want, const uint64_t* ahead_version,
                                      const ForkProgress& progress, SpareWarmup* warm) {
  {
    absl::MutexLock l(&k.mu());
    if (!k.park_requested() || !k.AllParked()) return true;  // resumed meanwhile
  }
  DropStaleSpares(k);
  if (ahead_version != nullptr) DropAheadNotOf(k, *ahead_version);
  auto usable = [&] {
    if (ahead_version != nullptr) return spares_.size();
    return spares_.size() - CountForksAhead();
  };
  if (usable() >= want) return true;
  if (absl::Status s = MakeSpare(k, progress, warm); !s.ok()) return s;
  return usable() >= want;
}

bool PublishForkSpare(Kernel& k, SpareWarmup& warm, size_t want) {
  std::optional<WarmedSpare> taken = TakeWarmedSpare(warm.anchor);
  if (!taken) return spares_.size() >= want;
  WarmedSpare& w = *taken;
  bool fits = !w.dropped && w.spare.epoch == k.quiesce_epoch();
  if (fits) {
    absl::MutexLock l(&k.mu());
    fits = k.park_requested() && k.AllParked();
  }
  if (fits && w.spare.shape == Shape(LiveTasksByMm(k))) {
    spares_.push_back(std::move(w.spare));
  } else {
    LetGoOfSpare(k, w.spare, false);
  }
  return spares_.size() >= want;
}

void ReapEndedForks() { ReapForked(); }

void DropForkSpare(Kernel& k) {
  DropSpares(k);
  ReapForked();
}

bool EndHostProcesses(Kernel& k, absl::Duration deadline) {
  // The spares' anchors are our children, not reaped before the end of
  // this: each group still bears its anchor's pid, so killing it kills no
  // one else's.
  std::vector<pid_t> groups;
  std::vector<pid_t> ahead;  // forks made ahead: our children, killed by DropSpares
  for (const Spare& s : spares_) {
    groups.push_back(s.anchor);
    if (s.ahead()) ahead.push_back(s.sentry);
  }
  // Being warmed: killed here (never while WarmForkSpare writes into them,
  // nor written into after), let go of by PublishForkSpare (DropSpares).
  KillWarmingSpares(&groups);
  DropSpares(k);
  // Our own anchor lives while we hold its line (only a kill from outside
  // ends it sooner): then it still leads its group.
  const pid_t own_anchor = OwnAnchor();
  if (own_anchor > 0) groups.push_back(own_anchor);
  // A booted sentry's zygote and stubs: the zygote, our unreaped child,
  // leads that group. Otherwise they would end only after us (the zygote's
  // parent-death signal), and a kvm stub's exit tears down its VM, which
  // takes long under load: `seedsc delete` returned with them still there.
  if (own_anchor <= 0) groups.push_back(k.platform().HostProcessGroup());
  bool gone = true;
  for (pid_t p : ahead) {
    // SIGKILLed (out of every cgroup once reaped); a kvm one tears its VM
    // down in its exit, which takes long under load: by the deadline, or
    // left to ReapForked.
    if (!ReapChildBy(p, deadline)) {
      Log::Warning("a fork made ahead (pid %d) still exiting at the end of the sandbox", p);
      gone = false;
      continue;
    }
    forked_.erase(std::remove(forked_.begin(), forked_.end(), p), forked_.end());
  }
  for (pid_t g : groups) {
    if (!KillGroupAndWait(g, deadline)) {
      Log::Warning("host processes of group %d still there at the end of the sandbox: %s", g,
                   DescribeGroup(g));
      gone = false;
    }
  }
  ReapForked();
  return gone;
}

}  // namespace seedvisor::sentry
