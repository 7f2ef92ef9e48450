#include "sentry/sfork/sfork.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/base/internal/cycleclock.h"
#include "absl/base/internal/low_level_scheduling.h"
#include "absl/base/internal/sysinfo.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/mm/mm.h"
#include "sentry/sfork/dirty_pages.h"
#include "sentry/sfork/fork_diagnosis.h"
#include "sentry/sfork/spares.h"
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

absl::Status FindSharedMappings(const TasksByMm& by_mm, SharedMappings* out) {
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
  TasksByMm by_mm;
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

// The report fds and trace pages of forks between StartFork and FinishFork:
// a later fork's child closes and unmaps its copies.
std::set<int> in_flight_fds_;
std::set<ForkTrace*> in_flight_traces_;

[[noreturn]] void ChildMain(Kernel& k, const ForkOptions& opts, int report_fd, const Spare& spare,
                            ForkTrace* trace, const ForkChildSetup& child_setup,
                            const std::function<void()>& child_main) {
  Report r;
  EndPhase(r, ForkPhase::kSentryFork);
  SetForkChildTrace(trace);
  ForkChildStep("letting go of the seed's spares and forks in flight");
  // The spare is ours; the seed's other spares and children are not, nor
  // are the reports of its other forks in flight.
  AdoptSpareInForkChild(spare);
  const pid_t anchor = spare.anchor;
  for (int fd : in_flight_fds_) close(fd);
  in_flight_fds_.clear();
  for (ForkTrace* other : in_flight_traces_) ForkTrace::Unmap(other);
  in_flight_traces_.clear();
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
  absl::StatusOr<Spare> taken = TakeSpare(k, opts.progress);
  if (!taken.ok()) {
    return absl::Status(taken.status().code(),
                        absl::StrCat("sandbox fork: ", taken.status().message()));
  }
  Spare spare = std::move(*taken);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    const int err = errno;
    PutBackSpare(std::move(spare));
    return Fail("pipe", err);
  }
  f.prepared_ns = MonotonicNs();
  // Where the child is on its way to the report, should it never come.
  f.trace = ForkTrace::Map();
  if (opts.progress) opts.progress("host-forking the sentry");
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
  AddForkedChild(f.sentry);  // reaped by a later fork once it ends
  return out;
}

}  // namespace seedvisor::sentry
