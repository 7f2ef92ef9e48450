// membarrier(2) (kernel/sched/membarrier.c).
//
// Every barrier the guest asks for is the host's MEMBARRIER_CMD_GLOBAL made
// by the sentry: every host thread running then (the guest's threads among
// them, on every platform: stub threads or vCPU threads) passes a full
// barrier before it returns. That is more than PRIVATE_EXPEDITED promises
// and slower (synchronize_rcu(): ~9 ms on this host, where Linux IPIs the
// process's CPUs in microseconds), but it needs no cooperation from the
// guest's stubs. Without it on the host (nohz_full), the barriers are
// EINVAL and QUERY does not offer them, as Linux on a kernel without them.
//
// SYNC_CORE and RSEQ are EINVAL and not offered, as on a kernel without
// ARCH_HAS_MEMBARRIER_SYNC_CORE or CONFIG_RSEQ: a host GLOBAL barrier does
// not serialize a thread's core on its return to the guest, and restarting
// the guest's rseq critical sections needs every running task stopped.
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sentry/kernel/task.h"
#include "sentry/mm/mm.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {
namespace {

// The commands of Linux 6.3 (GET_REGISTRATIONS), by value, for hosts whose
// headers are older.
constexpr int kCmdGlobal = 1 << 0;
constexpr int kCmdGlobalExpedited = 1 << 1;
constexpr int kCmdRegisterGlobalExpedited = 1 << 2;
constexpr int kCmdPrivateExpedited = 1 << 3;
constexpr int kCmdRegisterPrivateExpedited = 1 << 4;
constexpr int kCmdPrivateExpeditedRseq = 1 << 7;
constexpr int kCmdGetRegistrations = 1 << 9;
constexpr unsigned kFlagCpu = 1 << 0;  // MEMBARRIER_CMD_FLAG_CPU
static_assert(kCmdGlobal == MEMBARRIER_CMD_GLOBAL);
static_assert(kCmdPrivateExpedited == MEMBARRIER_CMD_PRIVATE_EXPEDITED);

// Whether the host makes MEMBARRIER_CMD_GLOBAL (asked once).
bool HostHasGlobal() {
  static const bool has = [] {
    const long r = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return r > 0 && (r & kCmdGlobal) != 0;
  }();
  return has;
}

Status HostBarrier() {
  if (syscall(SYS_membarrier, kCmdGlobal, 0, 0) != 0) return Errno(EINVAL);
  return {};
}

}  // namespace

SyscallReturn SysMembarrier(Task& t, const SyscallArgs& a) {
  const int cmd = a.Int(0);
  const unsigned flags = a.Uint(1);
  // Only PRIVATE_EXPEDITED_RSEQ takes a flag (MEMBARRIER_CMD_FLAG_CPU).
  if (cmd == kCmdPrivateExpeditedRseq ? (flags & ~kFlagCpu) != 0 : flags != 0) {
    return Errno(EINVAL);
  }
  std::atomic<uint32_t>& registered = t.mm().membarrier_registrations();
  const bool barriers = HostHasGlobal();
  switch (cmd) {
    case MEMBARRIER_CMD_QUERY:
      return static_cast<uint64_t>(
          kCmdGetRegistrations |
          (barriers ? kCmdGlobal | kCmdGlobalExpedited | kCmdRegisterGlobalExpedited |
                          kCmdPrivateExpedited | kCmdRegisterPrivateExpedited
                    : 0));
    case kCmdGetRegistrations:
      return static_cast<uint64_t>(registered.load());
    case kCmdRegisterGlobalExpedited:
    case kCmdRegisterPrivateExpedited:
      if (!barriers) return Errno(EINVAL);
      registered.fetch_or(static_cast<uint32_t>(cmd));
      return 0;
    case kCmdPrivateExpedited:
      if (!barriers) return Errno(EINVAL);
      // membarrier_private_expedited(): only after the process registered.
      if (!(registered.load() & kCmdRegisterPrivateExpedited)) return Errno(EPERM);
      SV_TRY(HostBarrier());
      return 0;
    case kCmdGlobal:
    case kCmdGlobalExpedited:
      // GLOBAL_EXPEDITED needs no registration of the caller's own.
      if (!barriers) return Errno(EINVAL);
      SV_TRY(HostBarrier());
      return 0;
    default:
      // Unknown commands, and SYNC_CORE and RSEQ (see above).
      return Errno(EINVAL);
  }
}

}  // namespace seedvisor::sentry
