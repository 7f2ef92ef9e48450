#include "seedd/veth_pool.h"

#include <net/if.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runsc/do_network.h"

namespace seedvisor::seedd {

VethPool::VethPool(VethPoolOptions o) : opts_(std::move(o)), slot_used_(kSlots, false) {}

VethPool::~VethPool() {
  Stop();
  absl::MutexLock l(&mu_);
  for (Device& d : free_) close(d.taken.packet_fd);
  free_.clear();
}

absl::StatusOr<VethPool::Device> VethPool::Make(int slot) {
  Device d;
  d.slot = slot;
  d.host_end = absl::StrCat(opts_.prefix, slot);
  runsc::SandboxAddrs a;
  a.guest = (10u << 24) | (uint32_t(opts_.octet) << 16) | (uint32_t(slot) << 8) | 2;
  a.host = (a.guest & ~0xffu) | 1;
  d.host_addr = a.host;
  absl::StatusOr<std::vector<sentry::TakenInterface>> taken =
      absl::InternalError("the device thread did not run");
  std::thread([&] {
    absl::Status s = runsc::MakeSandboxNetwork(a, d.host_end);
    if (!s.ok()) {
      taken = s;
      return;
    }
    taken = sentry::TakeOverInterfaces();
  }).join();
  if (!taken.ok()) {
    return absl::Status(taken.status().code(), absl::StrCat("veth pool device ", d.host_end,
                                                            ": ", taken.status().message()));
  }
  if (taken->size() != 1) {
    for (sentry::TakenInterface& t : *taken) close(t.packet_fd);
    return absl::InternalError(absl::StrCat("veth pool device ", d.host_end, ": ", taken->size(),
                                            " interfaces taken over, not 1"));
  }
  d.taken = (*taken)[0];
  return d;
}

int VethPool::FreeSlot() {
  // A dying device's slot is free again once the kernel removed its host
  // end (namespace teardown is asynchronous): its subnet's route is gone.
  for (auto it = dying_.begin(); it != dying_.end();) {
    if (if_nametoindex(it->host_end.c_str()) == 0) {
      slot_used_[size_t(it->slot)] = false;
      ++destroyed_;
      it = dying_.erase(it);
    } else {
      ++it;
    }
  }
  for (int s = 0; s < kSlots; ++s) {
    if (!slot_used_[size_t(s)]) return s;
  }
  return -1;
}

absl::Status VethPool::Fill() {
  for (int i = 0; i < opts_.size; ++i) {
    int slot;
    {
      absl::MutexLock l(&mu_);
      slot = FreeSlot();
      if (slot < 0) return absl::ResourceExhaustedError("veth pool: all subnets in use");
      slot_used_[size_t(slot)] = true;
    }
    absl::StatusOr<Device> d = Make(slot);
    absl::MutexLock l(&mu_);
    if (!d.ok()) {
      slot_used_[size_t(slot)] = false;
      return d.status();
    }
    free_.push_back(std::move(*d));
    ++created_;
  }
  thread_ = std::thread([this] { Refill(); });
  return absl::OkStatus();
}

std::optional<VethPool::Device> VethPool::Take() {
  absl::MutexLock l(&mu_);
  if (free_.empty()) {
    ++misses_;
    wake_ = true;
    return std::nullopt;
  }
  Device d = std::move(free_.front());
  free_.pop_front();
  ++in_use_;
  wake_ = true;
  return d;
}

void VethPool::Give(Device d) {
  close(d.taken.packet_fd);  // the namespace's last holder: the kernel deletes it
  d.taken.packet_fd = -1;
  absl::MutexLock l(&mu_);
  --in_use_;
  dying_.push_back(std::move(d));
  wake_ = true;
}

void VethPool::Refill() {
  for (;;) {
    int slot = -1;
    {
      absl::MutexLock l(&mu_);
      // Wake for a change, and every 50 ms while a host end is dying.
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](VethPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
                                 return p->wake_ || p->stop_;
                               },
                               this),
                           absl::Milliseconds(50));
      wake_ = false;
      if (stop_) return;
      if (int(free_.size()) >= opts_.size) {
        FreeSlot();  // only reaps the dying
        continue;
      }
      slot = FreeSlot();
      if (slot < 0) continue;  // every subnet busy: wait for a dying one
      slot_used_[size_t(slot)] = true;
    }
    absl::StatusOr<Device> d = Make(slot);  // off the lock: 16 ms
    absl::MutexLock l(&mu_);
    if (!d.ok()) {
      slot_used_[size_t(slot)] = false;
      continue;  // tried again on the next wakeup
    }
    free_.push_back(std::move(*d));
    ++created_;
    wake_ = true;  // maybe more to make
  }
}

VethPoolStats VethPool::Stats() const {
  absl::MutexLock l(&mu_);
  return {int(free_.size()), in_use_, int(dying_.size()), created_, destroyed_, misses_};
}

void VethPool::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace seedvisor::seedd
