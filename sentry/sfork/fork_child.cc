// The forked sentry's side of a sandbox fork (steps 1-4 of sfork.h), and
// the few things the seed's side of both kinds of fork share: a fork made
// now (sfork.cc) and one made ahead (ahead.cc).
#include "sentry/sfork/fork_child.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sentry/fs/host/stdio_file.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/mm/mm.h"
#include "sentry/sfork/fork_diagnosis.h"
#include "sentry/socket/netns.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {
namespace {

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

// The report fds and trace pages of forks between StartFork and FinishFork:
// a later fork's child closes and unmaps its copies.
std::set<int> in_flight_fds_;
std::set<ForkTrace*> in_flight_traces_;

}  // namespace

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

void EndPhase(Report& r, ForkPhase p) { r.phase_end[static_cast<int>(p)] = MonotonicNs(); }

absl::Status HostFailure(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

void AddInFlight(int report_fd, ForkTrace* trace) {
  in_flight_fds_.insert(report_fd);
  if (trace != nullptr) in_flight_traces_.insert(trace);
}

void EndInFlight(int report_fd, ForkTrace* trace) {
  in_flight_fds_.erase(report_fd);
  in_flight_traces_.erase(trace);
}

absl::Status AdoptKernel(Kernel& k, ForkFileContext& fctx, pid_t anchor,
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
  // /dev/tty: the fork's own terminal, never the seed's (none yet in a fork
  // made ahead: its request brings it).
  ReplaceControllingTerminalInForkChild(fctx.stdio);
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

void StdioSlots(const std::shared_ptr<ThreadGroup>& init, ForkFileContext* fctx) {
  if (init == nullptr || init->tasks.empty()) return;
  auto fds = init->tasks.front()->fds_;
  for (int i = 0; i < 3 && fds != nullptr; ++i) {
    if (auto f = fds->Get(i); f.ok()) fctx->stdio_slot.emplace(f->get(), i);
  }
}

void LetGoOfTheSeeds(const Spare& spare) {
  ForkChildStep("letting go of the seed's spares and forks in flight");
  AdoptSpareInForkChild(spare);
  LetGoOfStartingAheadInForkChild();
  for (int fd : in_flight_fds_) close(fd);
  in_flight_fds_.clear();
  for (ForkTrace* other : in_flight_traces_) ForkTrace::Unmap(other);
  in_flight_traces_.clear();
}

[[noreturn]] void FinishInChild(Kernel& k, absl::Status s, bool stall, int report_fd, Report& r,
                                const std::vector<pid_t>& pids, pid_t anchor, ForkTrace* trace,
                                const ForkChildSetup& child_setup,
                                const std::function<void()>& child_main) {
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
  ForkChildStep(stall ? "stalling before the report (test hook)" : "writing the report");
  if (stall) {
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

}  // namespace seedvisor::sentry
