// fs.inotify.max_user_instances and fs.inotify.max_user_watches
// (inotify(7), "/proc interfaces"): how many inotify instances, and
// watches over all its instances, one user may have. An instance counts
// against the effective uid of its creator from inotify_init(2) until its
// last close (EMFILE past the limit), a watch against its instance's
// user from inotify_add_watch(2) until it goes (ENOSPC), root included
// (inc_ucount()). Whatever root writes there, the sandbox as a whole
// holds at most kSandboxMaxInstances instances and kSandboxMaxWatches
// watches, so that no guest grows the sentry's memory without end.
//
//   SV_ASSIGN_OR_RETURN(InotifyCharge inst, InotifyCharge::Instance(euid));  // EMFILE?
//   SV_ASSIGN_OR_RETURN(InotifyCharge w, InotifyCharge::Watch(euid));        // ENOSPC?
#ifndef SEEDVISOR_SENTRY_FS_INOTIFY_INOTIFY_LIMITS_H_
#define SEEDVISOR_SENTRY_FS_INOTIFY_INOTIFY_LIMITS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

// One instance or one watch counted against a user; given back when it
// goes. Move-only.
class InotifyCharge {
 public:
  static constexpr int64_t kDefaultMaxInstances = 128;  // Linux's default
  // Linux's default grows with the host's memory, from 8192 up to 1 << 20
  // (inotify_user_setup()); the sandbox takes the top, so that a program
  // that watched a large tree before these limits still may.
  static constexpr int64_t kDefaultMaxWatches = int64_t{1} << 20;
  static constexpr int64_t kSandboxMaxInstances = 8192;
  static constexpr int64_t kSandboxMaxWatches = int64_t{1} << 20;

  static Result<InotifyCharge> Instance(uid_t uid);  // EMFILE past the limit
  static Result<InotifyCharge> Watch(uid_t uid);     // ENOSPC past the limit
  // What `uid` holds now (instances or watches).
  static int64_t InstancesOf(uid_t uid);
  static int64_t WatchesOf(uid_t uid);

  InotifyCharge() = default;
  InotifyCharge(InotifyCharge&& o) noexcept;
  InotifyCharge& operator=(InotifyCharge&& o) noexcept;
  InotifyCharge(const InotifyCharge&) = delete;
  InotifyCharge& operator=(const InotifyCharge&) = delete;
  ~InotifyCharge() { Release(); }

 private:
  enum class Kind { kNone, kInstance, kWatch };
  InotifyCharge(Kind kind, uid_t uid) : kind_(kind), uid_(uid) {}
  void Release();
  Kind kind_ = Kind::kNone;
  uid_t uid_ = 0;
};

// The two files' text ("128\n") and a write: an integer from 0 to
// INT_MAX (proc_dointvec_minmax()), else EINVAL.
std::string InotifyMaxInstancesText();
Status SetInotifyMaxInstances(std::string_view text);
std::string InotifyMaxWatchesText();
Status SetInotifyMaxWatches(std::string_view text);

// Sandbox fork: the counts' lock made anew in the forked sentry, on its
// only thread. Does not allocate.
void ReinitInotifyLimitsLockInForkChild();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_INOTIFY_INOTIFY_LIMITS_H_
