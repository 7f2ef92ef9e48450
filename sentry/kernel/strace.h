// Strace: one line per guest syscall, as `runsc --strace` prints it, with
// decoded arguments and the result.
//
//   [   2:   2] sh E openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC, 0)
//   [   2:   2] sh X openat(...) = 3 (0x3) (12.3µs)
#ifndef SEEDVISOR_SENTRY_KERNEL_STRACE_H_
#define SEEDVISOR_SENTRY_KERNEL_STRACE_H_

#include <string>

#include "sentry/syscalls/syscall.h"
#include "sentry/syscalls/table.h"

namespace seedvisor::sentry {

class Task;

class Strace {
 public:
  // Formats the arguments before the call runs (strings and write buffers
  // are read now, before the call changes them).
  std::string FormatArgs(Task& t, const SyscallEntry* e, const SyscallArgs& a) const;
  void Enter(Task& t, const SyscallEntry* e, const SyscallArgs& a, const std::string& args) const;
  void Exit(Task& t, const SyscallEntry* e, const SyscallArgs& a, const std::string& args,
            int64_t result, int64_t elapsed_ns) const;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_STRACE_H_
