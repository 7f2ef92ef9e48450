#include "sentry/sfork/spares.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
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
#include "sentry/sfork/dirty_pages.h"
#include "sentry/sfork/host_group.h"
#include "sentry/sfork/spare_warming.h"

namespace seedvisor::sentry {
namespace {

// ---- The anchor: between fork and its loop, async-signal-safe only ----

// Leads the process group of a forked sandbox's host processes (its zygote
// and stubs) and kills that group once the forked sentry is gone: when the
// last write end of its life line closes. Only that sentry holds one (the
// seed closes its own once the fork took the anchor; see Spare).
// Before that, it tells the seed which guest pages the fork's stub copies
// wrote (dirty_pages.h: the seed names them down the life line), through
// `report_fd` (-1: none).
[[noreturn]] void RunAnchor(int life_fd, int report_fd) {
  setpgid(0, 0);  // the seed does it too: whoever comes first
  // Hold nothing of the sentry's but the life line and the report socket.
  const unsigned lo = static_cast<unsigned>(report_fd < 0 ? life_fd : std::min(life_fd, report_fd));
  const unsigned hi = static_cast<unsigned>(std::max(life_fd, report_fd));
  if (lo > 0) syscall(SYS_close_range, 0, lo - 1, 0);
  if (hi > lo + 1) syscall(SYS_close_range, lo + 1, hi - 1, 0);
  syscall(SYS_close_range, hi + 1, ~0U, 0);
  AnchorReadPlan(life_fd);  // until the end of file: the forked sentry is gone
  AnchorScanAndReport(report_fd, getpid());
  kill(0, SIGKILL);  // our process group: every host process of the sandbox
  _exit(0);
}

// The caller's fork lock guards these (spares.h). Spares made but not yet
// here are being warmed (spare_warming.h).
std::deque<Spare> spares_;  // ready, oldest first

absl::Status Fail(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

// In a forked sentry: the write end of its own anchor's life line, held for
// its whole life, and that anchor (alive while the line is open, unless
// killed from outside) with a pidfd of it (WatchOwnAnchor), opened before
// the report, while the anchor is surely unreaped: the seed reaps it only
// once the fork is finished (LetGoOfSpare).
int own_life_fd_ = -1;
pid_t own_anchor_ = -1;
int own_anchor_pidfd_ = -1;
int own_anchor_pidfd_errno_ = 0;  // pidfd_open's, if it failed

// Our children that end on their own: forked sentries and anchors, reaped
// on the next fork or spare once they have.
std::vector<pid_t> forked_;

void ReapForked() {
  for (auto it = forked_.begin(); it != forked_.end();) {
    it = waitpid(*it, nullptr, WNOHANG) != 0 ? forked_.erase(it) : it + 1;
  }
}

// The anchor is a fork of the sentry: the OOM killer counts the resident
// pages it shares copy-on-write with the sentry as its own (oom_badness()
// reads the mm's rss), so it may pick the anchor as readily as the
// sentry; and with the anchor gone, nothing ends the fork's zygote and
// stubs once the sentry dies. It holds nothing the host needs back: never
// the OOM killer's victim (proc_pid_oom_score_adj(5)). Lowering it needs
// CAP_SYS_RESOURCE, which the sentry dropped, or the floor the sentry set
// while it held it and the anchor inherits (oom_floor.h): where
// neither is there, a Debug line says so, once.
void KeepFromOomKiller(pid_t anchor) {
  static bool told = false;  // under the caller's fork lock
  char path[48];
  snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", anchor);
  static constexpr char kNever[] = "-1000";
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  const bool ok =
      fd >= 0 && write(fd, kNever, sizeof(kNever) - 1) == static_cast<ssize_t>(sizeof(kNever) - 1);
  const int err = errno;
  if (fd >= 0) close(fd);
  if (!ok && !told) {
    told = true;
    Log::Debug("sandbox fork: the anchor's oom_score_adj stays as it was (%s): the OOM killer "
               "may pick it", std::strerror(err));
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
  return k.RunOnParkedTasks(tasks, [&](Task& t, size_t i) -> absl::Status {
    if (fp && !t.SaveFpState().ok()) {
      return absl::InternalError(absl::StrCat("task ", t.tid(), ": reading its FP state failed"));
    }
    return copies[i] > 0 ? k.platform().PrepareSeedFork(*t.ctx_, pgid, copies[i]) : absl::OkStatus();
  });
}

// Drops the spares that no longer fit the seed (it was resumed and paused
// again, or its tasks changed): all of them, since they are all of one
// state.
void DropStaleSpares(Kernel& k) {
  if (spares_.empty()) return;
  const Spare& s = spares_.front();
  if (!k.park_requested() || s.epoch != k.quiesce_epoch() || s.shape != Shape(LiveTasksByMm(k))) {
    DropSpares(k);
  }
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
  KeepFromOomKiller(anchor);
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
  if (own_life_fd_ >= 0) close(own_life_fd_);
  if (own_anchor_pidfd_ >= 0) close(own_anchor_pidfd_);
  own_life_fd_ = spare.life_fd;
  own_anchor_ = spare.anchor;
  own_anchor_pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, spare.anchor, 0));
  own_anchor_pidfd_errno_ = own_anchor_pidfd_ < 0 ? errno : 0;
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

absl::StatusOr<bool> PrepareForkSpare(Kernel& k, size_t want, const ForkProgress& progress,
                                      SpareWarmup* warm) {
  {
    absl::MutexLock l(&k.mu());
    if (!k.park_requested() || !k.AllParked()) return true;  // resumed meanwhile
  }
  DropStaleSpares(k);
  if (spares_.size() >= want) return true;
  if (absl::Status s = MakeSpare(k, progress, warm); !s.ok()) return s;
  return spares_.size() >= want;
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

bool WatchOwnAnchor() {
  if (own_anchor_ <= 0) return false;  // a booted sentry: its zygote is its child
  if (own_anchor_pidfd_ < 0) {
    // ESRCH: gone and reaped already (it cannot be: see own_anchor_pidfd_).
    if (own_anchor_pidfd_errno_ != ESRCH) {
      Log::Warning("sandbox fork: no pidfd of the sandbox's anchor %d (%s): nothing ends its host "
                   "processes should the anchor die first", own_anchor_,
                   std::strerror(own_anchor_pidfd_errno_));
      return false;
    }
  } else {
    // Readable once the anchor has exited (pidfd_open(2)).
    pollfd p = {.fd = own_anchor_pidfd_, .events = POLLIN, .revents = 0};
    for (int r; (r = poll(&p, 1, -1)) <= 0;) {
      if (r < 0 && errno != EINTR) {
        Log::Warning("sandbox fork: waiting on the sandbox's anchor %d: %s", own_anchor_,
                     std::strerror(errno));
        return false;
      }
    }
  }
  // Its group still bears its pid while a member lives, reaped or not.
  kill(-own_anchor_, SIGKILL);
  return true;
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
  if (own_anchor_ > 0) groups.push_back(own_anchor_);
  // A booted sentry's zygote and stubs: the zygote, our unreaped child,
  // leads that group. Otherwise they would end only after us (the zygote's
  // parent-death signal), and a kvm stub's exit tears down its VM, which
  // takes long under load: `seedsc delete` returned with them still there.
  if (own_anchor_ <= 0) groups.push_back(k.platform().HostProcessGroup());
  bool gone = true;
  for (pid_t p : ahead) {
    // SIGKILLed: gone at once (out of every cgroup once reaped).
    waitpid(p, nullptr, 0);
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
