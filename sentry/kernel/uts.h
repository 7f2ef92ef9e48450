// The sandbox's UTS names: uname(2)'s nodename and domainname. The sandbox
// is one UTS namespace; the names start from KernelOptions and change with
// sethostname(2)/setdomainname(2). Thread-safe.
//
//   k.uts().set_hostname("web-1");
//   std::string n = k.uts().hostname();
#ifndef SEEDVISOR_SENTRY_KERNEL_UTS_H_
#define SEEDVISOR_SENTRY_KERNEL_UTS_H_

#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::sentry {

class UtsNames {
 public:
  explicit UtsNames(std::string hostname) : hostname_(std::move(hostname)) {}

  std::string hostname() const {
    absl::MutexLock l(&mu_);
    return hostname_;
  }
  void set_hostname(std::string name) {
    absl::MutexLock l(&mu_);
    hostname_ = std::move(name);
  }
  std::string domainname() const {
    absl::MutexLock l(&mu_);
    return domainname_;
  }
  void set_domainname(std::string name) {
    absl::MutexLock l(&mu_);
    domainname_ = std::move(name);
  }

 private:
  mutable absl::Mutex mu_;
  std::string hostname_ ABSL_GUARDED_BY(mu_);
  std::string domainname_ ABSL_GUARDED_BY(mu_) = "(none)";  // Linux's default
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_UTS_H_
