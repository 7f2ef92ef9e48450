// A UTS namespace: uname(2)'s nodename and domainname. The sandbox starts
// with one (Kernel::uts(), its names from KernelOptions); a task with
// CAP_SYS_ADMIN makes a copy with clone(2)/unshare(2) CLONE_NEWUTS
// (copy_utsname()) and enters another's with setns(2); each has its own
// nsfs inode number (/proc/PID/ns/uts). The names change with
// sethostname(2)/setdomainname(2). Thread-safe.
//
//   t.uts().set_hostname("web-1");
//   std::shared_ptr<UtsNames> ns = UtsNames::CopyOf(t.uts());
#ifndef SEEDVISOR_SENTRY_KERNEL_UTS_H_
#define SEEDVISOR_SENTRY_KERNEL_UTS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/kernel/ns_ino.h"

namespace seedvisor::sentry {

class UtsNames {
 public:
  // The initial namespace's inode (PROC_UTS_INIT_INO).
  static constexpr uint64_t kInitIno = 0xEFFFFFFE;

  explicit UtsNames(std::string hostname) : ino_(kInitIno), hostname_(std::move(hostname)) {}
  UtsNames(const UtsNames&) = delete;
  UtsNames& operator=(const UtsNames&) = delete;

  // A new namespace with `o`'s names and an inode number of its own (from
  // the dynamic range nsfs numbers come from, PROC_DYNAMIC_FIRST on).
  static std::shared_ptr<UtsNames> CopyOf(const UtsNames& o) {
    auto ns = std::make_shared<UtsNames>(o.hostname(), NextNsIno());
    ns->set_domainname(o.domainname());
    return ns;
  }
  UtsNames(std::string hostname, uint64_t ino) : ino_(ino), hostname_(std::move(hostname)) {}

  uint64_t ino() const { return ino_; }

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
  const uint64_t ino_;
  mutable absl::Mutex mu_;
  std::string hostname_ ABSL_GUARDED_BY(mu_);
  std::string domainname_ ABSL_GUARDED_BY(mu_) = "(none)";  // Linux's default
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_UTS_H_
