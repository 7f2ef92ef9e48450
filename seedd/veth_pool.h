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
// A device is never handed out twice: Give() closes its packet socket, the
// last thing that holds its namespace, and the kernel deletes the namespace
// and the pair. So nothing of the last guest reaches the next one: no frame
// queued on the socket, no neighbour entry or connection of the host end,
// no address or sysctl of the namespace. The pool's thread makes the
// replacement off the path, in a slot whose old host end is gone.
//
//   VethPool pool({.size = 4});
//   RETURN_IF_ERROR(pool.Fill());
//   std::optional<VethPool::Device> d = pool.Take();  // nullopt: none ready
//   ... Fork with d->taken (ForkRequest.net_device and its packet socket) ...
//   pool.Give(std::move(*d));
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
#include "sentry/socket/net_takeover.h"

namespace seedvisor::seedd {

struct VethPoolOptions {
  int size = 4;              // free devices the pool keeps ready
  int octet = 203;           // subnets 10.<octet>.<slot>.0/24
  std::string prefix = "svp";  // host ends: <prefix><slot> (short: IFNAMSIZ)
};

struct VethPoolStats {
  int free = 0, in_use = 0;
  int dying = 0;  // given back, their host end not gone yet
  uint64_t created = 0, destroyed = 0, misses = 0;
};

class VethPool {
 public:
  static constexpr int kSlots = 250;

  struct Device {
    sentry::TakenInterface taken;  // the guest end: its packet socket and description
    int slot = -1;
    std::string host_end;
    uint32_t host_addr = 0;  // host byte order
  };

  explicit VethPool(VethPoolOptions o);
  ~VethPool();  // Stop(), then the free devices are destroyed
  VethPool(const VethPool&) = delete;
  VethPool& operator=(const VethPool&) = delete;

  // Makes `size` devices, one after the other, then starts the thread that
  // refills the pool. Root (CAP_NET_ADMIN, CAP_SYS_ADMIN for the
  // namespaces). An error says which device and why.
  absl::Status Fill();
  // A ready device, or nullopt (a miss) when none is: the instance then
  // has no device (loopback only), and the thread makes more.
  std::optional<Device> Take();
  // Destroys `d` (its packet socket closed: the kernel removes its
  // namespace and veth) and lets the thread replace it.
  void Give(Device d);
  VethPoolStats Stats() const;
  void Stop();

 private:
  // One device in `slot`, made in a thread of its own (the namespace
  // change is per thread and does not come back).
  absl::StatusOr<Device> Make(int slot);
  void Refill();
  // A slot whose host end is gone (a dying one's, once the kernel removed
  // it, or one never used); -1 if none.
  int FreeSlot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const VethPoolOptions opts_;
  mutable absl::Mutex mu_;
  std::deque<Device> free_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> slot_used_ ABSL_GUARDED_BY(mu_);  // by a device, free, in use or dying
  std::vector<Device> dying_ ABSL_GUARDED_BY(mu_);
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t created_ ABSL_GUARDED_BY(mu_) = 0, destroyed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_VETH_POOL_H_
