// TCP keepalive (RFC 1122 4.2.3.6, as Linux's tcp_keepalive_timer()): an
// idle connection is probed; one whose peer stays silent is reset.
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {

TcpEndpoint::Keepalive TcpEndpoint::keepalive() {
  Stack::Locked l(stack_);
  return keepalive_;
}

void TcpEndpoint::SetKeepalive(const Keepalive& k) {
  Stack::Locked l(stack_);
  keepalive_ = k;
  // tcp_set_keepalive(), tcp_sock_set_keepidle_locked(): the timer runs
  // from the last segment in, with the new idle time.
  if (k.on) {
    ArmKeepalive();
  } else {
    stack_->wheel_.Cancel(&keepalive_timer_);
  }
}

void TcpEndpoint::ArmKeepalive() {
  switch (state_) {
    case TcpState::kClosed:
    case TcpState::kListen:
    case TcpState::kSynSent:
    case TcpState::kSynRcvd:
    case TcpState::kTimeWait:
      return;
    default:
      break;
  }
  if (!keepalive_.on) return;
  int64_t at = last_rcv_ns_ + int64_t(keepalive_.idle_s) * 1'000'000'000;
  stack_->ArmTimer(&keepalive_timer_, std::max(at, stack_->Now()));
}

void TcpEndpoint::OnKeepaliveTimer() {
  auto self = shared_from_this();
  if (!keepalive_.on || state_ == TcpState::kClosed || state_ == TcpState::kTimeWait) return;
  const int64_t now = stack_->Now();
  const int64_t idle_ns = int64_t(keepalive_.idle_s) * 1'000'000'000;
  // Data in flight or waiting: the retransmission timer watches the peer.
  if (snd_max_ != snd_una_ || !sndq_.empty()) {
    stack_->ArmTimer(&keepalive_timer_, now + idle_ns);
    return;
  }
  if (now - last_rcv_ns_ < idle_ns) {
    ArmKeepalive();  // heard from since it was armed
    return;
  }
  if (keepalive_probes_ >= keepalive_.cnt) {
    // tcp_send_active_reset(), tcp_write_err().
    ++stack_->stats_.tcp_keepalive_timeouts;
    Abort(ETIMEDOUT, true);
    return;
  }
  // tcp_xmit_probe_skb(): an old sequence number, which the peer answers
  // with an ACK.
  SendSegment(snd_una_ - 1, kTcpAck, {}, false);
  ++keepalive_probes_;
  ++stack_->stats_.tcp_keepalive_probes;
  stack_->ArmTimer(&keepalive_timer_, now + int64_t(keepalive_.intvl_s) * 1'000'000'000);
}

}  // namespace seedvisor::netstack
