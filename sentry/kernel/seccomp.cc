#include "sentry/kernel/seccomp.h"

#include "seccomp/bpf.h"

namespace seedvisor::sentry {

uint32_t RunSeccompFilters(const SeccompFilter& top, const seccomp_data& d, bool* log,
                           const SeccompFilter** winner) {
  uint32_t ret = SECCOMP_RET_ALLOW;
  bool ret_log = false;
  const SeccompFilter* ret_filter = &top;
  for (const SeccompFilter* f = &top; f != nullptr; f = f->prev.get()) {
    uint32_t cur = seccomp::Evaluate(f->prog.data(), f->prog.size(), d);
    // ACTION_ONLY(): the action bits compared as a signed number, so that
    // KILL_PROCESS (0x80000000) is below everything.
    if (static_cast<int32_t>(cur & SECCOMP_RET_ACTION_FULL) <
        static_cast<int32_t>(ret & SECCOMP_RET_ACTION_FULL)) {
      ret = cur;
      ret_log = f->log;
      ret_filter = f;
    }
  }
  if (log != nullptr) *log = ret_log;
  if (winner != nullptr) *winner = ret_filter;
  return ret;
}

bool SeccompIsAncestor(const SeccompFilter* a, const SeccompFilter* b) {
  if (a == nullptr) return true;  // every stack has the empty one under it
  for (; b != nullptr; b = b->prev.get()) {
    if (a == b) return true;
  }
  return false;
}

bool SeccompActionKnown(uint32_t action) {
  switch (action) {
    case SECCOMP_RET_KILL_PROCESS:
    case SECCOMP_RET_KILL_THREAD:
    case SECCOMP_RET_TRAP:
    case SECCOMP_RET_ERRNO:
    case SECCOMP_RET_TRACE:
    case SECCOMP_RET_USER_NOTIF:
    case SECCOMP_RET_LOG:
    case SECCOMP_RET_ALLOW:
      return true;
    default:
      return false;
  }
}

}  // namespace seedvisor::sentry
