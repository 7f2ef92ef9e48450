// A pool of network devices for instances (issue 11; DESIGN.md "Early
// destroy and pools"), so that nothing on the request path makes a network
// namespace or a veth (16 ms each here; bench/veth_attach_bench.cc). Each
// device is a network namespace of its own holding one end of a veth pair,
// already taken over for a sandbox's stack (its AF_PACKET socket open, its
// address read and taken from the kernel: sentry/socket/net_takeover.h),
// and the other end (the "host end", <prefix><slot>) in seedd's namespace
// with the subnet's host address: 10.<octet>.<slot>.2/24 for the guest,
// .1 for the host end.
//
// The guest reaches only what listens on its host end's address itself
// and the answers to connections the host opened, not the host's
// wildcard services: Fill() installs seedd/veth_guard.h's rules first.
//
// A device is never handed out twice: given back, the pool's thread closes
// its packet socket and deletes its host end, which takes the guest end along
// at once (veth_dellink()), whoever else may still hold the namespace; the
// kernel removes the namespace when its last holder goes. So nothing of
// the last guest reaches the next one: no frame queued on the socket, no
// neighbour entry or connection of the host end, no address or sysctl of
// the namespace. The thread makes the replacement off the path.
//
// Host ends are named <prefix><slot>; seedd's prefix is its own
// (HostEndPrefixFor its state dir), so that two seedds on one host never
// ask for one name. Fill() first deletes what an earlier run of the same
// prefix left (a killed seedd's host ends live on until the kernel tears
// their namespaces down, which it does in its own time). A subnet that an
// interface other than the slot's own already has (another seedd's pool
// of the same octet, or anything else on the host) is skipped until it is
// free, and a device found to share one once made is deleted again.
//
// A slot whose device cannot be made (its host end's name taken, a refused
// netlink request) is logged once with the reason and skipped: it is tried
// again after a backoff (1 s, doubling to 64 s) while the others fill the
// pool; three failures in a row pause the whole pool so (a host-wide cause
// fails every slot). The thread sleeps until a device is taken or given
// back, or a backoff ends: an idle pool never wakes.
//
//   VethPool pool({.size = 4});
//   RETURN_IF_ERROR(pool.Fill());
//   VethPool::Lease l = pool.TakeLease();  // l.get() == nullptr: none ready
//   ... Fork with l.get()->taken (ForkRequest.net_device, its packet socket) ...
//   // ~Lease gives it back, once the instance is gone
#ifndef SEEDVISOR_SEEDD_VETH_POOL_H_
#define SEEDVISOR_SEEDD_VETH_POOL_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_clock.h"
#include "sentry/base/mono_condvar.h"
#include "sentry/socket/net_takeover.h"

namespace seedvisor::seedd {

// The host ends' prefix of the seedd whose state dir is `state_dir` (an
// absolute path): "svp" and eight letters from its hash, the same for every
// run with that dir and another for another dir. A name with its slot's
// number fits IFNAMSIZ, and the chain SVPOOL-<prefix> iptables' limit.
std::string HostEndPrefixFor(const std::string& state_dir);

struct VethPoolOptions {
  int size = 4;                // free devices the pool keeps ready
  int octet = 203;             // subnets 10.<octet>.<slot>.0/24
  // Host ends: <prefix><slot> (short: IFNAMSIZ). The pool owns every
  // interface so named: Fill() deletes those it did not make.
  std::string prefix = "svp";
  // A failed slot waits this long before its next try, doubling (to 64 s)
  // while it fails; the whole pool waits so after kFailuresInARow.
  absl::Duration backoff = absl::Seconds(1);
};

struct VethPoolStats {
  int free = 0, in_use = 0;
  int dying = 0;  // given back, their host end not deleted yet
  uint64_t created = 0, destroyed = 0, misses = 0;
  uint64_t failures = 0;  // devices that could not be made
  uint64_t taken_subnets = 0;  // slots skipped: another interface has their subnet
  int leftovers = 0;           // host ends of an earlier run that Fill() deleted
  uint64_t wakeups = 0;   // the thread's: none while the pool is full and idle
};

class VethPool {
 public:
  static constexpr int kSlots = 250;
  static constexpr int kFailuresInARow = 3;  // then the whole pool backs off
  // The host thread that makes and destroys the devices off the request path.
  static constexpr const char* kRefillThreadName = "seedd-vethfill";

  struct Device {
    sentry::TakenInterface taken;  // the guest end: its packet socket and description
    int slot = -1;
    std::string host_end;
    uint32_t host_addr = 0;  // host byte order
  };

  // A taken device (or none: a miss), given back when the lease ends.
  class Lease {
   public:
    Lease() = default;
    Lease(VethPool* pool, std::optional<Device> d) : pool_(pool), dev_(std::move(d)) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), dev_(std::move(o.dev_)) { o.dev_.reset(); }
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr && dev_) pool_->Give(std::move(*dev_));
    }
    const Device* get() const { return dev_ ? &*dev_ : nullptr; }

   private:
    VethPool* pool_ = nullptr;
    std::optional<Device> dev_;
  };

  explicit VethPool(VethPoolOptions o);
  ~VethPool();  // Stop(), then the free and given-back devices are destroyed
  VethPool(const VethPool&) = delete;
  VethPool& operator=(const VethPool&) = delete;

  // Makes `size` devices, one after the other (a failing slot skipped),
  // then starts the thread that refills the pool. Root (CAP_NET_ADMIN,
  // CAP_SYS_ADMIN for the namespaces). An error, after kFailuresInARow
  // devices in a row failed or no slot is left, says which and why.
  absl::Status Fill();
  // A ready device, or nullopt (a miss) when none is: the instance then
  // has no device (loopback only), and the thread makes more.
  std::optional<Device> Take();
  Lease TakeLease() { return Lease(this, Take()); }
  // The thread closes `d`'s packet socket, deletes its veth and replaces
  // it.
  void Give(Device d);
  VethPoolStats Stats() const;
  void Stop();

 private:
  // What the pool knows of a subnet.
  struct Slot {
    bool used = false;  // by a device: being made, free, in use or dying
    int failures = 0;   // in a row
    int taken = 0;      // times in a row its subnet was another interface's
    absl::Duration retry_at = -absl::InfiniteDuration();  // MonotonicNow()
  };

  // One device in `slot`, made in a thread of its own (the namespace
  // change is per thread and does not come back). *subnet_taken when it
  // failed because another interface has the slot's subnet.
  absl::StatusOr<Device> Make(int slot, bool* subnet_taken);
  // Deletes the interfaces named <prefix><number> (an earlier run's).
  int RemoveLeftovers();
  // Closes what is left of `d` and deletes its veth pair.
  static void Destroy(Device& d);
  void Refill();
  // A slot to make a device in now, marked used; -1 if none is, with
  // `*retry` lowered to when one comes out of its backoff.
  int TakeSlot(absl::Duration now, absl::Duration* retry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Made(Device d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees `slot` after a failed Make, backs it off and says why (once).
  void Failed(int slot, const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Something changed: the refill thread looks again.
  void Wake() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees `slot` whose subnet another interface has, backed off as a
  // failure but not counted as one: a neighbour's slots are no fault.
  void SubnetTaken(int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Make's outcome for `slot`, under the lock.
  void Record(int slot, absl::StatusOr<Device> d, bool subnet_taken)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const VethPoolOptions opts_;
  mutable absl::Mutex mu_;
  std::deque<Device> free_ ABSL_GUARDED_BY(mu_);
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<Device> dying_ ABSL_GUARDED_BY(mu_);
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  int failures_in_a_row_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration paused_until_ ABSL_GUARDED_BY(mu_) = -absl::InfiniteDuration();  // MonotonicNow()
  absl::Duration pause_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  uint64_t created_ ABSL_GUARDED_BY(mu_) = 0, destroyed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0, failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t taken_subnets_ ABSL_GUARDED_BY(mu_) = 0;
  int leftovers_ = 0;  // Fill's
  uint64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  bool guarded_ = false;  // GuardHostEnds() done (Fill)
  bool counted_ = false;  // in the process's live pools of its prefix (Fill)
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // Take, Give, Stop: something changed
  sentry::MonoCondVar wake_cv_;               // signalled with wake_ (Wake)
  std::thread thread_;
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_VETH_POOL_H_
