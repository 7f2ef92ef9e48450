// A guest's own seccomp filters (seccomp(2)): what a task's syscalls must
// pass before the sentry dispatches them.
//
// Each task has a mode and a stack of filters. Filters are immutable and
// shared: a new filter points at the one installed before it, clone gives
// the child the parent's stack, execve keeps it, and TSYNC points every
// thread of the group at the caller's. Task::SeccompAllows() runs the stack
// on each syscall; the most restrictive action wins (seccomp_run_filters()).
//
//   SeccompFilter f{.prog = checked_program, .prev = state.filter};
//   state.filter = std::make_shared<const SeccompFilter>(std::move(f));
//   uint32_t ret = RunSeccompFilters(*state.filter, data);  // e.g. ERRNO|EPERM
#ifndef SEEDVISOR_SENTRY_KERNEL_SECCOMP_H_
#define SEEDVISOR_SENTRY_KERNEL_SECCOMP_H_

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace seedvisor::sentry {

// seccomp_listener.h: the fd SECCOMP_FILTER_FLAG_NEW_LISTENER returns.
class SeccompListener;

// MAX_INSNS_PER_PATH (kernel/seccomp.c): the instructions of a filter and
// of every filter under it, each earlier one counted with 4 more, are at
// most this many, or seccomp(2) fails with ENOMEM.
constexpr size_t kSeccompMaxPathInsns = 32768;

struct SeccompFilter {
  std::vector<sock_filter> prog;  // passed seccomp::Check()
  bool log = false;               // SECCOMP_FILTER_FLAG_LOG
  std::shared_ptr<const SeccompFilter> prev;
  // This filter and those under it: their count and their instructions as
  // seccomp_attach_filter() counts them.
  int depth = 1;
  size_t path_insns = 0;
  // SECCOMP_FILTER_FLAG_NEW_LISTENER's: where this filter's
  // SECCOMP_RET_USER_NOTIF calls wait for their answer (null: none, and
  // such a call fails with ENOSYS). Shared with the listener fd's file.
  std::shared_ptr<SeccompListener> listener;
};

struct SeccompState {
  int mode = SECCOMP_MODE_DISABLED;  // or SECCOMP_MODE_STRICT, SECCOMP_MODE_FILTER
  std::shared_ptr<const SeccompFilter> filter;
  // Set on a sibling by a TSYNC from a thread with no_new_privs, which the
  // sibling then takes into its own credentials (seccomp_sync_threads()).
  bool sync_no_new_privs = false;
  int filter_count() const { return filter ? filter->depth : 0; }
};

// The stack's verdict on `d` (action and data): each filter's return value,
// the lowest action as a signed number winning and, among equals, the most
// recent filter's (seccomp_run_filters()). `*log` says whether the winning
// filter asked for logging and `*winner` (if not null) which filter gave
// the verdict (the one whose listener a USER_NOTIF goes to).
uint32_t RunSeccompFilters(const SeccompFilter& top, const seccomp_data& d, bool* log,
                           const SeccompFilter** winner = nullptr);

// True if `a` is `b` or one of the filters under it (is_ancestor()).
bool SeccompIsAncestor(const SeccompFilter* a, const SeccompFilter* b);

// Whether the sentry implements `action` (SECCOMP_GET_ACTION_AVAIL).
bool SeccompActionKnown(uint32_t action);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_SECCOMP_H_
