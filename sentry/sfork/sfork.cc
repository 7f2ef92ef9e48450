#include "sentry/sfork/sfork.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <new>
#include <set>

#include "absl/base/internal/cycleclock.h"
#include "absl/base/internal/low_level_scheduling.h"
#include "absl/base/internal/sysinfo.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/seed_copies.h"
#include "sentry/base/log.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/sfork/dirty_pages.h"
#include "sentry/sfork/fork_diagnosis.h"
#include "sentry/sfork/host_group.h"
#include "sentry/mm/mm.h"
#include "sentry/socket/netns.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {
namespace {

// What the child tells the seed, in one pipe write (< PIPE_BUF: atomic).
struct Report {
  int32_t ok = 0;
  pid_t pid = 0;
  // CLOCK_MONOTONIC when each phase ended (0: not reached).
  int64_t phase_end[static_cast<int>(ForkPhase::kCount)] = {};
  char message[512] = {};
};
static_assert(sizeof(Report) < PIPE_BUF);

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

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// Marks the end of phase `p` in the child's report.
void EndPhase(Report& r, ForkPhase p) { r.phase_end[static_cast<int>(p)] = MonotonicNs(); }

// ---- MAP_SHARED memory across a fork ----
//
// Guest MAP_SHARED memory that a sandbox can write is always a file whose
// data is a host memfd of the sentry: tmpfs and memfd files, shared
// anonymous memory and SysV shm segments (both shmem files, fs/tmpfs/
// shmem.h). Every process of the seed that shares such memory maps that one
// memfd; a copy of its stub made by a host fork still does. So the fork, for
// each such file, before it reports (the seed may run again right after):
//   1. copies the data into a memfd of its own that takes the old one's fd
//      number (TmpfsInode::WritableMemfd: the tmpfs generation bump makes
//      every memfd count as shared first) — an eager copy of the bytes in
//      use (holes stay holes), which is the price of MAP_SHARED memory in a
//      seed (bench/RESULTS.md);
//   2. marks each mm that maps one: the first of its tasks to attach a
//      context maps every such VMA again, same address and protection, from
//      the new memfd (MM::RemapSharedAfterFork), before any of them runs.
// Processes of the fork that shared memory keep sharing it (one memfd, one
// file), and share nothing with the seed or a sibling. The seed keeps its
// memfds (KeepMappedAfterFork, in FinishFork).
//
// A file mapped both shared and privately is refused: its private pages not
// yet written would follow the seed's later writes to the old memfd.
struct SharedMappings {
  std::vector<FileRef> files;  // one per file description
  std::set<MM*> mms;
};

absl::Status FindSharedMappings(const std::map<MM*, std::vector<std::shared_ptr<Task>>>& by_mm,
                                SharedMappings* out) {
  // A shared mapping of a read-only host file shares only the host's page
  // cache, which no sandbox can write: it may stay as it is.
  auto copied = [](const Vma& v) { return v.file == nullptr || !v.file->DataImmutableInSandbox(); };
  std::set<FileDescription*> seen;
  std::set<int> shared_fds;  // the host objects, by the sentry's fd for them
  for (auto& [mm, mm_tasks] : by_mm) {
    for (const Vma& v : mm->Vmas()) {
      if (!(v.flags & MAP_SHARED) || !copied(v)) continue;
      if (v.file == nullptr) {
        return absl::UnimplementedError(absl::StrCat(
            "process ", mm_tasks[0]->tgid(), " has an anonymous MAP_SHARED mapping without a "
            "shmem object, which sandbox fork cannot copy"));
      }
      out->mms.insert(mm);
      if (seen.insert(v.file.get()).second) out->files.push_back(v.file);
      if (Result<int> fd = v.file->MappableFd(); fd.ok()) shared_fds.insert(*fd);
    }
  }
  for (auto& [mm, mm_tasks] : by_mm) {
    for (const Vma& v : mm->Vmas()) {
      if ((v.flags & MAP_SHARED) || v.file == nullptr || !copied(v)) continue;
      Result<int> fd = v.file->MappableFd();
      if (fd.ok() && shared_fds.count(*fd) != 0) {
        return absl::UnimplementedError(absl::StrCat(
            "process ", mm_tasks[0]->tgid(), " maps ", v.name,
            " privately while it is mapped MAP_SHARED too: sandbox fork cannot copy that yet"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Fail(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

// Steps 1-3 of sfork.h, in the child.
absl::Status AdoptKernel(Kernel& k, const ForkOptions& opts, pid_t anchor,
                         std::vector<pid_t>* pids, Report& r) {
  ForkChildStep("making the kernel's locks its own");
  k.ReinitInForkChild();
  ForkChildStep("resetting the loopback network");
  ResetLoopbackNetworkInForkChild();
  EndPhase(r, ForkPhase::kReinit);

  ForkChildStep("adopting the spare's zygote");
  pids->push_back(anchor);
  absl::StatusOr<pid_t> zygote = k.platform().AdoptInForkChild(anchor);
  if (!zygote.ok()) return zygote.status();
  pids->push_back(*zygote);
  EndPhase(r, ForkPhase::kZygote);

  ForkChildStep("listing the tasks");
  std::vector<std::shared_ptr<Task>> tasks;
  {
    absl::MutexLock l(&k.mu());
    for (auto& t : k.Tasks()) {
      if (!t->exited()) tasks.push_back(t);
    }
  }
  // One copy per address space, made ahead by the seed (MakeSpare).
  std::map<MM*, std::vector<std::shared_ptr<Task>>> by_mm;
  for (auto& t : tasks) {
    if (t->mm_ == nullptr || t->ctx_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("task ", t->tid(), " has no address space yet (still starting)"));
    }
    by_mm[t->mm_.get()].push_back(t);
  }
  ForkChildStep("finding shared mappings");
  SharedMappings shared;
  if (absl::Status s = FindSharedMappings(by_mm, &shared); !s.ok()) return s;
  for (auto& [mm, mm_tasks] : by_mm) {
    ForkChildStep("adopting an address space's stub copy and its threads");
    std::shared_ptr<platform::AddressSpace> old = mm->shared_address_space();
    absl::StatusOr<platform::ForkedAddressSpace> copy = k.platform().TakeSeedCopy(*old, anchor);
    if (!copy.ok()) return copy.status();
    pids->push_back(copy->as->host_pid());
    if (copy->threads.size() != mm_tasks.size()) {
      return absl::InternalError(absl::StrCat("process ", mm_tasks[0]->tgid(), ": the seed prepared ",
                                              copy->threads.size(), " threads for ",
                                              mm_tasks.size(), " tasks"));
    }
    for (size_t i = 0; i < mm_tasks.size(); ++i) {
      if (absl::Status s = mm_tasks[i]->AdoptInForkChild(copy->threads[i]); !s.ok()) return s;
    }
    old->AbandonInForkChild();
    mm->ReplaceAddressSpace(copy->as);
    mm->WipeOnSandboxFork();
  }
  EndPhase(r, ForkPhase::kAddressSpaces);

  // Files: every description reachable from a task's fd table or mapping.
  ForkChildStep("adopting the open files");
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
  int walk_tgid = 0;  // whose files the walk is at, for messages
  fctx.adopt = [&](const FileRef& f) { return adopt(f, walk_tgid); };
  for (auto& t : tasks) {
    walk_tgid = t->tgid();
    if (t->fds_ != nullptr && tables.insert(t->fds_.get()).second) {
      for (auto& [fd, e] : t->fds_->Snapshot()) {
        if (absl::Status s = adopt(e.file, t->tgid()); !s.ok()) return s;
      }
    }
  }
  for (auto& [mm, mm_tasks] : by_mm) {
    walk_tgid = mm_tasks[0]->tgid();
    for (const Vma& v : mm->Vmas()) {
      if (absl::Status s = adopt(v.file, mm_tasks[0]->tgid()); !s.ok()) return s;
    }
  }
  ForkChildStep("adopting the open files: deferred steps");
  for (auto& fn : fctx.deferred) {
    if (absl::Status s = fn(); !s.ok()) return s;
  }
  // Uniqueness: the guest may learn it was forked and re-seed. After the
  // files: the watchers now poll readiness fds of their own.
  ForkChildStep("bumping the fork generation");
  k.BumpForkGeneration();
  // Once nothing else can refuse the fork: tmpfs data becomes copy-on-write
  // in the seed and here (tmpfs.h).
  ForkChildStep("making tmpfs data copy-on-write");
  absl::Status s = AdoptTmpfsInForkChild();
  // Then what the sandbox maps MAP_SHARED becomes its own, now (see
  // SharedMappings): copied before we report, remapped before a task runs.
  for (size_t i = 0; s.ok() && i < shared.files.size(); ++i) {
    s = shared.files[i]->UnshareMappedInForkChild();
  }
  if (s.ok()) {
    for (MM* mm : shared.mms) mm->MarkSharedForRemap();
  }
  EndPhase(r, ForkPhase::kFiles);
  ForkChildStep("adopted the kernel");
  return s;
}

// ---- Spares: what a fork needs, made ahead in the quiesced seed ----
//
// A fork needs host processes of its own: an anchor, a zygote, a copy of
// every guest address space's stub. Making them costs most of a fork (each
// a host fork or a ptrace injection), and none of it depends on the fork's
// caller, so the seed makes them while it waits (PrepareForkSpare: after
// pause and after each fork, a pool of a few) and a fork only adopts one.
// They are copies of the seed's state at the time, which a quiesced seed
// keeps: a spare is valid while the kernel stays in the same quiesce epoch
// with the same address spaces and tasks. The platform keeps its part of
// each spare under the spare's anchor pid (Platform::PrepareForkZygote ...).
//
// The anchor is the seed's child, but it belongs to the fork: its life line
// is a pipe whose only write end ends up in the forked sentry (the seed
// closes its own right after the host fork; the anchor holds only the read
// end; a forked sentry closes its inherited copies of every other spare's
// line, and of its parent's, at once). End of file on it means the forked
// sentry is gone, however it died.

struct Spare {
  uint64_t epoch = 0;
  std::map<MM*, size_t> shape;  // the address spaces it copied, and their tasks
  pid_t anchor = -1;
  int life_fd = -1;  // the write end of the anchor's life line
};
// The caller's fork lock guards these (StartFork, FinishFork,
// PrepareForkSpare, DropForkSpare).
std::deque<Spare> spares_;  // ready, oldest first
// Spares made but not yet in spares_: their copies are having the pages
// earlier forks wrote written ahead, outside the fork lock (SpareWarmup).
// `dropped`: the seed dropped its spares meanwhile (resumed, or ending).
struct Warming {
  Spare spare;
  bool dropped = false;
};
std::map<pid_t, Warming> warming_;  // by anchor
// The warming spares whose processes EndHostProcesses killed: their pids
// may go to other processes, so WarmForkSpare writes into them no more.
// Held by WarmForkSpare while it writes, and by that kill.
absl::Mutex warm_mu_;
std::set<pid_t> killed_warming_ ABSL_GUARDED_BY(warm_mu_);
// The report fds and trace pages of forks between StartFork and FinishFork:
// a later fork's child closes and unmaps its copies.
std::set<int> in_flight_fds_;
std::set<ForkTrace*> in_flight_traces_;

// In a forked sentry: the write end of its own anchor's life line, held for
// its whole life, and that anchor (alive while the line is open).
int own_life_fd_ = -1;
pid_t own_anchor_ = -1;

// Our children that end on their own: forked sentries and anchors, reaped
// on the next fork or spare once they have.
std::vector<pid_t> forked_;

void ReapForked() {
  for (auto it = forked_.begin(); it != forked_.end();) {
    it = waitpid(*it, nullptr, WNOHANG) != 0 ? forked_.erase(it) : it + 1;
  }
}

// The live tasks of `k` with an address space and a context, by address
// space.
std::map<MM*, std::vector<std::shared_ptr<Task>>> TasksByMm(Kernel& k) {
  std::map<MM*, std::vector<std::shared_ptr<Task>>> by_mm;
  absl::MutexLock l(&k.mu());
  for (auto& t : k.Tasks()) {
    // A task without a context yet is refused by the child (AdoptKernel).
    if (t->exited() || t->mm_ == nullptr || t->ctx_ == nullptr) continue;
    by_mm[t->mm_.get()].push_back(t);
  }
  return by_mm;
}

std::map<MM*, size_t> Shape(const std::map<MM*, std::vector<std::shared_ptr<Task>>>& by_mm) {
  std::map<MM*, size_t> shape;
  for (auto& [mm, tasks] : by_mm) shape[mm] = tasks.size();
  return shape;
}

// The seed lets go of `spare` (no longer in spares_): it closes its end of
// the anchor's life line, if still open, and reaps the anchor once it
// ends. If a fork took the spare, the anchor and what the platform made are
// the fork's (the life line's other end is in the forked sentry);
// otherwise closing the line ends the anchor, which kills its group (the
// spare zygote and stub copies), and the platform kills what it made
// through its pidfds too.
void LetGoOfSpare(Kernel& k, Spare& spare, bool child_took_it) {
  if (spare.life_fd >= 0) close(spare.life_fd);
  if (spare.anchor > 0) {
    forked_.push_back(spare.anchor);
    k.platform().FinishSeedFork(spare.anchor, child_took_it);
  }
  spare = Spare{};
}

void DropSpares(Kernel& k) {
  for (auto& [anchor, w] : warming_) w.dropped = true;  // let go of once warmed
  while (!spares_.empty()) {
    LetGoOfSpare(k, spares_.front(), false);
    spares_.pop_front();
  }
}

// Every parked task saves its FP state on its own thread where the platform
// needs it (SeedForkOnTaskThreads), and one task per address space has the
// platform copy its stub into group `pgid`, with one parked thread per task.
absl::Status PrepareCopies(Kernel& k, const std::map<MM*, std::vector<std::shared_ptr<Task>>>& by_mm,
                           pid_t pgid) {
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
  if (!k.park_requested() || s.epoch != k.quiesce_epoch() || s.shape != Shape(TasksByMm(k))) {
    DropSpares(k);
  }
}

void Tell(const ForkProgress& progress, const char* step) {
  if (progress) progress(step);
}

// Guest memory whose copy-on-write pages are learned and written ahead
// (dirty_pages.h): private anonymous writable memory (heap, stacks,
// allocator arenas). Not a file's private pages (written ahead, a page not
// yet written would stop following the file), nor what a fork wipes.
bool Prebreakable(const Vma& v) {
  return v.file == nullptr && (v.flags & MAP_PRIVATE) != 0 && (v.prot & PROT_WRITE) != 0 &&
         !v.wipeonfork;
}

bool InRanges(const std::vector<std::pair<uint64_t, uint64_t>>& ranges, uint64_t page) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(),
                             std::pair<uint64_t, uint64_t>(page, ~uint64_t{0}));
  return it != ranges.begin() && page < std::prev(it)->second;
}

// Names the spare's stub copies and their prebreakable ranges to its anchor
// (which reports what its fork wrote there) and, with `warm`, says what to
// write ahead in them: what the last fork that reported wrote.
void PlanDirtyPages(Kernel& k, const std::map<MM*, std::vector<std::shared_ptr<Task>>>& by_mm,
                    const Spare& spare, SpareWarmup* warm) {
  auto* copies = dynamic_cast<platform::SeedCopies*>(&k.platform());
  if (copies == nullptr) return;  // a platform with no such copies: nothing to learn
  DirtyPageLog& log = DirtyPageLog::Get();
  log.Drain();
  std::vector<ScanTarget> targets;
  for (const auto& [mm, tasks] : by_mm) {
    std::shared_ptr<platform::AddressSpace> as = mm->shared_address_space();
    const pid_t pid = as != nullptr ? copies->SeedCopyProcess(*as, spare.anchor) : -1;
    if (pid <= 0) continue;
    ScanTarget t{.tag = reinterpret_cast<uint64_t>(mm), .pid = pid, .ranges = {}};
    for (const Vma& v : mm->Vmas()) {
      if (Prebreakable(v)) t.ranges.emplace_back(v.start, v.end);
    }
    const std::vector<uint64_t>* learned = warm != nullptr ? log.Pages(t.tag) : nullptr;
    if (learned != nullptr) {
      std::vector<uint64_t> pages;
      for (uint64_t p : *learned) {
        if (InRanges(t.ranges, p)) pages.push_back(p);
      }
      if (!pages.empty()) warm->jobs.emplace_back(pid, std::move(pages));
    }
    targets.push_back(std::move(t));
  }
  const std::string plan = EncodeScanPlan(targets);
  for (size_t at = 0; at < plan.size();) {
    const ssize_t n = write(spare.life_fd, plan.data() + at, plan.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the anchor is gone: the spare fails later
    at += static_cast<size_t>(n);
  }
}

// One more spare at the back of spares_, or with `warm` (if there is
// something to write ahead in it) in warming_ for the caller to warm and
// publish.
absl::Status MakeSpare(Kernel& k, const ForkProgress& progress, SpareWarmup* warm = nullptr) {
  ReapForked();
  PrimeAbseilForHostForks();
  auto by_mm = TasksByMm(k);
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
  PlanDirtyPages(k, by_mm, spare, warm);
  if (warm != nullptr && !warm->jobs.empty()) {
    warm->anchor = spare.anchor;
    warming_[warm->anchor] = Warming{std::move(spare), false};
  } else {
    spares_.push_back(std::move(spare));
  }
  return absl::OkStatus();
}

[[noreturn]] void ChildMain(Kernel& k, const ForkOptions& opts, int report_fd, const Spare& spare,
                            ForkTrace* trace, const ForkChildSetup& child_setup,
                            const std::function<void()>& child_main) {
  Report r;
  EndPhase(r, ForkPhase::kSentryFork);
  SetForkChildTrace(trace);
  ForkChildStep("letting go of the seed's spares and forks in flight");
  // Our parent's anchor line is not ours to hold, nor are the lines of its
  // other spares or the reports of its other forks in flight; the spare's
  // line is.
  if (own_life_fd_ >= 0) close(own_life_fd_);
  own_life_fd_ = spare.life_fd;
  own_anchor_ = spare.anchor;
  const pid_t anchor = spare.anchor;
  for (Spare& other : spares_) close(other.life_fd);
  spares_.clear();
  for (auto& [other, w] : warming_) close(w.spare.life_fd);
  warming_.clear();
  // SAFETY: this process has one thread; the seed's WarmForkSpare may have
  // held the lock at the fork.
  new (&warm_mu_) absl::Mutex;
  {
    absl::MutexLock l(&warm_mu_);
    killed_warming_.clear();
  }
  DirtyPageLog::Get().ResetInForkChild();
  for (int fd : in_flight_fds_) close(fd);
  in_flight_fds_.clear();
  for (ForkTrace* other : in_flight_traces_) ForkTrace::Unmap(other);
  in_flight_traces_.clear();
  forked_.clear();  // the seed's children
  std::vector<pid_t> pids = {getpid()};
  absl::Status s = AdoptKernel(k, opts, anchor, &pids, r);
  if (s.ok()) {
    // The tasks' new host threads attach their contexts and park (the
    // kernel is still quiesced: the caller's child_main resumes it, or
    // not), on the other CPU while the caller's setup runs here.
    ForkChildStep("starting the tasks' host threads");
    std::vector<std::shared_ptr<Task>> tasks;
    {
      absl::MutexLock l(&k.mu());
      tasks = k.Tasks();
    }
    for (auto& t : tasks) {
      if (!t->exited() && s.ok()) s = t->StartForked();
    }
  }
  EndPhase(r, ForkPhase::kStartTasks);
  r.pid = getpid();
  ForkChildStep("the caller's setup (control socket, cgroup, stdio)");
  if (s.ok()) s = child_setup(pids, &r.pid);
  EndPhase(r, ForkPhase::kSetup);
  ForkChildStep(opts.test_stall_child ? "stalling before the report (test hook)"
                                      : "writing the report");
  if (opts.test_stall_child) {
    // A hung fork, for the seed's deadline (test only; poll: the sentry's
    // seccomp policy allows it).
    for (;;) poll(nullptr, 0, -1);
  }
  r.ok = s.ok() ? 1 : 0;
  std::string msg(s.message());
  std::strncpy(r.message, msg.c_str(), sizeof(r.message) - 1);
  const ssize_t n = write(report_fd, &r, sizeof(r));
  ForkChildStep(n == static_cast<ssize_t>(sizeof(r)) ? "reported" : "writing the report failed");
  close(report_fd);
  // The seed's to read and unmap from here on; ours goes.
  SetForkChildTrace(nullptr);
  ForkTrace::Unmap(trace);
  if (!s.ok()) {
    // Take the anchor's group (our stubs) along; the seed is untouched.
    kill(-anchor, SIGKILL);
    _exit(1);
  }
  child_main();
  _exit(0);
}

// In the seed: whether the child's report (or its end: the child died)
// arrived on `fd` before CLOCK_MONOTONIC reached `deadline_ns`.
bool AwaitReport(int fd, int64_t deadline_ns) {
  for (;;) {
    const int64_t left_ns = deadline_ns - MonotonicNs();
    if (left_ns <= 0) return false;
    pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    const int r = poll(&pfd, 1, static_cast<int>((left_ns + 999'999) / 1'000'000));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let the read say what is wrong
  }
}

// In the seed: a forked sentry that did not report in time dies, and with
// it every host process of its sandbox (its anchor's process group: the
// zygote, the stub copies, the anchor). The seed's own processes are in no
// such group. Reaping the sentry and the anchor is the caller's.
void KillUnreported(pid_t sentry, pid_t anchor) {
  kill(sentry, SIGKILL);
  if (anchor > 0) kill(-anchor, SIGKILL);
}

// In the seed, once a fork reported (or failed): what the seed maps
// MAP_SHARED stays its own (SharedMappings).
void KeepSharedMappings(Kernel& k) {
  std::set<std::shared_ptr<MM>> mms;
  {
    absl::MutexLock l(&k.mu());
    for (auto& t : k.Tasks()) {
      if (!t->exited() && t->mm_ != nullptr) mms.insert(t->mm_);
    }
  }
  for (auto& mm : mms) {
    for (const Vma& v : mm->Vmas()) {
      if ((v.flags & MAP_SHARED) && v.file != nullptr) v.file->KeepMappedAfterFork();
    }
  }
}

}  // namespace

void PrimeAbseilForHostForks() {
  // Called by the threads that host-fork (before ForkHolding's lock, in
  // MakeSpare under the caller's fork lock). Two callers at once are
  // harmless: abseil's once flags serialize them, and this flag only skips
  // the calls once they have all been made.
  static std::atomic<bool> primed{false};
  if (primed.load(std::memory_order_acquire)) return;
  absl::base_internal::NumCPUs();
  // NominalCPUFrequency: without /sys's tsc_freq_khz (this host), abseil
  // measures the TSC across sleeps of 1, 2, 4 ... ms.
  absl::base_internal::CycleClock::Frequency();
  absl::synchronization_internal::MutexDelay(0, 0);  // the Mutex globals
  primed.store(true, std::memory_order_release);
}

pid_t ForkHolding(absl::Mutex& mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  PrimeAbseilForHostForks();
  mu.Lock();
  const pid_t pid = fork();
  // Only the parent unlocks. In the child the lock word is the seed's as the
  // fork copied it: held by us, and perhaps in the middle of another seed
  // thread's update: a thread that queues on a held absl::Mutex sets a spin
  // bit in its word while it edits the waiter list. An Unlock in the child
  // waited forever for that bit (issue 9: a fork of the seed that never
  // reported, spinning in "unlocking the kernel lock it was forked under",
  // when the seed's parked tasks were still re-taking the kernel lock after
  // making the spare this fork took). The child makes the Mutex anew
  // (Kernel::ReinitInForkChild) before anything locks it.
  if (pid != 0) mu.Unlock();
  return pid;
}

const char* ForkPhaseName(ForkPhase p) {
  switch (p) {
    case ForkPhase::kPrepare: return "prepare";
    case ForkPhase::kSentryFork: return "sentry_fork";
    case ForkPhase::kReinit: return "reinit";
    case ForkPhase::kZygote: return "zygote";
    case ForkPhase::kAddressSpaces: return "address_spaces";
    case ForkPhase::kFiles: return "files";
    case ForkPhase::kStartTasks: return "start_tasks";
    case ForkPhase::kSetup: return "setup";
    case ForkPhase::kReport: return "report";
    case ForkPhase::kCount: break;
  }
  return "?";
}

void PrepareForSandboxForks() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
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

void WarmForkSpare(SpareWarmup& warm) {
  absl::MutexLock l(&warm_mu_);
  if (killed_warming_.contains(warm.anchor)) return;
  for (const auto& [pid, pages] : warm.jobs) warm.pages_written += PrebreakPages(pid, pages);
}

bool PublishForkSpare(Kernel& k, SpareWarmup& warm, size_t want) {
  auto it = warming_.find(warm.anchor);
  if (it == warming_.end()) return spares_.size() >= want;
  Warming w = std::move(it->second);
  warming_.erase(it);
  {
    absl::MutexLock l(&warm_mu_);
    killed_warming_.erase(warm.anchor);
  }
  bool fits = !w.dropped && w.spare.epoch == k.quiesce_epoch();
  if (fits) {
    absl::MutexLock l(&k.mu());
    fits = k.park_requested() && k.AllParked();
  }
  if (fits && w.spare.shape == Shape(TasksByMm(k))) {
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
  for (const Spare& s : spares_) groups.push_back(s.anchor);
  // Being warmed: killed here (never while WarmForkSpare writes into them,
  // nor written into after), let go of by PublishForkSpare (DropSpares).
  {
    absl::MutexLock l(&warm_mu_);
    for (const auto& [anchor, w] : warming_) {
      killed_warming_.insert(anchor);
      kill(-anchor, SIGKILL);
      groups.push_back(anchor);
    }
  }
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

absl::StatusOr<PendingFork> StartFork(Kernel& k, const ForkOptions& opts,
                                      const ForkChildSetup& child_setup,
                                      const std::function<void()>& child_main) {
  {
    absl::MutexLock l(&k.mu());
    if (!k.park_requested() || !k.AllParked()) {
      return absl::FailedPreconditionError("the sandbox is not paused: pause it first (a seed)");
    }
    // A tracee parks inside its ptrace-stop, in the middle of a syscall or
    // an event, on its host thread's stack: a fork could not resume it
    // there. Refuse, naming the pair.
    for (const std::shared_ptr<Task>& t : k.Tasks()) {
      if (const Task* tracer = t->ptrace().tracer) {
        return absl::FailedPreconditionError(absl::StrCat(
            "task ", t->tid(), " is traced by task ", tracer->tid(),
            " (ptrace): a sandbox fork cannot carry a trace; detach it first"));
      }
    }
  }
  PendingFork f;
  f.start_ns = MonotonicNs();
  ReapForked();
  DropStaleSpares(k);
  if (spares_.empty()) {
    if (absl::Status s = MakeSpare(k, opts.progress); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("sandbox fork: ", s.message()));
    }
  }
  Spare spare = std::move(spares_.front());
  spares_.pop_front();
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    const int err = errno;
    spares_.push_front(std::move(spare));
    return Fail("pipe", err);
  }
  f.prepared_ns = MonotonicNs();
  // Where the child is on its way to the report, should it never come.
  f.trace = ForkTrace::Map();
  Tell(opts.progress, "host-forking the sentry");
  const pid_t pid = ForkHolding(k.mu());
  if (pid == 0) {
    close(p[0]);
    ChildMain(k, opts, p[1], spare, f.trace, child_setup, child_main);
  }
  close(p[1]);
  // The anchor's line is the child's alone from here on: if the child dies,
  // however early, its anchor takes the fork's host processes along.
  close(spare.life_fd);
  spare.life_fd = -1;
  f.anchor = spare.anchor;
  if (pid < 0) {
    const int err = errno;
    close(p[0]);
    ForkTrace::Unmap(f.trace);
    LetGoOfSpare(k, spare, false);
    return Fail("forking the sentry", err);
  }
  f.sentry = pid;
  // What its guest writes in the copies, its anchor reports at its end.
  if (opts.learn_dirty_pages) DirtyPageLog::Get().Expect(f.anchor);
  f.report_fd = p[0];
  in_flight_fds_.insert(p[0]);
  if (f.trace != nullptr) in_flight_traces_.insert(f.trace);
  f.report_deadline = opts.report_deadline;
  f.deadline_ns = MonotonicNs() + absl::ToInt64Nanoseconds(opts.report_deadline);
  return f;
}

void AwaitFork(PendingFork& f) {
  Report r;
  f.in_time = AwaitReport(f.report_fd, f.deadline_ns);
  ssize_t n = -1;
  if (f.in_time) {
    do {
      n = read(f.report_fd, &r, sizeof(r));
    } while (n < 0 && errno == EINTR);
  } else {
    // What it was doing, before it is gone.
    f.diagnosis = DescribeUnreportedFork(f.sentry, f.anchor, f.trace, f.report_fd);
    KillUnreported(f.sentry, f.anchor);
  }
  r.phase_end[static_cast<int>(ForkPhase::kReport)] = MonotonicNs();
  f.reported = n == static_cast<ssize_t>(sizeof(r));
  f.ok = f.reported && r.ok;
  f.pid = r.pid;
  r.message[sizeof(r.message) - 1] = '\0';
  f.message = r.message;
  std::memcpy(f.phase_end, r.phase_end, sizeof(f.phase_end));
}

void KillFinishedFork(const PendingFork& f) { KillUnreported(f.sentry, f.anchor); }

absl::StatusOr<ForkResult> FinishFork(Kernel& k, PendingFork& f) {
  in_flight_fds_.erase(f.report_fd);
  close(f.report_fd);
  f.report_fd = -1;
  in_flight_traces_.erase(f.trace);
  ForkTrace::Unmap(f.trace);
  f.trace = nullptr;
  // The spare is the child's now, or dead: either way not ours any more.
  Spare spare;
  spare.anchor = f.anchor;
  LetGoOfSpare(k, spare, f.ok);
  // Whatever became of the fork, what the seed maps MAP_SHARED stays its
  // own (the fork may have counted it shared before it failed).
  KeepSharedMappings(k);
  if (!f.ok) {
    waitpid(f.sentry, nullptr, 0);
    if (!f.in_time) {
      return absl::DeadlineExceededError(absl::StrCat(
          "sandbox fork: the forked sandbox did not report within ",
          absl::FormatDuration(f.report_deadline),
          "; it was killed"));
    }
    if (!f.reported) return absl::InternalError("the forked sandbox died before it reported");
    return absl::FailedPreconditionError(absl::StrCat("sandbox fork: ", f.message));
  }
  // The seed's state now exists twice: its guest must re-seed too.
  k.BumpForkGeneration();
  ForkResult out;
  out.pid = f.pid;
  int64_t last = f.start_ns;
  for (int i = 0; i < static_cast<int>(ForkPhase::kCount); ++i) {
    int64_t end = i == static_cast<int>(ForkPhase::kPrepare) ? f.prepared_ns : f.phase_end[i];
    out.phase_ns[i] = end - last;
    last = end;
  }
  forked_.push_back(f.sentry);  // reaped by a later fork once it ends
  return out;
}

}  // namespace seedvisor::sentry
