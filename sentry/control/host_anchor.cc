#include "sentry/control/host_anchor.h"

#include <unistd.h>

namespace seedvisor::control {

void HostAnchor::Hold() {
  absl::MutexLock l(&mu_);
  if (released_) return;
  tid_ = gettid();
  mu_.Await(absl::Condition(&released_));
}

pid_t HostAnchor::WaitForTid(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &HostAnchor::Started), timeout);
  return released_ ? 0 : tid_;
}

void HostAnchor::Release() {
  absl::MutexLock l(&mu_);
  released_ = true;
}

}  // namespace seedvisor::control
