#include "sentry/socket/net_service.h"

#include <linux/if_packet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"

namespace seedvisor::sentry {
namespace {

// struct virtio_net_hdr and its constants (linux/virtio_net.h, which C++
// cannot include: a member there is called `class`). Packet sockets with
// PACKET_VNET_HDR put one before every frame, in host byte order.
struct VnetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VnetHdr) == 10);
constexpr uint8_t kVnetNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kVnetDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
constexpr uint8_t kVnetGsoTcp4 = 1;    // VIRTIO_NET_HDR_GSO_TCPV4
constexpr uint8_t kVnetGsoTcp6 = 4;    // VIRTIO_NET_HDR_GSO_TCPV6

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

NetService::NetService() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  netstack::StackOptions o;
  o.timer_kick = [this] { Kick(); };
  stack_ = std::make_unique<netstack::Stack>(std::move(o));
}

NetService::~NetService() {
  Park();
  for (Device& d : devices_) {
    if (d.link->fd_ >= 0) close(d.link->fd_);
  }
  // Connections the stack still holds go with it; nothing else runs now.
  stack_.reset();
  if (int fd = wake_fd_.exchange(-1); fd >= 0) close(fd);
}

NetService::GroupRange NetService::ping_group_range() const {
  uint64_t v = ping_groups_.load(std::memory_order_relaxed);
  return {uint32_t(v >> 32), uint32_t(v)};
}

void NetService::set_ping_group_range(GroupRange r) {
  ping_groups_.store(uint64_t{r.lo} << 32 | r.hi, std::memory_order_relaxed);
}

bool NetService::MayPing(uint32_t egid, const std::vector<gid_t>& groups) const {
  GroupRange r = ping_group_range();
  if (egid >= r.lo && egid <= r.hi) return true;
  for (gid_t g : groups) {
    if (g >= r.lo && g <= r.hi) return true;
  }
  return false;
}

NetService::PacketLink::PacketLink(int fd) : fd_(fd) {
  int on = 0;
  socklen_t len = sizeof on;
  vnet_ = getsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, &len) == 0 && on != 0;
}

void NetService::PacketLink::WriteFrame(std::string_view frame) {
  if (fd_ < 0) return;
  if (vnet_) {
    WriteOffloadedFrame(frame, {});
    return;
  }
  ssize_t n = send(fd_, frame.data(), frame.size(), MSG_DONTWAIT);
  (void)n;
}

void NetService::PacketLink::WriteOffloadedFrame(std::string_view frame,
                                                 const netstack::TxOffload& o) {
  if (fd_ < 0) return;
  VnetHdr h{};
  if (o.csum_partial) {
    h.flags = kVnetNeedsCsum;
    h.csum_start = o.csum_start;
    h.csum_offset = o.csum_offset;
  }
  if (o.gso_size > 0) {
    h.gso_type = o.gso_v6 ? kVnetGsoTcp6 : kVnetGsoTcp4;
    h.gso_size = o.gso_size;
    h.hdr_len = o.hdr_len;
  }
  iovec iov[2] = {{&h, sizeof h}, {const_cast<char*>(frame.data()), frame.size()}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  ssize_t n = sendmsg(fd_, &mh, MSG_DONTWAIT);
  (void)n;
}

absl::Status NetService::AttachDevice(int packet_fd, const HostInterface& i) {
  const std::string& name = i.name;
  auto link = std::make_unique<PacketLink>(packet_fd);
  auto nic = stack_->AddNic({name, i.mac, i.mtu}, link.get());
  if (!nic.ok()) {
    close(packet_fd);
    return absl::InvalidArgumentError("interface " + name + ": unusable MTU " +
                                      std::to_string(i.mtu));
  }
  // The link is the stack's from here on, also when an address is refused.
  devices_.push_back({std::move(link), *nic});
  std::vector<netstack::AddrPrefix> addrs = i.v6;
  if (!i.addr.any()) addrs.insert(addrs.begin(), {i.addr, i.prefix_len, i.broadcast});
  for (const netstack::AddrPrefix& a : addrs) {
    if (!stack_->AddAddress(*nic, a).ok()) {
      return absl::InvalidArgumentError("interface " + name + ": unusable address " +
                                        netstack::FormatIp(a.addr));
    }
  }
  for (netstack::IpAddr gw : {netstack::IpAddr(i.gateway), i.gateway6}) {
    netstack::AddrPrefix all = gw.is_v4() ? netstack::AddrPrefix{netstack::Ip4{}, 0}
                                          : netstack::AddrPrefix{netstack::IpAddr{}, 0};
    if (!gw.any() && !stack_->AddRoute(all, gw, *nic).ok()) {
      return absl::InvalidArgumentError("interface " + name + ": unusable gateway " +
                                        netstack::FormatIp(gw));
    }
  }
  return absl::OkStatus();
}

absl::Status NetService::AttachInterfaces(const std::vector<TakenInterface>& taken) {
  absl::Status first;
  for (const TakenInterface& t : taken) {
    const HostInterface& i = t.info;
    // AttachDevice owns the fd from here, also when it fails.
    absl::Status s = AttachDevice(t.packet_fd, i);
    if (first.ok()) first = s;
  }
  return first;
}

void NetService::ReadFrames(size_t dev) {
  // On the stack, not thread_local (see SocketMirror::Drain): host threads
  // have 8 MiB stacks.
  char buf[65536 + 64];
  const PacketLink& link = *devices_[dev].link;
  int fd = link.fd_;
  // A bounded batch, so that timers run between bursts.
  for (int i = 0; i < 256; ++i) {
    sockaddr_ll from{};
    VnetHdr vh{};
    iovec iov[2] = {{&vh, sizeof vh}, {buf, sizeof buf}};
    char cbuf[CMSG_SPACE(sizeof(tpacket_auxdata))];
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = link.vnet_ ? iov : iov + 1;
    mh.msg_iovlen = link.vnet_ ? 2 : 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) return;
    if (link.vnet_) {
      if (size_t(n) < sizeof vh) continue;
      n -= ssize_t(sizeof vh);
    }
    // The host checked the transport checksum or never filled it in (a
    // frame from a stack on this host: CHECKSUM_PARTIAL).
    bool csum_not_ready = vh.flags & (kVnetNeedsCsum | kVnetDataValid);
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
        tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof aux);
        csum_not_ready |= (aux.tp_status & TP_STATUS_CSUMNOTREADY) != 0;
      }
    }
    // Our own transmissions come back on a packet socket: skip them.
    if (from.sll_pkttype == PACKET_OUTGOING) continue;
    if (size_t(n) > sizeof buf) continue;  // truncated: bigger than any MTU we take
    stack_->DeliverFrame(devices_[dev].nic, std::string_view(buf, size_t(n)), csum_not_ready);
  }
}

void NetService::Kick() {
  int fd = wake_fd_.load(std::memory_order_relaxed);
  if (fd < 0) return;
  uint64_t one = 1;
  // A full counter is already a pending wakeup.
  ssize_t n = write(fd, &one, sizeof one);
  (void)n;
}

absl::Status NetService::Start() {
  std::lock_guard l(mu_);
  if (running_ || parked_ || wake_fd_ < 0) return absl::OkStatus();
  stop_ = false;
  Result<ServiceThread> t = ServiceThread::Start([this] { Loop(); });
  if (!t.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the host refused the sandbox network's thread (",
                     std::strerror(t.error().value()), "); the host pids cgroup may be full"));
  }
  thread_ = std::move(*t);
  running_ = true;
  return absl::OkStatus();
}

void NetService::Park() {
  std::unique_lock l(mu_);
  parked_ = true;
  if (!running_) return;
  stop_ = true;
  Kick();
  ServiceThread t = std::move(thread_);
  running_ = false;
  l.unlock();
  t.Join();
}

void NetService::Unpark() {
  {
    std::lock_guard l(mu_);
    parked_ = false;
  }
  // No guest call to fail here (a resumed seed, a sandbox fork): the
  // network stands still until the sandbox is restarted.
  if (absl::Status s = Start(); !s.ok()) Log::Warning("network: %s", s.message());
}

void NetService::ResetInForkChild() {
  // The seed's eventfd is shared with the seed: a kick here would wake the
  // seed's loop. Close our copy and make our own.
  int old = wake_fd_.exchange(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (old >= 0) close(old);
  for (Device& d : devices_) {
    if (d.link->fd_ >= 0) close(d.link->fd_);
    d.link->fd_ = -1;
  }
  stack_->RekeyAfterFork();
}

absl::Status NetService::ReplaceDevicesInForkChild(const TakenInterface* dev) {
  stack_->DetachDevices();
  devices_.clear();  // ResetInForkChild closed their sockets
  if (dev == nullptr) return absl::OkStatus();
  return AttachDevice(dev->packet_fd, dev->info);
}

void NetService::Loop() {
  while (!stop_.load()) {
    int64_t next = stack_->NextTimerDeadline();
    int timeout_ms = -1;
    if (next >= 0) {
      int64_t wait = next - NowNs();
      timeout_ms = wait <= 0 ? 0 : int((wait + 999'999) / 1'000'000);
    }
    pollfd p[1 + 8];
    nfds_t np = 0;
    p[np++] = {wake_fd_.load(), POLLIN, 0};
    for (size_t d = 0; d < devices_.size() && np < 9; ++d) p[np++] = {devices_[d].link->fd_, POLLIN, 0};
    int r = poll(p, np, timeout_ms);
    if (r > 0 && (p[0].revents & POLLIN)) {
      uint64_t v;
      ssize_t n = read(p[0].fd, &v, sizeof v);
      (void)n;
    }
    if (stop_.load()) break;
    for (nfds_t i = 1; r > 0 && i < np; ++i) {
      if (p[i].revents & POLLIN) ReadFrames(i - 1);
    }
    stack_->Advance();
  }
}

}  // namespace seedvisor::sentry
