// The CPUs the sandbox may use: the sentry's own affinity when it started,
// read once. sched_getaffinity(2) reports it, /sys/devices/system/cpu lists
// it.
//
//   const SandboxCpuSet& cpus = SandboxCpus();
//   int n = CPU_COUNT(&cpus.set);
#ifndef SEEDVISOR_SENTRY_BASE_CPUS_H_
#define SEEDVISOR_SENTRY_BASE_CPUS_H_

#include <sched.h>

#include <cstddef>

namespace seedvisor {

struct SandboxCpuSet {
  cpu_set_t set;
  // The kernel's cpumask size in bytes: what the raw sched_getaffinity
  // syscall returns (whole longs, covering nr_cpu_ids).
  size_t mask_bytes;
  // The smallest buffer the syscall takes: whole longs covering
  // nr_cpu_ids (it may be smaller than mask_bytes; sched_getaffinity()
  // then copies only that much).
  size_t min_bytes;
};

const SandboxCpuSet& SandboxCpus();

}  // namespace seedvisor

#endif  // SEEDVISOR_SENTRY_BASE_CPUS_H_
