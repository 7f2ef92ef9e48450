// NetService: the sandbox's own network (--network=sandbox, issue 11): the
// netstack (netstack/stack.h) and the one service thread that drives its
// timers (and, with a device, its input).
//
// The stack is sentry memory, so a sandbox fork copies it with every
// connection in it. The thread is a parkable service thread in DESIGN.md's
// sense: it waits in poll(2) on an eventfd (never on a lock), Park() ends
// it before a seed's host fork, and Unpark() makes a new one. In the
// forked sentry ResetInForkChild() replaces what the seed still shares
// (the eventfd) and re-keys the stack's secrets, before the guest runs.
//
//   NetService net;            // in Kernel::Create
//   net.Start();
//   auto ep = net.stack().NewTcp();
#ifndef SEEDVISOR_SENTRY_SOCKET_NET_SERVICE_H_
#define SEEDVISOR_SENTRY_SOCKET_NET_SERVICE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "netstack/stack.h"
#include "sentry/kernel/host_thread.h"
#include "sentry/socket/net_takeover.h"

namespace seedvisor::sentry {

class NetService {
 public:
  NetService();
  ~NetService();
  NetService(const NetService&) = delete;
  NetService& operator=(const NetService&) = delete;

  netstack::Stack& stack() { return *stack_; }
  // A device: frames go out and come in through `packet_fd` (an AF_PACKET
  // socket bound to the interface; owned from here on). The NIC gets the
  // interface's MAC, MTU, addresses and default routes. Before Start().
  absl::Status AttachDevice(int packet_fd, const HostInterface& i);
  // AttachDevice for each interface TakeOverInterfaces() took (its
  // address, MTU, MAC and default route); takes the sockets.
  absl::Status AttachInterfaces(const std::vector<TakenInterface>& taken);
  // The service thread; an error if the host refused it (a full pids cgroup).
  absl::Status Start();
  // Kernel::Quiesce / Unquiesce.
  void Park();
  void Unpark();
  // The forked sentry's only thread, with the service parked: a new wakeup
  // fd (the seed keeps its own) and new secrets. No allocation.
  // The seed's devices are the seed's (a fork reading them would steal its
  // frames): their sockets are closed here; ReplaceDevicesInForkChild
  // takes them out of the stack.
  void ResetInForkChild();
  // The forked sentry, service still parked, after ResetInForkChild: the
  // seed's NICs leave the stack and `dev` (a packet socket on the fork's
  // own interface, from `seedsc fork --netns`; owned from here on), if
  // given, takes their place with its addresses and routes.
  absl::Status ReplaceDevicesInForkChild(const TakenInterface* dev);
  // net.ipv4.ping_group_range: the groups that may make ping sockets
  // (ping_init_sock(): EACCES for the rest). The sandbox's default lets
  // every group (0 2147483647), as Docker and containerd give containers
  // and systemd gives hosts; the kernel's own "1 0" lets none.
  struct GroupRange {
    uint32_t lo = 0, hi = 2147483647;
  };
  GroupRange ping_group_range() const;
  void set_ping_group_range(GroupRange r);
  // Whether a task with effective group `egid` and supplementary `groups`
  // may make one.
  bool MayPing(uint32_t egid, const std::vector<gid_t>& groups) const;
  // Whether the stack has a device besides loopback (a seed without one
  // has nothing a fork could miss).
  bool has_devices() const { return !devices_.empty(); }

 private:
  void Loop();
  void Kick();
  void ReadFrames(size_t dev);

  // A NIC's link: frames to its packet socket (a full host queue drops,
  // as a device would). With PACKET_VNET_HDR on the socket
  // (OpenPacketSocket) every frame carries a virtio_net_hdr both ways:
  // TCP hands the host 64 KiB segments to cut and leaves it the
  // checksums, and takes what the host's GRO/GSO joined.
  class PacketLink : public netstack::LinkEndpoint {
   public:
    explicit PacketLink(int fd);
    void WriteFrame(std::string_view frame) override;
    bool TakesOffloads() const override { return vnet_; }
    void WriteOffloadedFrame(std::string_view frame, const netstack::TxOffload& o) override;
    int fd_;
    bool vnet_ = false;  // the socket has PACKET_VNET_HDR
  };
  struct Device {
    std::unique_ptr<PacketLink> link;
    int nic = 0;
  };
  std::vector<Device> devices_;  // fixed after Start()

  std::unique_ptr<netstack::Stack> stack_;
  std::atomic<int> wake_fd_{-1};
  std::mutex mu_;  // guards thread_ and running_ (never held by the loop)
  ServiceThread thread_;
  bool running_ = false;
  bool parked_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ping_groups_{uint64_t{2147483647}};  // lo << 32 | hi
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NET_SERVICE_H_
