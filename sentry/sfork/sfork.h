// Sandbox fork: a new, independent sandbox made from a quiesced one (a seed)
// by a host fork() of the whole sentry.
//
// The seed's guest-visible state is sentry memory, which the host fork
// copies copy-on-write; what is not (guest memory in stub processes, host
// fds behind some files, threads, the control socket) is rebuilt:
//
//   0. ahead of the fork, in the quiesced seed (a "spare", PrepareForkSpare;
//      made inline if the seed has none ready; a seed keeps a few): an
//      anchor process, leader
//      of the process group every host process of the new sandbox joins,
//      which kills that group when the forked sentry dies (its life line is
//      a pipe only that sentry keeps open), so nothing of a destroyed fork
//      outlives it and nothing ties it to the seed; a zygote in that group;
//      per guest address space a copy-on-write copy of the seed's stub, made
//      by one of its parked threads, with one parked thread per task (on
//      ptrace, whose stub threads only the seed's task threads may touch,
//      those threads also save the FP state: SeedForkOnTaskThreads);
//   then, in the forked sentry, on its only thread, before it reports back:
//   1. the kernel's locks and the loopback network become its own;
//   2. the platform adopts the spare's zygote and copies; every task gets a
//      copy's thread, its own wakeup fd, and keeps its registers and FP
//      state;
//   3. every open file adopts or refuses its host state
//      (FileDescription::AdoptInForkChild): nothing is shared by accident;
//   4. the tasks' host threads start (they attach their copies' threads
//      and park), the caller's child setup (the new control server, stdio,
//      cgroup) runs meanwhile, the child reports its pid, and `child_main`
//      runs forever (it resumes the guest, or keeps a new seed paused).
// A seed also takes steps 1-3 ahead, while it waits: a fork made ahead
// (StartForkAhead, below) is a spare whose sentry is host-forked already
// and has done steps 1-3 but the stdio; a Fork then only hands it the
// request (the "handoff" phase), and it goes on with step 4.
//
// Nothing on this path creates a namespace, compiles a filter or parses a
// config. The seed stays quiesced and untouched. Forks of one seed overlap:
// only the host fork itself and the seed's bookkeeping after a report are
// serialized (StartFork, FinishFork under the caller's fork lock); a seed
// keeps a pool of spares, one per fork, each named by its anchor's pid
// (spares.h). The guest pages the seed's earlier forks wrote (their anchors
// report them as each fork ends) are written ahead in each new spare's stub
// copies, outside the fork lock, so that a fork's guest does not take those
// copy-on-write faults itself (dirty_pages.h, spare_warming.h).
//
// No thread of the sentry may start or end across the host fork: a thread
// that does holds process-wide glibc and abseil locks (its stack, its
// abseil identity) for a moment, which would stay held forever in the
// forked sentry, whose only thread is the forking one. And every thread
// makes its abseil identity as it starts (sentry/base/thread_identity.h),
// not when it first blocks, which may be at any moment, a fork's included
// (issue 9: LowLevelAlloc's arena lock, held in a forked replica). The seed's guest
// and service threads are parked; its control server runs every thread it
// needs on the ttrpc server's worker pool (long-lived threads, never one
// per connection or request) and holds the server's ForkHold (the pool's
// NoThreadStarts, and no connection accepted or closed) across the fork
// (sentry/control/server_fork.cc, shim/ttrpc/server.h, worker_pool.h).
//
//   SV: in the seed's Fork RPC handler, with the kernel quiesced:
//   absl::StatusOr<PendingFork> f;
//   { absl::MutexLock l(&fork_mu); f = StartFork(kernel, {.stdio = fds},
//         [&](auto& pids, pid_t* pid) { return StartChildControlServer(); },
//         [&] { ServeForever(); }); }
//   AwaitFork(*f);                                  // no lock: forks overlap
//   { absl::MutexLock l(&fork_mu); r = FinishFork(kernel, *f); }
#ifndef SEEDVISOR_SENTRY_SFORK_SFORK_H_
#define SEEDVISOR_SENTRY_SFORK_SFORK_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/kernel/kernel.h"
#include "sentry/sfork/fork_diagnosis.h"

namespace seedvisor::sentry {

// Told each step of making a spare as it starts (a string literal): the
// seed's Fork watchdog names the step a stuck fork is in
// (sentry/control/fork_watch.h). May be empty.
using ForkProgress = std::function<void(const char* step)>;

struct ForkOptions {
  // The child's stdio (host fds of the seed's sentry, dup'ed by the child):
  // the init's stdio files switch to these.
  int stdio[3] = {0, 1, 2};
  // The init's thread group: its fds 0, 1, 2 say which stdio slot each of
  // the seed's stdio files was.
  std::shared_ptr<ThreadGroup> init;
  // How long the seed waits for the child's report. A child that has not
  // reported by then is killed (the sentry and its anchor's process group)
  // and the fork fails with DEADLINE_EXCEEDED: a hung fork never hangs its
  // seed.
  absl::Duration report_deadline = absl::Seconds(10);
  // Whether the fork runs a guest whose copy-on-write writes the seed's
  // next spares should have made ahead (dirty_pages.h): its anchor's report
  // counts. False for a fork that stays a paused seed.
  bool learn_dirty_pages = true;
  // Test only: the child stalls just before it reports.
  bool test_stall_child = false;
  ForkProgress progress;
  // Whether a fork made ahead (StartForkAhead) may take this fork if one of
  // seed version `version` is ready: it is handed the stdio, `ahead_fds`
  // and `ahead_payload`, and runs its AheadChild's setup with them instead
  // of child_setup and child_main. Otherwise (or with none ready) the fork
  // host-forks the sentry now.
  bool ahead = false;
  uint64_t version = 0;
  std::string ahead_payload;  // at most kMaxAheadPayload bytes
  std::vector<int> ahead_fds;  // at most kMaxAheadFds
};
inline constexpr size_t kMaxAheadPayload = 16 * 1024;
inline constexpr size_t kMaxAheadFds = 4;

// Where a fork's time went, in order (ForkResult::phases): each phase's
// wall time, measured with CLOCK_MONOTONIC in the seed and in the child.
enum class ForkPhase {
  kPrepare,        // the seed: the spare, if it had none ready (PrepareForkSpare)
  kHandoff,        // a fork made ahead: its request, from the seed to it
  kSentryFork,     // the host fork() of the sentry, until the child runs
  kReinit,         // the child: kernel and loopback network made its own
  kZygote,         // the spare's anchor and zygote adopted
  kAddressSpaces,  // every guest address space copied, threads attached
  kFiles,          // every open file adopted its host state
  kStartTasks,     // the tasks' host threads started (they attach meanwhile)
  kSetup,          // the caller's child setup (control socket, cgroup)
  kReport,         // the child's report read by the seed
  kCount,
};
const char* ForkPhaseName(ForkPhase p);

struct ForkResult {
  pid_t pid = -1;  // the child sentry, as child_setup reported it (host pid)
  int64_t phase_ns[static_cast<int>(ForkPhase::kCount)] = {};
};

// A fork of the sandbox of `k`, which must be quiesced, in three steps, so
// that forks of one seed overlap (the child's own work and the wait for its
// report hold no lock of the seed's):
//
//   StartFork   under the caller's fork lock: takes a spare (or makes one),
//               and host-forks the sentry;
//   AwaitFork   without it: waits for the child's report, or kills the
//               child after `opts.report_deadline`;
//   FinishFork  under the fork lock again: the seed's bookkeeping, and the
//               result.
//
// The caller's fork lock serializes StartFork, FinishFork, PrepareForkSpare
// and DropForkSpare of one kernel; between a StartFork and its FinishFork
// the seed must stay quiesced (the child copies tmpfs and MAP_SHARED data
// of the seed's before it reports). In the child, after the kernel is the
// child's own, `child_setup` runs with the child's processes (the sentry
// first, then the anchor, the stubs; pids of this pid namespace) and sets
// the pid to report (an error ends the child and is FinishFork's), then
// `child_main`, which must not return.
using ForkChildSetup = std::function<absl::Status(const std::vector<pid_t>& pids, pid_t* report)>;

// A fork between StartFork and FinishFork (the fields are sfork's).
struct PendingFork {
  pid_t sentry = -1;     // the forked sentry, our child
  pid_t anchor = -1;     // its anchor, leader of its host processes' group
  int report_fd = -1;    // the read end of its report pipe
  int64_t start_ns = 0;  // CLOCK_MONOTONIC at StartFork
  int64_t prepared_ns = 0;  // ... once a spare was at hand
  int64_t deadline_ns = 0;  // ... when the child is killed unreported
  absl::Duration report_deadline;
  // AwaitFork's findings.
  bool in_time = false;     // the report (or the child's end) came in time
  bool reported = false;    // a whole report was read
  bool ok = false;          // ... and says the child runs
  pid_t pid = -1;           // ... the pid it reported
  std::string message;      // ... else why not
  // Shared with the child: the steps it has taken (fork_diagnosis.h); null
  // if the host refused the page.
  ForkTrace* trace = nullptr;
  bool ahead = false;  // a fork made ahead took it
  // A child that did not report in time: what its host threads and its
  // group's were doing before it was killed (DescribeUnreportedFork).
  std::string diagnosis;
  int64_t phase_end[static_cast<int>(ForkPhase::kCount)] = {};
};

absl::StatusOr<PendingFork> StartFork(Kernel& k, const ForkOptions& opts,
                                      const ForkChildSetup& child_setup,
                                      const std::function<void()>& child_main);
void AwaitFork(PendingFork& f);
absl::StatusOr<ForkResult> FinishFork(Kernel& k, PendingFork& f);
// Kills a fork that FinishFork reported running (its sentry and its
// anchor's group), e.g. when its caller is gone; under the fork lock, like
// FinishFork (neither pid is reaped before).
void KillFinishedFork(const PendingFork& f);

// The host fork of StartFork: fork(2) with `mu` held, so that no other
// thread is inside what it guards at that moment. Only the parent unlocks
// it; in the child `mu` must be made anew (placement new) before anything
// locks it, since other threads may have been queueing on it at the fork
// (sfork.cc).
pid_t ForkHolding(absl::Mutex& mu);

// Fills in abseil's lazily made process-wide state that a thread's first
// wait on a contended Mutex reads, each under a once flag: the CPU count,
// the Mutex spin globals and the nominal CPU frequency (Mutex's Enqueue
// reads CycleClock::Frequency). A host fork while another thread is inside
// one of those first calls copies its once flag as "running" into the
// child, where nobody finishes it: the child's first contended lock spins
// forever. Issue 9: seedd's replicas of a seed hung in Fork under 8 or 24
// concurrent calls on a quiet machine (the seed's Fork handlers queued on
// its fork lock for the first time while another Fork host-forked it; the
// replica's threads then spun in NominalCPUFrequency's once, which takes
// 3 ms or more here: abseil times the TSC across sleeps). Every host fork of
// a sentry (ForkHolding, the spares' anchors) calls this first; it is done
// once per process, and a child copies it done.
void PrimeAbseilForHostForks();

// Call first in main(), before any thread starts, in a process that may
// become a seed: what the libraries keep process-wide must be safe for a
// host fork while other threads run. A forked sentry has only the forking
// thread; a process-wide lock another thread held at the fork stays held
// there forever.
//
// Today that is abseil's Mutex deadlock detection, which Debian's abseil
// (built without NDEBUG) turns on by default: every Mutex::Lock, Unlock and
// ~Mutex of every thread takes one process-wide spin lock (the lock-order
// graph's) and allocates under it. A host fork of the seed while another
// of its threads (a Fork request naming its step, the watchdog, a ttrpc
// worker) was inside it left the forked sentry spinning in its first Lock:
// it never reported (issue 9, ~1 fork in 20,000 on ptrace). Off, Mutex
// keeps no process-wide state (fork_safety_test forks beside locking
// threads: with it on, about one child in six never gets its first lock
// here).
void PrepareForSandboxForks();

// Makes one spare of the host processes a fork of `k` needs (step 0), off
// the fork's path, if `k` is quiesced and has fewer than `want` valid ones:
// call it once `k` is quiesced (after pause) and after each fork, from a
// thread of its own, until it says the pool is full (true; also when there
// is nothing to do). One spare per call: the caller's fork lock is held for
// one spare at a time. Under the caller's fork lock.
//
// With `warm`, a spare whose stub copies have pages to write ahead (the
// ones earlier forks wrote, dirty_pages.h) is not in the pool yet: the
// caller then calls WarmForkSpare without the fork lock (it writes those
// pages, ~1 ms per few hundred) and PublishForkSpare under it, which puts
// the spare in the pool unless the seed dropped its spares meanwhile, and
// says whether the pool is full.
//
//   SV: SpareWarmup warm;
//   { absl::MutexLock l(&fork_mu); full = *PrepareForkSpare(k, want, &v, {}, &warm); }
//   if (warm.anchor > 0) {
//     WarmForkSpare(warm);
//     absl::MutexLock l(&fork_mu);
//     full = PublishForkSpare(k, warm, want);
//   }
struct SpareWarmup {
  pid_t anchor = -1;  // the spare (> 0: warm and publish it)
  std::vector<std::pair<pid_t, std::vector<uint64_t>>> jobs;  // per stub copy, its pages
  size_t pages_written = 0;                                   // by WarmForkSpare
};
// `ahead_version`: the seed version whose forks made ahead count as spares
// (others are killed first: they would only be dropped by the next take);
// null: only plain spares count (a caller that will not take one made ahead).
absl::StatusOr<bool> PrepareForkSpare(Kernel& k, size_t want, const uint64_t* ahead_version,
                                      const ForkProgress& progress = {},
                                      SpareWarmup* warm = nullptr);
void WarmForkSpare(SpareWarmup& warm);  // without the fork lock
bool PublishForkSpare(Kernel& k, SpareWarmup& warm, size_t want);  // under it
// ---- Forks made ahead ----
//
// A spare can go one step further while the seed waits: the seed host-forks
// its sentry, and that child takes the spare and does steps 1-3 (its own
// kernel, the zygote and stub copies, its files but stdio, the re-keying
// of its secrets: every fork made ahead is a process of its own, and
// re-keys in itself), says it is ready, and waits for its request in one
// recvmsg, its only thread, holding no lock. A Fork then only hands it the
// request (StartFork, ForkOptions::ahead): the fork's stdio and the
// caller's payload and fds, which its AheadChild turns into the child's
// identity (control socket, cgroup, stdio); it starts its tasks and reports
// as any fork does. The seed keeps it as a spare (spares.h), so that
// whatever drops the spares (DropForkSpare, a stale quiesce epoch or shape,
// EndHostProcesses) kills it too; one made at another seed `version` (the
// caller's count of its changes to a quiesced seed: a signal queued, a
// process started) is killed when a fork or StartForkAhead finds it. It
// dies with the seed: the end of file on its channel (the seed's end is in
// the seed alone) ends it, and its anchor takes its group along.
//
//   SV: the spare loop, under the fork lock, after PrepareForkSpare:
//   { lock the caller's own lock, the server's ForkHold;
//     started = !*StartForkAhead(k, want, version, init, child); }
//   if (started) {
//     AheadWait wait = StartingForkAhead();   // counted as a fork in flight
//     unlock the fork lock; WaitForkAheadReady(wait); lock it again;
//     AwaitForkAhead(k);
//   }
struct AheadChild {
  // In the child, once steps 1-3 are done, before it says it is ready: let
  // go of what the seed's caller holds (its control server's fds).
  std::function<void()> prepare;
  // In the child, once its request came and its stdio is adopted: the
  // child's setup, as child_setup, with ForkOptions::ahead_payload and the
  // fds (the stdio's three, then ahead_fds: the child's copies); sets
  // `main`, what the child then runs forever, as child_main. Each fd past
  // the stdio's three that it keeps it sets to -1 in `fds`: the child
  // closes the others after it (one the request brought but the setup has
  // no use for stays open in no fork).
  std::function<absl::Status(const std::string& payload, std::vector<int>* fds,
                             const std::vector<pid_t>& pids, pid_t* report,
                             std::function<void()>* main)>
      setup;
};
// If `k` is quiesced and fewer than `want` forks made ahead are ready, one
// ready spare becomes one (host fork; the child starts on its steps): false
// then, and the caller calls AwaitForkAhead; true if there is nothing to do.
// Under the caller's fork lock, holding what StartFork's caller holds.
// `init` is ForkOptions::init.
absl::StatusOr<bool> StartForkAhead(Kernel& k, size_t want, uint64_t version,
                                    std::shared_ptr<ThreadGroup> init, const AheadChild& child,
                                    const ForkProgress& progress = {});
// The fork StartForkAhead started: what WaitForkAheadReady waits on.
struct AheadWait {
  int channel = -1;       // -1: none started
  int64_t deadline_ns = 0;  // MonotonicNs(): when it is given up
};
// Under the fork lock.
AheadWait StartingForkAhead();
// Without the fork lock (a slow child would stall every Fork meanwhile):
// waits until the child said it is ready (or why not), or the deadline. The
// caller keeps whatever drops spares away meanwhile (the control server
// counts it as a fork in flight, which Resume and Shutdown wait for), and
// starts no other fork made ahead.
void WaitForkAheadReady(const AheadWait& wait);
// Under the caller's fork lock (only): takes the word of the fork
// StartForkAhead started (waiting until its deadline if it has not spoken)
// and puts it in the pool, or kills it.
absl::Status AwaitForkAhead(Kernel& k);
// How many forks made ahead wait in the pool (tests, logs). Under the fork lock.
size_t ForksAheadReady();

// Kills every spare: call it before Unquiesce (the spares copy a state the
// guest is about to change). Under the caller's fork lock.
void DropForkSpare(Kernel& k);
// Reaps this sentry's forks and their anchors that have ended since the
// last fork (each fork also does): without it the last forks of a seed that
// then stays idle linger as zombies. Under the caller's fork lock.
void ReapEndedForks();
// At the end of the sandbox (Shutdown, after its guest was killed): kills
// every spare and the zygote and stubs of its guest (in a forked sentry its
// own anchor's group, in a booted one the platform's HostProcessGroup), and
// returns once all those host processes have exited (so they have left
// every cgroup), or false at `deadline`. Without it they would die only
// after the sentry (their anchors see its end, a booted zygote its
// parent-death signal), on their own time: a kvm stub's exit tears down a
// VM, which took seconds under load, so `seedsc delete` returned with them
// still in the sandbox's cgroup. Under the caller's fork lock.
// `deadline` is on sentry::MonotonicNow()'s clock (mono_clock.h).
bool EndHostProcesses(Kernel& k, absl::Duration deadline);

// In a forked sentry, on a thread of its own: blocks until the sandbox's
// anchor has exited, then kills the anchor's process group (the fork's
// zygote and stubs) and returns true. The anchor ends that group once this
// sentry dies; if the anchor died first (the OOM killer, a stray kill),
// nothing would: the caller ends the sandbox then (unless it is ending
// already: its own EndHostProcesses kills the anchor too). False at once
// in a sentry that has no anchor (a booted one: its zygote, its child,
// has a parent-death signal), or if the anchor cannot be watched (said in
// a warning).
bool WatchOwnAnchor();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_SFORK_H_
