// Ending a sandbox's host process (its sentry) and saying what a process
// was doing, for `seedsc delete`, `create`'s clean-up and its deadlines:
//
//   // SIGKILL, then wait until it has exited; the error says what it was
//   // doing if it had not within the time.
//   if (absl::Status s = EndProcess(st.sandbox_pid, kEndProcessTimeout); !s.ok()) return s;
//   std::string what = DescribeProcess(pid);  // "state D in do_exit, 12 threads"
#ifndef SEEDVISOR_RUNSC_CONTAINER_HOST_PROCESS_H_
#define SEEDVISOR_RUNSC_CONTAINER_HOST_PROCESS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace seedvisor::container {

// How long EndProcess waits in `seedsc delete`. A SIGKILLed sentry exits
// each of its threads and frees its guest memory on CPU time its own cgroup
// is charged for: a sandbox with low cpu.shares or a CPU quota on a loaded
// host takes seconds (the 3 s this was once was not always enough).
inline constexpr absl::Duration kEndProcessTimeout = absl::Seconds(20);

// SIGKILLs process `pid` and waits up to `timeout` until it has exited
// (a zombie counts: its parent reaps it; the sandbox's is the pid
// namespace's init, which reaps at once). Through a pidfd taken first, so
// that a reused pid is neither killed nor waited for. OK at once if `pid`
// is <= 0, gone or a zombie already. DeadlineExceeded names the process,
// its state and where it sleeps.
absl::Status EndProcess(pid_t pid, absl::Duration timeout);

// "state D in do_exit, 12 threads" from /proc/PID: each state (of the
// threads not yet exited, most frequent first) and the host kernel
// function the first one sleeps in; "" if /proc does not know the pid.
std::string DescribeProcess(pid_t pid);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_HOST_PROCESS_H_
