// Host processes named by a pid read from a file (a container's state, a
// pid file), and ending a sandbox's sentry, for `seedsc delete`, `create`'s
// clean-up, seedd and the shim. A pid alone names nobody for sure: once
// its process has exited and been reaped (the sandbox's sentry is reaped
// at once by its pid namespace's pid 1) the kernel gives the number to the
// next process. So what was recorded is an identity (pid, start time, boot
// id), and every signal goes through a pidfd checked against it.
//
//   ProcessIdentity id = *IdentityOf(sentry_pid);     // when it starts
//   ...                                                // (saved in state.json)
//   if (ProcessAlive(id)) ...                          // the same process, not a zombie
//   // SIGKILL, then wait until it has exited; the error says what it was
//   // doing if it had not within the time. OK at once if it is gone.
//   if (absl::Status s = EndProcess(id, kEndProcessTimeout); !s.ok()) return s;
//   std::string what = DescribeProcess(pid);  // "state D in do_exit, 12 threads"
#ifndef SEEDVISOR_RUNSC_CONTAINER_HOST_PROCESS_H_
#define SEEDVISOR_RUNSC_CONTAINER_HOST_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace seedvisor::container {

// One host process, as no other process before the next boot is.
struct ProcessIdentity {
  pid_t pid = 0;
  // /proc/PID/stat field 22: clock ticks from boot to its start. 0 =
  // unknown (a state.json written before seedsc recorded it): then no
  // process is taken for the one meant (another sandbox's sentry has the
  // same command line), so nothing is signalled.
  uint64_t start_time = 0;
  // /proc/sys/kernel/random/boot_id when start_time was read ("" =
  // unknown): start times restart at every boot, state dirs on disk do not.
  std::string boot_id;
};

// The identity of live (or zombie) process `pid`; NotFound if there is none.
absl::StatusOr<ProcessIdentity> IdentityOf(pid_t pid);

// True if the process `id` names exists, is not a zombie and is that
// process (not another one that got its pid).
bool ProcessAlive(const ProcessIdentity& id);

// A pidfd (O_CLOEXEC; the caller closes it) on the process `id` names, if
// the pid still names it (exited but not reaped counts). NotFound if it
// has been reaped or the pid names another process now. Race-free: the
// identity is read from /proc while the pidfd pins the pid.
absl::StatusOr<int> OpenProcess(const ProcessIdentity& id);

// Sends `sig` to the process `id` names through OpenProcess. NotFound if
// it is not there any more.
absl::Status SignalProcess(const ProcessIdentity& id, int sig);

// How long EndProcess waits in `seedsc delete`. A SIGKILLed sentry exits
// each of its threads and frees its guest memory on CPU time its own cgroup
// is charged for: a sandbox with low cpu.shares or a CPU quota on a loaded
// host takes seconds (the 3 s this was once was not always enough).
inline constexpr absl::Duration kEndProcessTimeout = absl::Seconds(20);

// SIGKILLs the process `id` names and waits up to `timeout` until it has
// exited (a zombie counts: its parent reaps it; the sandbox's is the pid
// namespace's init, which reaps at once). Through OpenProcess: a pid that
// names another process now is neither killed nor waited for. OK at once
// if `id.pid` is <= 0, gone, another process's or a zombie already.
// DeadlineExceeded names the process, its state and where it sleeps.
absl::Status EndProcess(const ProcessIdentity& id, absl::Duration timeout);

// The sandbox's pid 1 (CreateSandbox forks it and then its sentry; it only
// reaps, and exits once its pid namespace has nothing left): the parent of
// the process `sentry` names, if that parent is pid 1 of a pid namespace
// below ours. NotFound otherwise (a fork's sentry, whose parent is its
// seed's sentry, or a sentry that has exited).
absl::StatusOr<ProcessIdentity> NamespaceInitOf(const ProcessIdentity& sentry);

// Waits up to `timeout` until the pid namespace pid 1 `init` names has
// exited, as it does by itself once the last other process of its
// namespace is gone: a sandbox is not gone before it. OK at once if it is
// gone already, or as soon as its namespace holds a live process besides
// it (a sandbox forked from this one, which it stays for). Never signals
// it. DeadlineExceeded names it, its state and where it sleeps.
absl::Status AwaitNamespaceEnd(const ProcessIdentity& init, absl::Duration timeout);

// Among `pids`, the stub processes (argv[0] "seedsc-stub") whose process
// group has lost its leader: a sandbox's zygote (or a fork's anchor) leads
// its stubs' group and kills it when it ends normally, after its sentry;
// a stub it forked just before it was SIGKILLed itself (by a kill of
// every process in the sandbox's cgroup, say) waits for that sentry
// forever (issue 14). Nothing else ends them.
std::vector<pid_t> OrphanedStubs(const std::vector<pid_t>& pids);

// Whether process `pid` is a seedsc sandbox's sentry (or a fork of one):
// argv[0] "seedsc" and a "boot" argument. A zombie has none.
bool IsSeedscSandbox(pid_t pid);

// When the process `id` names started, on the wall clock (to a clock tick).
absl::Time StartedAt(const ProcessIdentity& id);

// The process listening on unix socket `path`: the one that called
// listen(2), as SO_PEERPIDFD names it (exact even if its pid was reused
// since: NotFound then). On kernels before 6.5 only SO_PEERCRED's pid is
// known, and the identity is that of whatever has the pid now: the caller
// checks it further. NotFound if nobody listens there.
absl::StatusOr<ProcessIdentity> ListenerOf(const std::string& path);

// "state D in do_exit, 12 threads" from /proc/PID: each state (of the
// threads not yet exited, most frequent first) and the host kernel
// function the first one sleeps in; "" if /proc does not know the pid.
std::string DescribeProcess(pid_t pid);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_HOST_PROCESS_H_
