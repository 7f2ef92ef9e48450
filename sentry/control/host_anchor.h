// A host thread of the sandbox process that only waits, so that its host
// id names one container of the sandbox to the host: the pid seedsc
// reports for a container whose processes live outside the sandbox's pid
// namespace (control.proto, CreateContainerResponse.host_thread). Every
// container of a pod shares one sandbox process, whose pid would name
// them all; containerd's CRI plugin names a TARGET container's pid
// namespace by its target's pid (/proc/<pid>/ns/pid), so each such
// container needs a host id of its own.
//
//   auto a = std::make_shared<HostAnchor>();
//   RunInBackground([a] { a->Hold(); });
//   pid_t tid = a->WaitForTid(absl::Seconds(5));   // its id, or 0
//   ...
//   a->Release();                                  // the thread goes on
#ifndef SEEDVISOR_SENTRY_CONTROL_HOST_ANCHOR_H_
#define SEEDVISOR_SENTRY_CONTROL_HOST_ANCHOR_H_

#include <sys/types.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace seedvisor::control {

class HostAnchor {
 public:
  // On the anchor's thread: records its id, then waits for Release().
  void Hold();
  // Its id in the sandbox process's pid namespace once Hold() has begun;
  // 0 if it has not within `timeout`, or was released first.
  pid_t WaitForTid(absl::Duration timeout);
  void Release();  // idempotent; Hold() returns (or never waits)

 private:
  bool Started() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return tid_ != 0 || released_; }

  absl::Mutex mu_;
  pid_t tid_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_HOST_ANCHOR_H_
