#include "sentry/vfs/write_access.h"

#include <map>
#include <memory>
#include <new>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::sentry {
namespace {

absl::Mutex g_mu;
// i_writecount by file; a file at 0 has no entry. Leaked: descriptions
// released at exit still give their holds back.
std::map<FileLockKey, int>& Counts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* counts = new std::map<FileLockKey, int>();
  return *counts;
}

// The owner of the release hooks that give holds back (one per description:
// a description holds at most one, its writer or its exe file's denial).
const char kReleaseOwner = 0;

}  // namespace

Result<WriteAccess> WriteAccess::Take(const FileLockKey& key, int delta) {
  absl::MutexLock l(&g_mu);
  int& n = Counts()[key];
  // A writer needs no denial (n >= 0), a denial no writer (n <= 0).
  if (delta > 0 ? n < 0 : n > 0) {
    if (n == 0) Counts().erase(key);
    return Errno(ETXTBSY);
  }
  n += delta;
  return WriteAccess(key, delta);
}

Result<WriteAccess> WriteAccess::Get(const FileLockKey& key) { return Take(key, 1); }

Result<WriteAccess> WriteAccess::Deny(const FileLockKey& key) { return Take(key, -1); }

int WriteAccess::CountOf(const FileLockKey& key) {
  absl::MutexLock l(&g_mu);
  auto it = Counts().find(key);
  return it == Counts().end() ? 0 : it->second;
}

WriteAccess& WriteAccess::operator=(WriteAccess&& o) noexcept {
  if (this != &o) {
    Release();
    key_ = o.key_;
    delta_ = std::exchange(o.delta_, 0);
  }
  return *this;
}

void WriteAccess::Release() {
  if (delta_ == 0) return;
  absl::MutexLock l(&g_mu);
  auto it = Counts().find(key_);
  if (it != Counts().end()) {
    it->second -= delta_;
    if (it->second == 0) Counts().erase(it);
  }
  delta_ = 0;
}

void WriteAccess::HoldUntilRelease(FileDescription& f, WriteAccess hold) {
  if (hold.delta_ == 0) return;
  // std::function needs a copyable callable: the hold lives in a shared
  // object that only the hook refers to.
  auto kept = std::make_shared<WriteAccess>(std::move(hold));
  f.OnRelease(&kReleaseOwner, [kept](const FileDescription*) { kept->Release(); });
}

void ReinitWriteAccessLockInForkChild() {
  // SAFETY: only the calling thread exists; the old lock word is only
  // overwritten (its waiters were threads of the seed).
  new (&g_mu) absl::Mutex;
}

}  // namespace seedvisor::sentry
