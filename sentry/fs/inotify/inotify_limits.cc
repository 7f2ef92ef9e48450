#include "sentry/fs/inotify/inotify_limits.h"

#include <atomic>
#include <charconv>
#include <climits>
#include <map>
#include <new>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::sentry {
namespace {

std::atomic<int64_t> g_max_instances{InotifyCharge::kDefaultMaxInstances};
std::atomic<int64_t> g_max_watches{InotifyCharge::kDefaultMaxWatches};

absl::Mutex g_mu;
struct Counts {
  int64_t instances = 0;
  int64_t watches = 0;
};
// By uid; a user with nothing has no entry. Leaked: files released at exit
// still give their charges back.
std::map<uid_t, Counts>& ByUser() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<uid_t, Counts>();
  return *m;
}
Counts g_total ABSL_GUARDED_BY(g_mu);

Status ParseLimit(std::string_view text, std::atomic<int64_t>& into) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return Errno(EINVAL);
  if (v < 0 || v > INT_MAX) return Errno(EINVAL);
  into.store(v);
  return {};
}

}  // namespace

Result<InotifyCharge> InotifyCharge::Instance(uid_t uid) {
  absl::MutexLock l(&g_mu);
  Counts& c = ByUser()[uid];
  if (c.instances >= g_max_instances.load() || g_total.instances >= kSandboxMaxInstances) {
    if (c.instances == 0 && c.watches == 0) ByUser().erase(uid);
    return Errno(EMFILE);
  }
  ++c.instances;
  ++g_total.instances;
  return InotifyCharge(Kind::kInstance, uid);
}

Result<InotifyCharge> InotifyCharge::Watch(uid_t uid) {
  absl::MutexLock l(&g_mu);
  Counts& c = ByUser()[uid];
  if (c.watches >= g_max_watches.load() || g_total.watches >= kSandboxMaxWatches) {
    if (c.instances == 0 && c.watches == 0) ByUser().erase(uid);
    return Errno(ENOSPC);
  }
  ++c.watches;
  ++g_total.watches;
  return InotifyCharge(Kind::kWatch, uid);
}

int64_t InotifyCharge::InstancesOf(uid_t uid) {
  absl::MutexLock l(&g_mu);
  auto it = ByUser().find(uid);
  return it == ByUser().end() ? 0 : it->second.instances;
}

int64_t InotifyCharge::WatchesOf(uid_t uid) {
  absl::MutexLock l(&g_mu);
  auto it = ByUser().find(uid);
  return it == ByUser().end() ? 0 : it->second.watches;
}

InotifyCharge::InotifyCharge(InotifyCharge&& o) noexcept
    : kind_(std::exchange(o.kind_, Kind::kNone)), uid_(o.uid_) {}

InotifyCharge& InotifyCharge::operator=(InotifyCharge&& o) noexcept {
  if (this != &o) {
    Release();
    kind_ = std::exchange(o.kind_, Kind::kNone);
    uid_ = o.uid_;
  }
  return *this;
}

void InotifyCharge::Release() {
  if (kind_ == Kind::kNone) return;
  absl::MutexLock l(&g_mu);
  auto it = ByUser().find(uid_);
  if (it != ByUser().end()) {
    Counts& c = it->second;
    if (kind_ == Kind::kInstance) {
      --c.instances;
      --g_total.instances;
    } else {
      --c.watches;
      --g_total.watches;
    }
    if (c.instances == 0 && c.watches == 0) ByUser().erase(it);
  }
  kind_ = Kind::kNone;
}

std::string InotifyMaxInstancesText() { return absl::StrCat(g_max_instances.load(), "\n"); }
Status SetInotifyMaxInstances(std::string_view text) { return ParseLimit(text, g_max_instances); }
std::string InotifyMaxWatchesText() { return absl::StrCat(g_max_watches.load(), "\n"); }
Status SetInotifyMaxWatches(std::string_view text) { return ParseLimit(text, g_max_watches); }

void ReinitInotifyLimitsLockInForkChild() {
  // SAFETY: only the calling thread exists; the old lock word is only
  // overwritten (its waiters were threads of the seed).
  new (&g_mu) absl::Mutex;
}

}  // namespace seedvisor::sentry
