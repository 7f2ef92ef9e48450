// HostAffinity: a context whose guest thread is a host thread of its own
// (systrap, ptrace) can pin that thread to the guest's CPU affinity, so that
// what the host reports to the thread without asking the sentry (the CPU
// number the vDSO's getcpu reads through RDPID/RDTSCP or the GDT, rseq's
// cpu_id, getcpu(2) made by the stub) is a CPU the guest chose. The sentry's
// own state stays the truth that sched_getaffinity(2) answers from.
//
// An interface of its own, beside Context, so that platforms without such a
// thread (kvm: a vCPU is driven by a sentry thread) need nothing:
//
//   if (auto* h = dynamic_cast<platform::HostAffinity*>(ctx.get())) {
//     h->SetHostAffinity(set);  // from the host thread that drives ctx
//   }
#ifndef SEEDVISOR_PLATFORM_HOST_AFFINITY_H_
#define SEEDVISOR_PLATFORM_HOST_AFFINITY_H_

#include <sched.h>

namespace seedvisor::platform {

class HostAffinity {
 public:
  virtual ~HostAffinity() = default;
  // sched_setaffinity(2) of the host thread that runs the guest code, made
  // by that thread on itself (pid 0), never by the sentry on another
  // thread: the stub's filter allows exactly that call from the stub. The
  // caller has intersected `set` with the sandbox's CPUs; the host
  // intersects it with what the stub may use. Only between two Run()s,
  // from the sentry thread that drives the context. 0 or -errno.
  virtual long SetHostAffinity(const cpu_set_t& set) = 0;
};

}  // namespace seedvisor::platform

#endif  // SEEDVISOR_PLATFORM_HOST_AFFINITY_H_
