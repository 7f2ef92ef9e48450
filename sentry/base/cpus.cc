#include "sentry/base/cpus.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace seedvisor {

const SandboxCpuSet& SandboxCpus() {
  static const SandboxCpuSet cpus = [] {
    SandboxCpuSet c;
    CPU_ZERO(&c.set);
    long n = syscall(SYS_sched_getaffinity, 0, sizeof(c.set), &c.set);
    if (n <= 0) {  // cannot happen for our own thread; keep one CPU
      CPU_ZERO(&c.set);
      CPU_SET(0, &c.set);
      n = sizeof(uint64_t);
    }
    c.mask_bytes = static_cast<size_t>(n);
    c.min_bytes = c.mask_bytes;
    cpu_set_t probe;
    for (size_t len = sizeof(uint64_t); len < c.mask_bytes; len += sizeof(uint64_t)) {
      if (syscall(SYS_sched_getaffinity, 0, len, &probe) > 0) {
        c.min_bytes = len;
        break;
      }
    }
    return c;
  }();
  return cpus;
}

}  // namespace seedvisor
