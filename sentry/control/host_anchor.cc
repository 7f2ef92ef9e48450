#include "sentry/control/host_anchor.h"

#include <unistd.h>

#include <utility>

namespace seedvisor::control {

std::unique_ptr<HostAnchor> HostAnchor::Start(absl::Duration timeout) {
  std::unique_ptr<HostAnchor> a(new HostAnchor);
  HostAnchor* raw = a.get();
  Result<sentry::ServiceThread> t = sentry::ServiceThread::Start([raw] { raw->Hold(); });
  if (!t.ok()) return nullptr;
  a->thread_ = std::move(*t);
  {
    absl::MutexLock l(&a->mu_);
    a->changed_.Await(&a->mu_, absl::Condition(raw, &HostAnchor::Started),
                      sentry::Deadline::In(timeout));
    a->tid_ = a->held_;
  }
  if (a->tid_ == 0) return nullptr;  // ~HostAnchor ends the thread
  return a;
}

void HostAnchor::Hold() {
  absl::MutexLock l(&mu_);
  if (released_) return;
  held_ = gettid();
  changed_.SignalAll();
  changed_.Await(&mu_, absl::Condition(&released_), sentry::Deadline::Never());
}

void HostAnchor::End() {
  {
    absl::MutexLock l(&mu_);
    released_ = true;
  }
  changed_.SignalAll();
  thread_.Join();
}

}  // namespace seedvisor::control
