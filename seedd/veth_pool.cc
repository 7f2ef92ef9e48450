#include "seedd/veth_pool.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runsc/do_network.h"
#include "seedd/veth_guard.h"
#include "sentry/base/deadline.h"

namespace seedvisor::seedd {
namespace {

constexpr absl::Duration kMaxBackoff = absl::Seconds(64);

// `first` after the first failure in a row, doubling to kMaxBackoff.
absl::Duration Backoff(absl::Duration first, int failures) {
  return std::min(first * (int64_t{1} << std::min(failures - 1, 6)), kMaxBackoff);
}

// Whether an interface other than `own` has an IPv4 address whose subnet
// overlaps `subnet`/24 (host order).
bool SubnetTakenElsewhere(uint32_t subnet, const std::string& own) {
  ifaddrs* all = nullptr;
  if (getifaddrs(&all) != 0) return false;  // then netlink's own errors speak
  bool taken = false;
  for (ifaddrs* i = all; i != nullptr && !taken; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET || own == i->ifa_name) {
      continue;
    }
    const uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    uint32_t mask = 0xffffffffu;
    if (i->ifa_netmask != nullptr) {
      mask = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
    }
    mask &= 0xffffff00u;  // the shorter prefix of the two
    taken = (a & mask) == (subnet & mask);
  }
  freeifaddrs(all);
  return taken;
}

// How many pools of each prefix of this process have filled and not ended:
// the interfaces of a prefix no pool holds are an earlier run's.
std::mutex g_live_mu;
std::map<std::string, int>& LivePools() {
  static auto* live = new std::map<std::string, int>;
  return *live;
}

}  // namespace

std::string HostEndPrefixFor(const std::string& state_dir) {
  // Letters only: a name is then <prefix><digits> in one way alone.
  size_t h = std::hash<std::string>()(state_dir);
  std::string p = "svp";
  for (int i = 0; i < 8; ++i, h /= 26) p.push_back(char('a' + h % 26));
  return p;
}

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
  if (counted_) {
    std::lock_guard l(g_live_mu);
    if (--LivePools()[opts_.prefix] == 0) LivePools().erase(opts_.prefix);
  }
}

int VethPool::RemoveLeftovers() {
  struct if_nameindex* all = if_nameindex();
  if (all == nullptr) return 0;
  std::vector<std::string> names;
  for (struct if_nameindex* i = all; i->if_index != 0; ++i) {
    const std::string name = i->if_name;
    if (name.size() <= opts_.prefix.size() || name.size() > opts_.prefix.size() + 3 ||
        name.compare(0, opts_.prefix.size(), opts_.prefix) != 0 ||
        name.find_first_not_of("0123456789", opts_.prefix.size()) != std::string::npos) {
      continue;
    }
    names.push_back(name);
  }
  if_freenameindex(all);
  int n = 0;
  for (const std::string& name : names) {
    if (absl::Status s = runsc::DeleteLink(name); s.ok()) {
      ++n;
    } else {
      std::fprintf(stderr, "seedd: veth pool: deleting %s, an earlier run's: %s\n", name.c_str(),
                   std::string(s.message()).c_str());
    }
  }
  return n;
}

absl::StatusOr<VethPool::Device> VethPool::Make(int slot, bool* subnet_taken) {
  Device d;
  d.slot = slot;
  d.host_end = absl::StrCat(opts_.prefix, slot);
  runsc::SandboxAddrs a;
  a.guest = (10u << 24) | (uint32_t(opts_.octet) << 16) | (uint32_t(slot) << 8) | 2;
  a.host = (a.guest & ~0xffu) | 1;
  d.host_addr = a.host;
  // Another seedd's pool (or anything else here) has the subnet: its
  // guests and ours would share addresses, and the host's answers would go
  // to one of them.
  *subnet_taken = SubnetTakenElsewhere(a.host & ~0xffu, d.host_end);
  if (*subnet_taken) {
    return absl::AlreadyExistsError(absl::StrCat("veth pool device ", d.host_end, ": subnet ",
                                                 a.host >> 24, ".", (a.host >> 16) & 0xff, ".",
                                                 (a.host >> 8) & 0xff, ".0/24 is in use"));
  }
  absl::Status made = absl::InternalError("the device thread did not run");
  absl::StatusOr<std::vector<sentry::TakenInterface>> taken = made;
  try {
    std::thread([&] {
      made = runsc::MakeSandboxNetwork(a, d.host_end);
      if (made.ok()) taken = sentry::TakeOverInterfaces();
    }).join();
  } catch (const std::system_error& e) {
    // A full pids cgroup or pid_max: this slot fails (and backs off).
    made = absl::UnavailableError(absl::StrCat("the host refused a thread: ", e.what()));
    taken = made;
  }
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
  // A neighbour that checked at the same time as we did and made it too.
  if (SubnetTakenElsewhere(a.host & ~0xffu, d.host_end)) {
    *subnet_taken = true;
    Destroy(d);
    return absl::AlreadyExistsError(absl::StrCat("veth pool device ", d.host_end,
                                                 ": its subnet was taken meanwhile"));
  }
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

int VethPool::TakeSlot(absl::Duration now, absl::Duration* retry) {
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
  slots_[size_t(d.slot)].taken = 0;
  failures_in_a_row_ = 0;
  pause_ = absl::ZeroDuration();
  free_.push_back(std::move(d));
  ++created_;
}

void VethPool::Failed(int slot, const absl::Status& why) {
  Slot& s = slots_[size_t(slot)];
  const absl::Duration now = sentry::MonotonicNow();
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

void VethPool::SubnetTaken(int slot) {
  Slot& s = slots_[size_t(slot)];
  s.used = false;
  s.retry_at = sentry::MonotonicNow() + Backoff(opts_.backoff, ++s.taken);
  ++taken_subnets_;
}

void VethPool::Record(int slot, absl::StatusOr<Device> d, bool subnet_taken) {
  if (d.ok()) {
    Made(std::move(*d));
  } else if (subnet_taken) {
    SubnetTaken(slot);
  } else {
    Failed(slot, d.status());
  }
}

absl::Status VethPool::Fill() {
  // Before the first host end: its guest must not reach the host's services.
  if (!guarded_) {
    if (absl::Status s = GuardHostEnds(opts_.prefix); !s.ok()) return s;
    guarded_ = true;
  }
  if (!counted_) {
    counted_ = true;
    std::lock_guard l(g_live_mu);
    // The first pool of its prefix here: what has its names is an earlier
    // run's (a killed seedd's, whose namespaces the kernel has not torn
    // down yet), and would fail our slots with "File exists".
    if (LivePools()[opts_.prefix]++ == 0) leftovers_ = RemoveLeftovers();
    if (leftovers_ > 0) {
      std::fprintf(stderr, "seedd: veth pool: deleted %d host ends %s<N> an earlier run left\n",
                   leftovers_, opts_.prefix.c_str());
    }
  }
  for (;;) {
    int slot;
    {
      absl::MutexLock l(&mu_);
      if (int(free_.size()) >= opts_.size) break;
      absl::Duration retry = absl::InfiniteDuration();
      slot = TakeSlot(sentry::MonotonicNow(), &retry);
      if (slot < 0) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "veth pool: no subnet left for ", opts_.size, " devices (", failures_, " failed, ",
            taken_subnets_, " times a subnet was another interface's)"));
      }
    }
    bool subnet_taken = false;
    absl::StatusOr<Device> d = Make(slot, &subnet_taken);
    absl::MutexLock l(&mu_);
    const bool failed = !d.ok() && !subnet_taken;
    absl::Status why = d.status();
    Record(slot, std::move(d), subnet_taken);
    if (failed && failures_in_a_row_ >= kFailuresInARow) {
      return absl::Status(why.code(), absl::StrCat(why.message(), " (", kFailuresInARow,
                                                   " in a row failed)"));
    }
  }
  thread_ = std::thread([this] { Refill(); });
  return absl::OkStatus();
}

std::optional<VethPool::Device> VethPool::Take() {
  absl::MutexLock l(&mu_);
  Wake();
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
  Wake();
}

void VethPool::Wake() {
  wake_ = true;
  wake_cv_.SignalAll();
}

void VethPool::Refill() {
  pthread_setname_np(pthread_self(), kRefillThreadName);  // as CgroupPool's
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
        absl::Duration retry = absl::InfiniteDuration();
        if (int(free_.size()) < opts_.size) slot = TakeSlot(sentry::MonotonicNow(), &retry);
        if (slot >= 0) break;
        wake_ = false;
        wake_cv_.Await(&mu_, absl::Condition(&wake_), sentry::Deadline::At(retry));  // issue 10
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
    bool subnet_taken = false;
    absl::StatusOr<Device> d = Make(slot, &subnet_taken);  // off the lock: 16 ms
    absl::MutexLock l(&mu_);
    Record(slot, std::move(d), subnet_taken);
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
  s.taken_subnets = taken_subnets_;
  s.leftovers = leftovers_;
  s.wakeups = wakeups_;
  return s;
}

void VethPool::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    Wake();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace seedvisor::seedd
