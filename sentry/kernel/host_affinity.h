// The guest's CPU affinity on the host thread that runs its code.
//
// sched_setaffinity(2) keeps a task's mask as sentry state (Task::affinity_,
// which sched_getaffinity answers from); where the platform runs the guest
// thread on a host thread of its own (platform/host_affinity.h), that thread
// is pinned to the same CPUs, so that the CPU number the host shows the
// guest without the sentry (the vDSO's getcpu through RDPID/RDTSCP, rseq's
// cpu_id, getcpu(2)) is one the guest allowed. A new context (clone, fork,
// exec, a sandbox fork's new stub threads) starts unpinned, so it is applied
// again when a context is attached.
//
//   task->affinity_ = set;          // under the kernel's lock
//   ApplyHostAffinity(*task);       // on the task's own host thread
#ifndef SEEDVISOR_SENTRY_KERNEL_HOST_AFFINITY_H_
#define SEEDVISOR_SENTRY_KERNEL_HOST_AFFINITY_H_

#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

// Pins `t`'s host thread to `t`'s affinity, if it has one and its platform
// can. Call on the host thread that drives `t`'s context, between two
// Run()s. 0 or -errno (ENOSYS: the platform has no such thread).
long ApplyHostAffinity(Task& t);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_HOST_AFFINITY_H_
