#include "seedd/veth_pool.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runsc/do_network.h"
#include "seedd/veth_guard.h"

namespace seedvisor::seedd {
namespace {

constexpr absl::Duration kMaxBackoff = absl::Seconds(64);

// `first` after the first failure in a row, doubling to kMaxBackoff.
absl::Duration Backoff(absl::Duration first, int failures) {
  return std::min(first * (int64_t{1} << std::min(failures - 1, 6)), kMaxBackoff);
}

}  // namespace

VethPool::VethPool(VethPoolOptions o) : opts_(std::move(o)), slots_(kSlots) {}

VethPool::~VethPool() {
  Stop();
  std::deque<Device> left;
  {
    absl::MutexLock l(&mu_);
    left.swap(free_);
    for (Device& d : dying_) left.push_back(std::move(d));
    dying_.clear();
  }
  for (Device& d : left) Destroy(d);
  if (guarded_) UnguardHostEnds(opts_.prefix);
}

absl::StatusOr<VethPool::Device> VethPool::Make(int slot) {
  Device d;
  d.slot = slot;
  d.host_end = absl::StrCat(opts_.prefix, slot);
  runsc::SandboxAddrs a;
  a.guest = (10u << 24) | (uint32_t(opts_.octet) << 16) | (uint32_t(slot) << 8) | 2;
  a.host = (a.guest & ~0xffu) | 1;
  d.host_addr = a.host;
  absl::Status made = absl::InternalError("the device thread did not run");
  absl::StatusOr<std::vector<sentry::TakenInterface>> taken = made;
  std::thread([&] {
    made = runsc::MakeSandboxNetwork(a, d.host_end);
    if (made.ok()) taken = sentry::TakeOverInterfaces();
  }).join();
  absl::Status s = made.ok() ? taken.status() : made;
  if (s.ok() && taken->size() != 1) {
    for (sentry::TakenInterface& t : *taken) close(t.packet_fd);
    s = absl::InternalError(absl::StrCat(taken->size(), " interfaces taken over, not 1"));
  }
  if (!s.ok()) {
    // A pair made here goes now, not once the kernel tears its namespace
    // down: its host end's name is the slot's.
    if (made.ok()) runsc::DeleteLink(d.host_end).IgnoreError();
    return absl::Status(s.code(), absl::StrCat("veth pool device ", d.host_end, ": ", s.message()));
  }
  d.taken = (*taken)[0];
  return d;
}

void VethPool::Destroy(Device& d) {
  if (d.taken.packet_fd >= 0) close(d.taken.packet_fd);
  d.taken.packet_fd = -1;
  // The guest end goes with it, whoever still holds its namespace.
  if (absl::Status s = runsc::DeleteLink(d.host_end); !s.ok()) {
    std::fprintf(stderr, "seedd: veth pool: deleting %s: %s\n", d.host_end.c_str(),
                 std::string(s.message()).c_str());
  }
}

int VethPool::TakeSlot(absl::Time now, absl::Time* retry) {
  if (now < paused_until_) {
    *retry = std::min(*retry, paused_until_);
    return -1;
  }
  for (int i = 0; i < kSlots; ++i) {
    Slot& s = slots_[size_t(i)];
    if (s.used) continue;
    if (now < s.retry_at) {
      *retry = std::min(*retry, s.retry_at);
      continue;
    }
    s.used = true;
    return i;
  }
  return -1;
}

void VethPool::Made(Device d) {
  slots_[size_t(d.slot)].failures = 0;
  failures_in_a_row_ = 0;
  pause_ = absl::ZeroDuration();
  free_.push_back(std::move(d));
  ++created_;
}

void VethPool::Failed(int slot, const absl::Status& why) {
  Slot& s = slots_[size_t(slot)];
  const absl::Time now = absl::Now();
  s.used = false;
  s.retry_at = now + Backoff(opts_.backoff, ++s.failures);
  ++failures_;
  if (s.failures == 1) {
    std::fprintf(stderr, "seedd: %s (its slot is tried again in %s, then less often)\n",
                 std::string(why.message()).c_str(),
                 absl::FormatDuration(opts_.backoff).c_str());
  }
  if (++failures_in_a_row_ < kFailuresInARow) return;
  pause_ = pause_ == absl::ZeroDuration() ? opts_.backoff : std::min(2 * pause_, kMaxBackoff);
  paused_until_ = now + pause_;
  if (failures_in_a_row_ == kFailuresInARow) {
    std::fprintf(stderr,
                 "seedd: veth pool: %d devices in a row not made: the pool waits %s before the "
                 "next, then longer (to %s) while they fail\n",
                 kFailuresInARow, absl::FormatDuration(pause_).c_str(),
                 absl::FormatDuration(kMaxBackoff).c_str());
  }
}

absl::Status VethPool::Fill() {
  // Before the first host end: its guest must not reach the host's services.
  if (!guarded_) {
    if (absl::Status s = GuardHostEnds(opts_.prefix); !s.ok()) return s;
    guarded_ = true;
  }
  for (;;) {
    int slot;
    {
      absl::MutexLock l(&mu_);
      if (int(free_.size()) >= opts_.size) break;
      absl::Time retry = absl::InfiniteFuture();
      slot = TakeSlot(absl::Now(), &retry);
      if (slot < 0) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "veth pool: no subnet left for ", opts_.size, " devices (", failures_, " failed)"));
      }
    }
    absl::StatusOr<Device> d = Make(slot);
    absl::MutexLock l(&mu_);
    if (d.ok()) {
      Made(std::move(*d));
      continue;
    }
    Failed(slot, d.status());
    if (failures_in_a_row_ >= kFailuresInARow) {
      return absl::Status(d.status().code(), absl::StrCat(d.status().message(), " (",
                                                          kFailuresInARow, " in a row failed)"));
    }
  }
  thread_ = std::thread([this] { Refill(); });
  return absl::OkStatus();
}

std::optional<VethPool::Device> VethPool::Take() {
  absl::MutexLock l(&mu_);
  wake_ = true;
  if (free_.empty()) {
    ++misses_;
    return std::nullopt;
  }
  Device d = std::move(free_.front());
  free_.pop_front();
  ++in_use_;
  return d;
}

void VethPool::Give(Device d) {
  // All on the thread, off the caller's path: closing the packet socket
  // waits for an RCU grace period (packet_release()'s synchronize_net()).
  absl::MutexLock l(&mu_);
  --in_use_;
  dying_.push_back(std::move(d));
  wake_ = true;
}

void VethPool::Refill() {
  for (;;) {
    std::optional<Device> dead;
    int slot = -1;
    {
      absl::MutexLock l(&mu_);
      // Asleep until a Take, Give or Stop, or until a failed slot's (or
      // the pool's) backoff ends while a device is missing.
      for (;;) {
        if (stop_) return;
        if (!dying_.empty()) {
          dead.emplace(std::move(dying_.front()));
          dying_.pop_front();
          break;
        }
        absl::Time retry = absl::InfiniteFuture();
        if (int(free_.size()) < opts_.size) slot = TakeSlot(absl::Now(), &retry);
        if (slot >= 0) break;
        wake_ = false;
        mu_.AwaitWithDeadline(absl::Condition(&wake_), retry);
        ++wakeups_;
      }
    }
    if (dead) {
      Destroy(*dead);
      absl::MutexLock l(&mu_);
      slots_[size_t(dead->slot)].used = false;
      ++destroyed_;
      continue;
    }
    absl::StatusOr<Device> d = Make(slot);  // off the lock: 16 ms
    absl::MutexLock l(&mu_);
    if (d.ok()) {
      Made(std::move(*d));
    } else {
      Failed(slot, d.status());
    }
  }
}

VethPoolStats VethPool::Stats() const {
  absl::MutexLock l(&mu_);
  VethPoolStats s;
  s.free = int(free_.size());
  s.in_use = in_use_;
  s.dying = int(dying_.size());
  s.created = created_;
  s.destroyed = destroyed_;
  s.misses = misses_;
  s.failures = failures_;
  s.wakeups = wakeups_;
  return s;
}

void VethPool::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    wake_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace seedvisor::seedd
