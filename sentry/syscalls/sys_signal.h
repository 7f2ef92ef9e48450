// What the signal syscalls (sys_signal.cc) share with pidfd_send_signal
// (sys_pidfd.cc).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_SIGNAL_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_SIGNAL_H_

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"

namespace seedvisor::sentry {

// check_kill_permission() for process `tg` (its leader's, or a live
// thread's, credentials): may `t` send it `sig`?
bool MaySignalGroup(Task& t, ThreadGroup& tg, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu());

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_SIGNAL_H_
