// ptrace(2) between guest tasks: a tracee's relation to its tracer and the
// ptrace-stop it may be in. Everything is sentry data guarded by
// Kernel::mu(); the host never traces anything on the guest's behalf.
//
// A tracee stops on its own host thread (Task::PtraceStop...), publishes the
// stop for its tracer's wait4/waitid, and sleeps until the tracer resumes
// it, detaches, or it is killed. While it sleeps its registers and FP state
// are saved in the Task, so the tracer reads and writes them as data:
//
//   // tracer, in ptrace(PTRACE_GETREGS): tracee is in a ptrace-stop
//   regs = tracee.regs();
//   // tracer, in ptrace(PTRACE_SYSCALL, pid, 0, sig)
//   PtraceResume(tracee, PtraceState::Resume::kSyscall, sig);
#ifndef SEEDVISOR_SENTRY_KERNEL_PTRACE_H_
#define SEEDVISOR_SENTRY_KERNEL_PTRACE_H_

#include <signal.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "sentry/base/errno.h"
#include "sentry/kernel/wait.h"

namespace seedvisor::sentry {

class Kernel;
class Task;
class ThreadGroup;
struct WaitRequest;
struct WaitResult;

struct PtraceState {
  // The tracer (a thread of another process), null when not traced. The
  // tracer's list below keeps the tracee alive; the tracer clears this on
  // its exit (exit_ptrace()).
  Task* tracer = nullptr;
  bool seized = false;  // PTRACE_SEIZE (vs TRACEME/ATTACH)
  uint32_t options = 0;  // PTRACE_O_*
  // Tracer side: the tasks this task traces.
  std::vector<std::shared_ptr<Task>> tracees;

  enum class Stop { kNone, kSignal, kGroup, kSyscallEntry, kSyscallExit, kEvent };
  Stop stop = Stop::kNone;  // != kNone while in a ptrace-stop
  int exit_code = 0;        // what wait reports: (exit_code << 8) | 0x7f
  bool report = false;      // the stop (or exit) is not yet reported by wait
  bool listening = false;   // PTRACE_LISTEN
  bool exit_stop = false;   // the stop is PTRACE_EVENT_EXIT
  // PTRACE_INTERRUPT, or a SEIZE of a group-stopped task: trap with
  // PTRACE_EVENT_STOP at the next chance.
  bool trap_pending = false;
  // The stop signal the trap reports when it was fixed at attach time (a
  // seized group-stopped task: ptrace_attach() moves it to the trap before
  // returning, so a SIGCONT right after does not change what is reported).
  int trap_sig = 0;
  bool has_siginfo = false;  // GETSIGINFO fails with EINVAL without one
  siginfo_t siginfo{};
  uint64_t event_msg = 0;  // PTRACE_GETEVENTMSG
  // The last syscall stop's syscall (PTRACE_GET_SYSCALL_INFO).
  int64_t syscall_rval = 0;

  enum class Resume { kCont, kSyscall, kSingleStep, kSysemu, kSysemuSingleStep };
  Resume resume = Resume::kCont;
  int resume_sig = 0;  // the signal to deliver (signal-delivery-stop) or send
  bool resumed = false;  // the tracer resumed the last stop (vs. it went away)
  // DR0..DR7 as PEEKUSER/POKEUSER see them (nothing enables them).
  uint64_t debugreg[8] = {};
  // TF was set by PTRACE_SINGLESTEP (hidden from the tracer, TIF_FORCED_TF).
  bool forced_tf = false;

  // Exited and not yet reaped by the tracer's wait (exit_status is the
  // wait status it reports).
  bool zombie = false;
  int exit_status = 0;
  // The thread group's stop_epoch this tracee has already reported a
  // group-stop for (it runs on after the tracer resumes it).
  uint64_t group_stop_epoch = 0;

  bool traces_syscalls() const {
    return resume == Resume::kSyscall || resume == Resume::kSysemu ||
           resume == Resume::kSysemuSingleStep;
  }
  bool emulates_syscalls() const {
    return resume == Resume::kSysemu || resume == Resume::kSysemuSingleStep;
  }
};

// The tracer's half of wait4/waitid (wait.cc), under Kernel::mu(): the first
// stop or exit of one of `t`'s thread group's tracees that `req` matches.
// `any` is set when some tracee matches at all.
std::optional<WaitResult> WaitForTracee(Task& t, const WaitRequest& req, bool* any);

// The rest also run under Kernel::mu().
// PTRACE_ATTACH (SIGSTOP) / PTRACE_SEIZE (`options`): EPERM as
// ptrace_attach() refuses (own process, traced already, no access).
Status PtraceAttach(Task& tracer, Task& tracee, bool seize, uint32_t options);
// PTRACE_TRACEME: the parent process traces `t`.
Status PtraceTraceMe(Task& t);
// Ends the relation (PTRACE_DETACH, the tracer's exit): a stopped tracee
// runs on.
void PtraceUnlink(Kernel& k, Task& tracee);
// Lets a stopped tracee run: PTRACE_CONT, SYSCALL, SINGLESTEP, SYSEMU.
void PtraceResume(Task& tracee, PtraceState::Resume how, int sig);
// `t` is exiting with wait status `status`: its tracees are detached (or
// killed, PTRACE_O_EXITKILL) and, if traced, it becomes its tracer's zombie.
void PtraceOnExit(Kernel& k, Task& t, int status);
// A traced leader's exit was reaped by (`reaper`: the tracer's process) or
// dropped by its tracer: the real parent's turn.
void PtraceReleaseExited(Kernel& k, Task& e, ThreadGroup* reaper);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_PTRACE_H_
