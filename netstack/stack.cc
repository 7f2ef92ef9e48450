#include "netstack/stack.h"

#include <time.h>

#include <algorithm>

namespace seedvisor::netstack {
namespace {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

Stack::Stack(StackOptions opts)
    : now_ns_(opts.now_ns ? std::move(opts.now_ns) : MonotonicNs),
      timer_kick_(std::move(opts.timer_kick)),
      tcp_sack_(opts.tcp_sack),
      tcp_timestamps_(opts.tcp_timestamps),
      wheel_(now_ns_()),
      reasm_timer_([this] { ReassemblyTimer(); }) {
  if (opts.secret_seed) {
    inst_.secrets.RekeyFrom(opts.secret_seed);
  } else {
    inst_.secrets.Rekey();
  }
  auto lo = std::make_unique<Nic>();
  lo->id = kLoopbackNic;
  lo->name = "lo";
  lo->mtu = 65536;
  lo->loopback = true;
  lo->addrs.push_back({MakeIp4(127, 0, 0, 1), 8});
  lo->addrs.push_back({kIp6Loopback, 128});
  inst_.nics.push_back(std::move(lo));
  inst_.routes.push_back({{MakeIp4(127, 0, 0, 0), 8}, Ip4{}, kLoopbackNic});
}

Stack::~Stack() {
  // Endpoints the stack still holds (TIME_WAIT, orphaned closes) go first:
  // their timers live in wheel_.
  tcp_conns_.clear();
  tcp_listeners_.clear();
}

Stack::Locked::Locked(Stack* s) : s_(s) {
  s_->mu_.Lock();
}

Stack::Locked::~Locked() {
  // Loopback packets are delivered here, not where they were sent, so that
  // the sender's state change is complete before the receiver's runs. Each
  // packet may queue more (an ACK); TCP's windows bound the exchange.
  while (!s_->loopback_queue_.empty()) {
    std::string pkt = std::move(s_->loopback_queue_.front());
    s_->loopback_queue_.pop_front();
    Nic* lo = s_->inst_.nics[0].get();
    ++lo->rx_frames;
    lo->rx_bytes += pkt.size();
    s_->HandleIp(lo, pkt);
  }
  std::vector<std::function<void()>> notify;
  notify.swap(s_->notify_);
  s_->mu_.Unlock();
  for (auto& fn : notify) fn();
}

void Endpoint::SetObserver(std::function<void()> fn) {
  Stack::Locked l(stack_);
  observer_ = std::move(fn);
}

int Endpoint::TakeError() {
  Stack::Locked l(stack_);
  return TakeErrorLocked();
}

SockAddr Endpoint::local() {
  Stack::Locked l(stack_);
  return local_;
}

void Endpoint::SetOwner(uint64_t ino, uint32_t uid) {
  Stack::Locked l(stack_);
  owner_ino_ = ino;
  owner_uid_ = port_.uid = uid;
}

void Endpoint::SetReusePort(bool on) {
  Stack::Locked l(stack_);
  port_.reuseport = on;
}

bool Endpoint::reuse_port() {
  Stack::Locked l(stack_);
  return port_.reuseport;
}

void Endpoint::SetIpTx(const IpTx& tx) {
  Stack::Locked l(stack_);
  ip_tx_ = tx;
}

Endpoint::IpTx Endpoint::ip_tx() {
  Stack::Locked l(stack_);
  return ip_tx_;
}

Status Endpoint::SetFamily6(bool v6only) {
  Stack::Locked l(stack_);
  if (bound_) return Errno(EINVAL);
  v6_ = port_.v6 = true;
  v6only_ = port_.v6only = v6only;
  local_.ip = kIp6Any;
  return {};
}

void Endpoint::NotifyLocked() {
  if (observer_) stack_->notify_.push_back(observer_);
}

Nic* Stack::GetNic(int id) {
  if (id < 1 || size_t(id) > inst_.nics.size()) return nullptr;
  return inst_.nics[size_t(id) - 1].get();
}

Result<int> Stack::AddNic(const NicConfig& cfg, LinkEndpoint* link) {
  if (!link || cfg.mtu < 576 || cfg.mtu > 65535) return Errno(EINVAL);
  Locked l(this);
  auto nic = std::make_unique<Nic>();
  nic->id = int(inst_.nics.size()) + 1;
  nic->name = cfg.name;
  nic->mac = cfg.mac;
  nic->mtu = cfg.mtu;
  nic->link = link;
  inst_.nics.push_back(std::move(nic));
  return int(inst_.nics.size());
}

Status Stack::AddAddress(int nic_id, AddrPrefix a) {
  if (a.prefix_len < 0 || a.prefix_len > (a.addr.is_v4() ? 32 : 128) || a.addr.any() ||
      a.addr.multicast()) {
    return Errno(EINVAL);
  }
  Locked l(this);
  Nic* nic = GetNic(nic_id);
  if (!nic) return Errno(ENODEV);
  nic->addrs.push_back(a);
  if (a.bits() < 128) InsertRoute({{a.addr.Masked(a.bits()), a.prefix_len}, IpAddr{}, nic_id});
  return {};
}

Status Stack::AddRoute(AddrPrefix dst, IpAddr gateway, int nic_id) {
  if (dst.prefix_len < 0 || dst.prefix_len > (dst.addr.is_v4() ? 32 : 128)) return Errno(EINVAL);
  if (!gateway.any() && gateway.is_v4() != dst.addr.is_v4()) return Errno(EINVAL);
  Locked l(this);
  if (!GetNic(nic_id)) return Errno(ENODEV);
  InsertRoute({dst, gateway, nic_id});
  return {};
}

void Stack::InsertRoute(const Route& r) {
  // Longest prefix first; among equals, the older route wins.
  auto at = std::find_if(inst_.routes.begin(), inst_.routes.end(),
                         [&](const Route& x) { return x.dst.prefix_len < r.dst.prefix_len; });
  inst_.routes.insert(at, r);
}

std::vector<AddrPrefix> Stack::Addresses(int nic_id) {
  Locked l(this);
  Nic* nic = GetNic(nic_id);
  return nic ? nic->addrs : std::vector<AddrPrefix>{};
}

void Stack::RekeyAfterFork() {
  // Called by the fork's only thread before anything else runs; the lock is
  // free (no thread held it across the fork: sfork parks them outside it).
  Locked l(this);
  inst_.secrets.Rekey();
  ip_id_ = 0;
}

void Stack::DetachDevices() {
  Locked l(this);
  for (size_t i = 1; i < inst_.nics.size(); ++i) {
    for (auto& [ip, e] : inst_.nics[i]->arp) wheel_.Cancel(&e->timer);
  }
  inst_.nics.resize(1);
  std::erase_if(inst_.routes, [](const Route& r) { return r.nic != kLoopbackNic; });
}

bool Stack::IsLocalAddress(const IpAddr& a) const {
  if (a.loopback()) return true;
  for (const auto& nic : inst_.nics) {
    for (const AddrPrefix& p : nic->addrs) {
      if (p.addr == a) return true;
    }
  }
  return false;
}

bool Stack::IsBroadcast(const IpAddr& a) const {
  if (!a.is_v4()) return false;
  if (a.broadcast()) return true;
  for (const auto& nic : inst_.nics) {
    for (const AddrPrefix& p : nic->addrs) {
      if (!p.addr.is_v4()) continue;
      if (p.prefix_len < 31 && a == IpAddr(p.broadcast())) return true;
      if (!p.brd.any() && a == IpAddr(p.brd)) return true;
    }
  }
  return false;
}

Result<Stack::RouteResult> Stack::FindRoute(const IpAddr& dst, uint32_t oif) {
  const bool scoped = oif != 0 && dst.link_local();
  // Our own addresses are reached through loopback, as on Linux (the
  // "local" table).
  if (scoped ? HasAddressOn(dst, oif) : IsLocalAddress(dst)) {
    IpAddr src = dst;
    if (dst.loopback()) src = dst.is_v4() ? IpAddr(MakeIp4(127, 0, 0, 1)) : kIp6Loopback;
    return RouteResult{inst_.nics[0].get(), dst, src};
  }
  for (const Route& r : inst_.routes) {
    if (!r.dst.Contains(dst) || (scoped && uint32_t(r.nic) != oif)) continue;
    Nic* nic = GetNic(r.nic);
    if (!nic) continue;
    IpAddr hop = r.gateway.any() ? dst : r.gateway;
    // The source: an address of the same family, preferring the
    // destination's scope (link-local or not; RFC 6724 rule 2), then one
    // whose subnet holds the next hop.
    const AddrPrefix* src = nullptr;
    int best = -1;
    for (const AddrPrefix& p : nic->addrs) {
      if (p.addr.is_v4() != dst.is_v4()) continue;
      int score = (p.addr.link_local() == dst.link_local() ? 2 : 0) + (p.Contains(hop) ? 1 : 0);
      if (score > best) {
        best = score;
        src = &p;
      }
    }
    if (!src) continue;
    return RouteResult{nic, hop, src->addr};
  }
  return Errno(ENETUNREACH);
}

void Stack::DeliverFrame(int nic_id, std::string_view frame, bool csum_not_ready) {
  Locked l(this);
  skip_l4_csum_ = csum_not_ready;
  struct Reset {
    bool& b;
    ~Reset() { b = false; }
  } reset{skip_l4_csum_};
  ++stats_.frames_in;
  Nic* nic = GetNic(nic_id);
  if (!nic || nic->loopback) return;
  ++nic->rx_frames;
  nic->rx_bytes += frame.size();
  EthHeader eth;
  if (!ParseEth(frame, &eth)) {
    ++stats_.eth_malformed;
    return;
  }
  // IPv6 multicast (33:33:...) is taken too; the IPv6 layer keeps only
  // the groups a host joins (all-nodes, its solicited-node addresses).
  bool ip6_multicast = eth.dst[0] == 0x33 && eth.dst[1] == 0x33;
  if (eth.dst != nic->mac && eth.dst != kBroadcastMac && !ip6_multicast) {
    ++stats_.eth_not_for_us;
    return;
  }
  std::string_view payload = frame.substr(kEthHeaderLen);
  switch (eth.type) {
    case kEtherTypeArp:
      HandleArp(nic, payload);
      break;
    case kEtherTypeIp4:
      HandleIp4(nic, payload);
      break;
    case kEtherTypeIp6:
      HandleIp6(nic, payload);
      break;
    default:
      ++stats_.eth_unknown_type;
  }
}

void Stack::Advance() {
  Locked l(this);
  wheel_.Advance(now_ns_());
}

int64_t Stack::NextTimerDeadline() {
  Locked l(this);
  driver_wakes_at_ = wheel_.NextDeadline();
  return driver_wakes_at_;
}

void Stack::ArmTimer(Timer* t, int64_t deadline_ns) {
  wheel_.Arm(t, deadline_ns);
  if (driver_wakes_at_ < 0 || deadline_ns < driver_wakes_at_) {
    driver_wakes_at_ = deadline_ns;
    if (timer_kick_) timer_kick_();
  }
}

std::shared_ptr<TcpEndpoint> Stack::NewTcp() { return std::make_shared<TcpEndpoint>(this); }
std::shared_ptr<UdpEndpoint> Stack::NewUdp() { return std::make_shared<UdpEndpoint>(this); }

Stats Stack::stats() {
  Locked l(this);
  return stats_;
}

}  // namespace seedvisor::netstack
