// ContextRegistry: which platform context each sentry host thread drives in
// one address space, so that a memory call made by the sentry on behalf of
// a task reaches that task's own stub thread. Every stub platform (ptrace,
// systrap, kvm) keeps one per address space.
#ifndef SEEDVISOR_PLATFORM_STUB_CONTEXT_REGISTRY_H_
#define SEEDVISOR_PLATFORM_STUB_CONTEXT_REGISTRY_H_

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::platform::stub {

template <typename Context>
class ContextRegistry {
 public:
  void Register(pid_t host_tid, Context* ctx) {
    absl::MutexLock l(&mu_);
    contexts_[host_tid] = ctx;
  }
  void Unregister(pid_t host_tid) {
    absl::MutexLock l(&mu_);
    contexts_.erase(host_tid);
  }
  // The calling host thread's context, or nullptr (a sentry bug: callers
  // fail the guest's call rather than drive another task's thread).
  Context* Caller() {
    const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
    absl::MutexLock l(&mu_);
    auto it = contexts_.find(self);
    return it == contexts_.end() ? nullptr : it->second;
  }

 private:
  absl::Mutex mu_;
  std::unordered_map<pid_t, Context*> contexts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_CONTEXT_REGISTRY_H_
