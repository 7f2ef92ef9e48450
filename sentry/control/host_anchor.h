// A host thread of the sandbox process that only waits, so that its host
// id names one container of the sandbox to the host: the pid seedsc
// reports for a container whose processes live outside the sandbox's pid
// namespace (control.proto, CreateContainerResponse.host_thread). Every
// container of a pod shares one sandbox process, whose pid would name
// them all; containerd's CRI plugin names a TARGET container's pid
// namespace by its target's pid (/proc/<pid>/ns/pid), so each such
// container needs a host id of its own.
//
// The thread is its own (not a pooled one that would serve on, under the
// same id, after the container is gone) and ends with End(), which
// returns once it has exited. A host fork must not overlap its start or
// its end (sentry/base/thread_identity.h): the caller makes both under
// the lock its host forks hold (ControlServer::host_fork_mu_).
//
//   std::unique_ptr<HostAnchor> a = HostAnchor::Start(absl::Seconds(5));
//   pid_t tid = a ? a->tid() : 0;
//   ...
//   a->End();  // the thread has exited
#ifndef SEEDVISOR_SENTRY_CONTROL_HOST_ANCHOR_H_
#define SEEDVISOR_SENTRY_CONTROL_HOST_ANCHOR_H_

#include <sys/types.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_condvar.h"
#include "sentry/kernel/host_thread.h"

namespace seedvisor::control {

class HostAnchor {
 public:
  // Starts the thread and waits for its id; null (and no thread left) if
  // the host refuses a thread or it has no id within `timeout`.
  static std::unique_ptr<HostAnchor> Start(absl::Duration timeout);
  ~HostAnchor() { End(); }
  HostAnchor(const HostAnchor&) = delete;
  HostAnchor& operator=(const HostAnchor&) = delete;

  // Its id in the sandbox process's pid namespace.
  pid_t tid() const { return tid_; }
  // Releases the thread and waits for it to exit; idempotent.
  void End();

 private:
  HostAnchor() = default;
  void Hold();  // on the thread: records its id, waits for End()
  bool Started() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_ != 0 || released_; }

  absl::Mutex mu_;
  // Start's wait for the id and Hold's for End(), on the monotonic clock.
  sentry::MonoCondVar changed_;
  pid_t held_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  pid_t tid_ = 0;  // held_, once Start has seen it
  sentry::ServiceThread thread_;
};

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_HOST_ANCHOR_H_
