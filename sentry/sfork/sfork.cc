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
#include "sentry/mm/mm.h"
#include "sentry/sfork/dirty_pages.h"
#include "sentry/sfork/fork_diagnosis.h"
#include "sentry/sfork/fork_child.h"
#include "sentry/sfork/spares.h"

namespace seedvisor::sentry {

// sentry/kernel/kernel_quiesce.cc: work a RunOnParkedTasks call gave up on
// still runs on a parked task's thread (it would be forked mid-way).
bool ParkedWorkStillRunning();

namespace {

[[noreturn]] void ChildMain(Kernel& k, const ForkOptions& opts, int report_fd, const Spare& spare,
                            ForkTrace* trace, const ForkChildSetup& child_setup,
                            const std::function<void()>& child_main) {
  Report r;
  EndPhase(r, ForkPhase::kSentryFork);
  SetForkChildTrace(trace);
  LetGoOfTheSeeds(spare);
  std::vector<pid_t> pids = {getpid()};
  ForkFileContext fctx;
  for (int i = 0; i < 3; ++i) fctx.stdio[i] = opts.stdio[i];
  StdioSlots(opts.init, &fctx);
  absl::Status s = AdoptKernel(k, fctx, spare.anchor, &pids, r);
  FinishInChild(k, std::move(s), opts.test_stall_child, report_fd, r, pids, spare.anchor, trace,
                child_setup, child_main);
}

// In the seed: a forked sentry that did not report in time dies, and with
// it every host process of its sandbox (its anchor's process group: the
// zygote, the stub copies, the anchor). The seed's own processes are in no
// such group. Reaping the sentry and the anchor is the caller's.
void KillUnreported(pid_t sentry, pid_t anchor) {
  kill(sentry, SIGKILL);
  if (anchor > 0) kill(-anchor, SIGKILL);
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
    case ForkPhase::kHandoff: return "handoff";
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
    if (ParkedWorkStillRunning()) {
      return absl::UnavailableError(
          "sandbox fork: a parked task is still at work an earlier fork gave up on (a stub that "
          "did not answer); try again once it ends");
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
  const bool ahead = opts.ahead && opts.ahead_payload.size() <= kMaxAheadPayload &&
                     opts.ahead_fds.size() <= kMaxAheadFds;
  absl::StatusOr<Spare> taken = TakeSpare(k, opts.progress, ahead ? &opts.version : nullptr);
  while (taken.ok() && taken->ahead()) {
    f.prepared_ns = MonotonicNs();
    if (HandOffToForkAhead(*taken, opts)) {
      // The fork made ahead runs on; the rest is as for a fork made now.
      Spare& spare = *taken;
      f.ahead = true;
      f.sentry = spare.sentry;
      f.anchor = spare.anchor;
      f.trace = spare.trace;
      f.report_fd = spare.channel;
      if (opts.learn_dirty_pages) DirtyPageLog::Get().Expect(f.anchor);
      AddInFlight(f.report_fd, f.trace);
      f.report_deadline = opts.report_deadline;
      f.deadline_ns = MonotonicNs() + absl::ToInt64Nanoseconds(opts.report_deadline);
      return f;
    }
    // It died meanwhile: the next one, or a fork made now.
    LetGoOfSpare(k, *taken, false);
    taken = TakeSpare(k, opts.progress, &opts.version);
  }
  if (!taken.ok()) {
    return absl::Status(taken.status().code(),
                        absl::StrCat("sandbox fork: ", taken.status().message()));
  }
  Spare spare = std::move(*taken);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    const int err = errno;
    PutBackSpare(std::move(spare));
    return HostFailure("pipe", err);
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
    return HostFailure("forking the sentry", err);
  }
  f.sentry = pid;
  // What its guest writes in the copies, its anchor reports at its end.
  if (opts.learn_dirty_pages) DirtyPageLog::Get().Expect(f.anchor);
  f.report_fd = p[0];
  AddInFlight(p[0], f.trace);
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
  EndInFlight(f.report_fd, f.trace);
  close(f.report_fd);
  f.report_fd = -1;
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
    int64_t end = f.phase_end[i];
    if (i == static_cast<int>(ForkPhase::kPrepare) ||
        (i == static_cast<int>(ForkPhase::kHandoff) && !f.ahead)) {
      end = f.prepared_ns;
    }
    out.phase_ns[i] = end - last;
    last = end;
  }
  AddForkedChild(f.sentry);  // reaped by a later fork once it ends
  return out;
}

}  // namespace seedvisor::sentry
