// What TCP_INFO reports of a connection (Linux's tcp_get_info()): the
// snapshot and the counters kept for it as segments come and go.
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {

void TcpEndpoint::CountOut(std::string_view payload, uint32_t segs) {
  // __tcp_transmit_skb(): every segment (tcp_skb_pcount() of a TSO
  // frame), and the data ones apart.
  segs_out_ += segs;
  if (payload.empty()) return;
  data_segs_out_ += segs;
  bytes_sent_ += payload.size();
  last_data_sent_ns_ = stack_->Now();  // tcp_event_data_sent(): lsndtime
}

void TcpEndpoint::CountRetransmit(size_t payload) {
  ++total_retrans_;
  bytes_retrans_ += payload;
}

void TcpEndpoint::CountIn(size_t payload) {
  ++segs_in_;
  if (payload == 0) return;
  ++data_segs_in_;
  last_data_rcv_ns_ = stack_->Now();  // icsk_ack.lrcvtime
  rcv_mss_ = uint16_t(std::max<size_t>(rcv_mss_, std::min<size_t>(payload, snd_mss_)));
}

void TcpEndpoint::SampleRtt(int64_t rtt_ns) {
  rto_.Sample(rtt_ns);
  rtt_karn_ = false;
  rtt_ns = std::max<int64_t>(rtt_ns, 0);
  if (min_rtt_ns_ < 0 || rtt_ns < min_rtt_ns_) min_rtt_ns_ = rtt_ns;
}

TcpEndpoint::Info TcpEndpoint::info() {
  Stack::Locked l(stack_);
  Info i{.linux_state = LinuxTcpState(state_),
         .rcv_wscale = rcv_wscale_,
         .snd_wscale = snd_wscale_,
         .wscale_ok = wscale_ok_,
         .sack_ok = sack_ok_,
         .ts_ok = ts_ok_,
         .cwnd = cwnd_,
         .ssthresh = ssthresh_,
         .rcvbuf = rcvbuf_cap_,
         .sndbuf = sndbuf_cap_,
         .sack_ranges = sacked_.size()};
  if (state_ == TcpState::kListen) {
    i.accept_queue = uint32_t(accept_queue_.size());
    i.backlog = uint32_t(backlog_);
    return i;
  }
  // A connection in TIME_WAIT is, for its socket, closed: Linux moves it
  // to a timewait sock and the socket to TCP_CLOSE (tcp_time_wait(),
  // tcp_done()).
  if (state_ == TcpState::kTimeWait) i.linux_state = LinuxTcpState(TcpState::kClosed);
  const int64_t now = stack_->Now();
  const uint32_t mss = std::max<uint32_t>(snd_mss_, 1);
  if (in_recovery_) {
    i.ca_state = 3;
  } else if (loss_) {
    i.ca_state = 4;
  } else if (dupacks_ > 0 || !sacked_.empty()) {
    i.ca_state = 1;
  }
  bool synchronized = state_ != TcpState::kClosed || ever_connected_;
  i.retransmits = uint8_t(std::min(state_ == TcpState::kClosed ? 0 : retries_, 255));
  i.probes = uint8_t(std::min(keepalive_probes_, 255));
  i.backoff = uint8_t(rto_.backoff());
  i.rto_ns = rto_.rto_ns();
  i.snd_mss = snd_mss_;
  i.rcv_mss = rcv_mss_;
  if (synchronized) {
    if (auto route = stack_->FindRoute(remote_.ip); route.ok()) {
      // An IPv4 route's MTU is at most IP_MAX_MTU (ipv4_mtu()).
      i.pmtu = remote_.ip.is_v4() ? std::min<uint32_t>(route->nic->mtu, 65535) : route->nic->mtu;
      // Less the timestamps' room once agreed (tcp_rcv_synsent_state_process()).
      i.advmss = MssForMtu(route->nic->mtu, remote_.ip) - (ts_ok_ ? kTcpTsAlignedLen : 0);
    }
  }
  uint32_t flight = snd_max_ - snd_una_;
  i.unacked_segs = (flight + mss - 1) / mss;
  for (const TcpSackBlock& b : sacked_) i.sacked_segs += (b.right - b.left + mss - 1) / mss;
  if (synchronized) {
    i.last_data_sent_ago_ns = now - last_data_sent_ns_;
    i.last_data_recv_ago_ns = now - last_data_rcv_ns_;
    i.last_ack_recv_ago_ns = now - last_rcv_ns_;
  }
  i.srtt_ns = rto_.srtt_ns();
  i.rttvar_ns = rto_.rttvar_ns();
  i.min_rtt_ns = min_rtt_ns_;
  i.rcv_space = rcv_space_;
  i.total_retrans = total_retrans_;
  i.bytes_acked = bytes_acked_;
  i.bytes_received = bytes_received_;
  i.bytes_sent = bytes_sent_;
  i.bytes_retrans = bytes_retrans_;
  i.segs_out = segs_out_;
  i.segs_in = segs_in_;
  i.data_segs_out = data_segs_out_;
  i.data_segs_in = data_segs_in_;
  size_t sent = std::min<size_t>(flight, sndq_.size());
  i.notsent_bytes = uint32_t(sndq_.size() - sent);
  i.snd_wnd = snd_wnd_;
  i.rcv_ooopack = rcv_ooopack_;
  i.dsack_dups = dsack_dups_;
  return i;
}

}  // namespace seedvisor::netstack
