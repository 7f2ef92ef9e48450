// The shape of a syscall handler.
//
//   SyscallReturn SysGetpid(Task& t, const SyscallArgs& a) { return t.tgid(); }
//
// A handler returns the value the guest sees in rax, or an Errno. Returning
// Errno(kERESTARTSYS) (what Task::BlockOnFd returns when a signal arrived)
// lets the task's syscall exit path restart the call or fail it with EINTR
// as the signal's SA_RESTART says.
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYSCALL_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYSCALL_H_

#include <cstdint>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"

namespace seedvisor::sentry {

class Task;

struct SyscallArgs {
  int nr = 0;
  uint64_t raw[6] = {};

  int Int(int i) const { return static_cast<int>(raw[i]); }
  unsigned Uint(int i) const { return static_cast<unsigned>(raw[i]); }
  int64_t Long(int i) const { return static_cast<int64_t>(raw[i]); }
  uint64_t Ulong(int i) const { return raw[i]; }
  size_t Size(int i) const { return static_cast<size_t>(raw[i]); }
  UserAddr Addr(int i) const { return UserAddr(raw[i]); }
};

using SyscallReturn = Result<uint64_t>;
using SyscallHandler = SyscallReturn (*)(Task& t, const SyscallArgs& a);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYSCALL_H_
