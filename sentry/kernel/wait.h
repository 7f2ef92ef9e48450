// wait4(2) and waitid(2): finding and reaping children.
#ifndef SEEDVISOR_SENTRY_KERNEL_WAIT_H_
#define SEEDVISOR_SENTRY_KERNEL_WAIT_H_

#include <optional>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class Task;

struct WaitRequest {
  int idtype = 0;  // P_ALL, P_PID, P_PGID
  int id = 0;
  int options = 0;  // WNOHANG, WUNTRACED/WSTOPPED, WCONTINUED, WEXITED, WNOWAIT
};

struct WaitResult {
  int pid = 0;  // in the waiter's pid namespace
  int status = 0;  // a wait(2) status word
  int code = 0;    // CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_STOPPED, CLD_CONTINUED
  int child_status = 0;
};

// What a wait status of an ended process says as waitid(2) and SIGCHLD's
// siginfo put it: si_code (CLD_EXITED, CLD_KILLED, CLD_DUMPED) and si_status
// (the exit code or the signal).
struct ChildExit {
  int code;
  int status;
};
ChildExit DecodeExitStatus(int wait_status);

// Blocks until a child matches (unless WNOHANG: then nullopt if none has
// changed state). ECHILD if no child matches at all.
Result<std::optional<WaitResult>> WaitForChild(Task& t, const WaitRequest& req);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_WAIT_H_
