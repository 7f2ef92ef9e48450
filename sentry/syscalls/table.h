// The syscall table: every x86-64 syscall number, its name, handler and how
// far we support it. The compatibility page (docs/syscalls.md) is generated
// from it by `seedsc help syscalls`.
#ifndef SEEDVISOR_SENTRY_SYSCALLS_TABLE_H_
#define SEEDVISOR_SENTRY_SYSCALLS_TABLE_H_

#include <cstdint>
#include <span>

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

enum class Support {
  kFull,           // as Linux does it
  kPartial,        // works for common use; the note says what is missing
  kUnimplemented,  // ENOSYS, logged once in the debug log
  kRefused,        // an errno on purpose, for safety; the note says why
};

struct SyscallEntry {
  int nr;
  const char* name;
  SyscallHandler handler;
  Support support;
  const char* argfmt;
  const char* note;
};

inline constexpr int kMaxSyscall = 512;

// nullptr for numbers that are not x86-64 syscalls.
const SyscallEntry* LookupSyscall(uint64_t nr);
std::span<const SyscallEntry> AllSyscalls();
const char* SupportName(Support s);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_TABLE_H_
