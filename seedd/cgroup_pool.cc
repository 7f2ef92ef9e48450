#include "seedd/cgroup_pool.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sentry/base/deadline.h"

namespace seedvisor::seedd {
namespace {

absl::Status WriteFile(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  if (!f || !(f << value) || !f.flush()) {
    return absl::InternalError(absl::StrCat("writing \"", value, "\" to ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

std::vector<int> ReadPids(const std::string& procs) {
  std::vector<int> out;
  std::ifstream f(procs);
  std::string line;
  while (std::getline(f, line)) {
    int pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) out.push_back(pid);
  }
  return out;
}

// Kills what is in `dir` (a cgroup directory) and removes it; a cgroup can
// be removed only once its last task has exited, hence the retries.
bool KillAndRemove(const std::string& dir) {
  for (int i = 0; i < 200; ++i) {
    for (int pid : ReadPids(dir + "/cgroup.procs")) kill(pid, SIGKILL);
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

}  // namespace

CgroupPool::CgroupPool(CgroupPoolOptions o)
    : opts_(std::move(o)),
      warmth_(MigrationWarmthOptions{.linger = opts_.warm_linger, .mount = opts_.mount}) {}

CgroupPool::~CgroupPool() {
  Stop();
  absl::MutexLock l(&mu_);
  for (const std::string& cg : all_) {
    for (const std::string& c : opts_.controllers) KillAndRemove(Dir(c, cg));
  }
  for (const std::string& c : opts_.controllers) rmdir(Dir(c, "").c_str());
}

std::string CgroupPool::Dir(const std::string& controller, const std::string& cgroup) const {
  return cgroup.empty() ? absl::StrCat(opts_.mount, "/", controller, "/", opts_.parent)
                        : absl::StrCat(opts_.mount, "/", controller, "/", cgroup);
}

absl::StatusOr<int> CgroupPool::RemoveLeftovers() {
  int removed = 0;
  for (const std::string& c : opts_.controllers) {
    std::string parent = Dir(c, "");
    std::error_code ec;
    if (!std::filesystem::is_directory(parent, ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
      if (!e.is_directory()) continue;
      if (!KillAndRemove(e.path().string())) {
        return absl::FailedPreconditionError(
            absl::StrCat("cgroup ", e.path().string(), " left by an earlier seedd: cannot remove it"));
      }
      if (c == opts_.controllers.front()) ++removed;
    }
    if (!KillAndRemove(parent)) {
      return absl::FailedPreconditionError(absl::StrCat("cgroup ", parent, ": cannot remove it"));
    }
  }
  return removed;
}

absl::StatusOr<std::string> CgroupPool::Make() {
  std::string cg;
  {
    absl::MutexLock l(&mu_);
    cg = absl::StrCat(opts_.parent, "/c", next_++);
  }
  for (const std::string& c : opts_.controllers) {
    std::string dir = Dir(c, cg);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("making cgroup ", dir, ": ", strerror(errno)));
    }
  }
  uint64_t kills = OomKills(cg);  // 0 unless an earlier run's cgroup was left
  {
    absl::MutexLock l(&mu_);
    all_.push_back(cg);
    oom_kills_at_free_[cg] = kills;
  }
  if (opts_.memory_limit > 0) {
    absl::Status s = WriteFile(Dir("memory", cg) + "/memory.limit_in_bytes", absl::StrCat(opts_.memory_limit));
    if (!s.ok()) return s;
  }
  if (opts_.pids_max > 0) {
    absl::Status s = WriteFile(Dir("pids", cg) + "/pids.max", absl::StrCat(opts_.pids_max));
    if (!s.ok()) return s;
  }
  return cg;
}

absl::Status CgroupPool::Fill() {
  for (const std::string& c : opts_.controllers) {
    std::string dir = Dir(c, "");
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("making cgroup ", dir, ": ", strerror(errno),
                                              " (cgroup v1 with the ", c, " controller is needed)"));
    }
  }
  for (int i = 0; i < opts_.size; ++i) {
    absl::StatusOr<std::string> cg = Make();
    if (!cg.ok()) return cg.status();
    absl::MutexLock l(&mu_);
    free_.push_back(*cg);
  }
  refill_ = std::thread([this] { Refill(); });
  if (opts_.warm_linger > absl::ZeroDuration()) {
    absl::Status s = warmth_.Start();
    warm_ = s.ok();
    if (!s.ok()) {
      std::fprintf(stderr, "seedd: instances may wait for the kernel's cgroup migration lock "
                           "(an RCU grace period) now and then: %s\n", std::string(s.message()).c_str());
    }
  }
  return absl::OkStatus();
}

std::string CgroupPool::Take() {
  if (warm_) warmth_.Touch();
  {
    absl::MutexLock l(&mu_);
    ++in_use_;
    work_ = true;  // top up behind us
    work_cv_.SignalAll();
    if (!free_.empty()) {
      std::string cg = free_.front();
      free_.pop_front();
      return cg;
    }
    ++misses_;
  }
  absl::StatusOr<std::string> cg = Make();
  if (cg.ok()) return *cg;
  absl::MutexLock l(&mu_);
  --in_use_;
  return "";
}

void CgroupPool::Give(const std::string& cgroup) {
  absl::MutexLock l(&mu_);
  if (cgroup.empty()) return;
  --in_use_;
  ++draining_count_;
  draining_.push_back(cgroup);
  work_ = true;
  work_cv_.SignalAll();
}

bool CgroupPool::Empty(const std::string& cgroup) const {
  for (const std::string& c : opts_.controllers) {
    if (!ReadPids(Dir(c, cgroup) + "/cgroup.procs").empty()) return false;
  }
  return true;
}

void CgroupPool::Reset(const std::string& cgroup) {
  // Pages the instance left charged (its tmpfs, page cache) go with it, and
  // so do the counters of what it did: the next instance starts clean.
  std::string dir = Dir("memory", cgroup);
  WriteFile(dir + "/memory.force_empty", "0").IgnoreError();
  WriteFile(dir + "/memory.failcnt", "0").IgnoreError();
  WriteFile(dir + "/memory.max_usage_in_bytes", "0").IgnoreError();
  uint64_t kills = OomKills(cgroup);
  absl::MutexLock l(&mu_);
  oom_kills_at_free_[cgroup] = kills;
}

uint64_t CgroupPool::OomKills(const std::string& cgroup) const {
  // memory.oom_control: "oom_kill_disable 0\nunder_oom 0\noom_kill N\n"
  // (oom_kill since Linux 4.13).
  std::ifstream f(Dir("memory", cgroup) + "/memory.oom_control");
  std::string key;
  uint64_t v = 0;
  while (f >> key >> v) {
    if (key == "oom_kill") return v;
  }
  return 0;
}

std::string CgroupPool::LimitHit(const std::string& cgroup) {
  if (cgroup.empty() || opts_.memory_limit <= 0) return "";
  uint64_t kills = OomKills(cgroup);
  uint64_t base = 0;
  {
    absl::MutexLock l(&mu_);
    if (auto it = oom_kills_at_free_.find(cgroup); it != oom_kills_at_free_.end()) base = it->second;
  }
  uint64_t failcnt = 0;
  std::ifstream f(Dir("memory", cgroup) + "/memory.failcnt");
  f >> failcnt;
  if (kills <= base && failcnt == 0) return "";
  std::string what = kills > base
                         ? absl::StrCat("the kernel's OOM killer killed ", kills - base,
                                        " of its processes")
                         : absl::StrCat("its usage reached the limit ", failcnt, " times");
  return absl::StrCat("the function exceeded its memory limit of ", opts_.memory_limit >> 20,
                      " MiB (--instance-memory; ", what, " in cgroup ", Dir("memory", cgroup), ")");
}

std::vector<int> CgroupPool::Pids(const std::string& cgroup) const {
  return ReadPids(Dir("memory", cgroup) + "/cgroup.procs");
}

void CgroupPool::Refill() {
  // Named so that a trace of the host tells its cgroup creations from the
  // request path's (test/seedd/seedd_invoke_path.py: there are none there).
  pthread_setname_np(pthread_self(), kRefillThreadName);
  // A given-back cgroup whose processes outlive this many checks (the
  // instance was destroyed: they are dying) has them killed.
  constexpr int kPatience = 50;
  std::map<std::string, int> checks;
  for (;;) {
    std::deque<std::string> draining;
    int missing = 0;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || work_; };
      work_cv_.Await(&mu_, absl::Condition(&ready), sentry::Deadline::In(absl::Milliseconds(20)));
      if (stopping_) return;
      work_ = false;
      draining.swap(draining_);
      missing = opts_.size - static_cast<int>(free_.size());
    }
    std::deque<std::string> still;
    for (const std::string& cg : draining) {
      if (!Empty(cg)) {
        if (++checks[cg] > kPatience) {
          for (const std::string& c : opts_.controllers) {
            for (int pid : ReadPids(Dir(c, cg) + "/cgroup.procs")) kill(pid, SIGKILL);
          }
        }
        still.push_back(cg);
        continue;
      }
      checks.erase(cg);
      Reset(cg);
      absl::MutexLock l(&mu_);
      --draining_count_;
      // The pool is topped up while instances hold cgroups, so up to `size`
      // more come back: keep them (they are the ones recycled from now on)
      // until there are twice `size` free, then shrink.
      if (static_cast<int>(free_.size()) >= 2 * opts_.size) {
        for (const std::string& c : opts_.controllers) rmdir(Dir(c, cg).c_str());
        std::erase(all_, cg);
        oom_kills_at_free_.erase(cg);
        continue;
      }
      free_.push_back(cg);
      ++recycled_;
      --missing;
    }
    for (; missing > 0; --missing) {
      absl::StatusOr<std::string> cg = Make();
      if (!cg.ok()) break;
      absl::MutexLock l(&mu_);
      free_.push_back(*cg);
    }
    absl::MutexLock l(&mu_);
    for (std::string& cg : still) draining_.push_back(std::move(cg));
  }
}

CgroupPoolStats CgroupPool::Stats() const {
  absl::MutexLock l(&mu_);
  return {.free = static_cast<int>(free_.size()),
          .in_use = in_use_,
          .draining = draining_count_,
          .created = all_.size(),
          .recycled = recycled_,
          .misses = misses_,
          .warm_writes = warmth_.writes()};
}

void CgroupPool::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
  }
  if (refill_.joinable()) refill_.join();
  warmth_.Stop();
}

}  // namespace seedvisor::seedd
