// Copies of the stack's state for the guest's views of its network
// (sentry/socket/net_view.h builds netlink, SIOCGIF* and /proc/net from
// them).
#include "netstack/stack.h"

namespace seedvisor::netstack {

std::vector<NicInfo> Stack::Nics() {
  Locked l(this);
  std::vector<NicInfo> out;
  for (const auto& n : inst_.nics) {
    out.push_back({n->id, n->name, n->mac, n->mtu, n->loopback, n->addrs, n->rx_frames,
                   n->tx_frames, n->rx_bytes, n->tx_bytes});
  }
  return out;
}

std::vector<Route> Stack::Routes() {
  Locked l(this);
  return inst_.routes;
}

std::vector<SocketInfo> Stack::TcpSockets() {
  Locked l(this);
  std::vector<SocketInfo> out;
  auto add = [&](const TcpEndpoint& e) {
    SocketInfo i;
    i.local = e.local_;
    i.remote = e.remote_;
    i.v6 = e.v6_;
    i.state = LinuxTcpState(e.state_);
    // get_tcp4_sock(): a listener's receive queue is its accept backlog.
    i.rx_queue = e.state_ == TcpState::kListen ? e.accept_queue_.size() : e.rcvq_.size();
    i.tx_queue = e.state_ == TcpState::kListen ? 0 : e.sndq_.size();
    i.uid = e.owner_uid_;
    i.ino = e.owner_ino_;
    i.rto_ns = e.rto_.rto_ns();
    uint32_t mss = e.snd_mss_ ? e.snd_mss_ : TcpEndpoint::kDefaultMss;
    i.cwnd = e.cwnd_ / mss;
    i.ssthresh = e.ssthresh_ == 0x7fffffff ? -1 : int64_t(e.ssthresh_ / mss);
    out.push_back(i);
  };
  // Listeners first, then connections, as tcp4_seq_show() walks its hashes.
  for (const auto& [port, e] : tcp_listeners_) add(*e);
  for (const auto& [key, e] : tcp_conns_) add(*e);
  return out;
}

std::vector<SocketInfo> Stack::UdpSockets() {
  Locked l(this);
  std::vector<SocketInfo> out;
  for (const auto& [port, e] : udp_bound_) {
    SocketInfo i;
    i.local = e->local_;
    i.remote = e->connected_ ? e->remote_ : SockAddr{e->Wildcard(), 0};
    i.v6 = e->v6_;
    i.state = e->connected_ ? 1 : 7;
    i.rx_queue = e->rcvq_bytes_;
    i.uid = e->owner_uid_;
    i.ino = e->owner_ino_;
    out.push_back(i);
  }
  return out;
}

}  // namespace seedvisor::netstack
