#include "seedd/migration_warmth.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "sentry/base/deadline.h"

namespace seedvisor::seedd {
namespace {

// The path of this process's cgroup in the v1 hierarchy that has
// `controller` ("/" for its root); "" when there is none.
std::string OwnCgroup(const std::string& controller) {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line)) {
    // "4:memory:/user.slice", "3:cpu,cpuacct:/"
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    for (absl::string_view c : absl::StrSplit(parts[1], ',')) {
      if (c == controller) return parts[2];
    }
  }
  return "";
}

// Moves thread `tid` into the cgroup whose tasks file `fd` is (where it is).
bool WriteTid(int fd, pid_t tid) {
  const std::string v = absl::StrCat(tid);
  return write(fd, v.data(), v.size()) == static_cast<ssize_t>(v.size());
}

}  // namespace

MigrationWarmth::MigrationWarmth(MigrationWarmthOptions o) : opts_(std::move(o)) {}

MigrationWarmth::~MigrationWarmth() { Stop(); }

absl::Status MigrationWarmth::Start() {
  const std::string own = OwnCgroup("memory");
  if (own.empty()) {
    return absl::NotFoundError("/proc/self/cgroup: seedd is in no v1 memory cgroup");
  }
  const std::string tasks = absl::StrCat(opts_.mount, "/memory", own == "/" ? "" : own, "/tasks");
  const int fd = open(tasks.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("opening ", tasks, ": ", strerror(errno)));
  // This thread moved where it is: the file takes what the loop writes.
  if (!WriteTid(fd, gettid())) {
    const int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("writing a thread id to ", tasks, ": ", strerror(err)));
  }
  thread_ = std::thread([this, fd] { Loop(fd); });
  return absl::OkStatus();
}

void MigrationWarmth::Touch() {
  absl::MutexLock l(&mu_);
  touched_ = sentry::MonotonicNow();
}

uint64_t MigrationWarmth::writes() const {
  absl::MutexLock l(&mu_);
  return writes_;
}

void MigrationWarmth::Loop(int fd) {
  pthread_setname_np(pthread_self(), kThreadName);
  const pid_t tid = gettid();
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      // Re-evaluated when Touch or Stop releases the lock; false again once
      // `linger` has passed since the last Touch.
      auto wanted = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || sentry::MonotonicNow() - touched_ < opts_.linger;
      };
      mu_.Await(absl::Condition(&wanted));
      if (stopping_) break;
    }
    if (!WriteTid(fd, tid)) {
      std::fprintf(stderr, "seedd: keeping cgroup migrations fast stopped: writing to the tasks "
                           "file of seedd's memory cgroup: %s\n", strerror(errno));
      break;
    }
    absl::MutexLock l(&mu_);
    ++writes_;
    stop_cv_.Await(&mu_, absl::Condition(&stopping_), sentry::Deadline::In(opts_.period));
    if (stopping_) break;
  }
  close(fd);
}

void MigrationWarmth::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    stop_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace seedvisor::seedd
