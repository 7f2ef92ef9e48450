// A TCP endpoint (RFC 9293): the connection state machine, send and
// receive buffers, the out-of-order queue, retransmission (RFC 6298 RTO,
// Karn), fast retransmit/recovery (NewReno, RFC 5681, RFC 6582; with SACK,
// RFC 6675), zero-window probes, RST processing with RFC 5961's checks,
// TIME_WAIT, listen with a backlog, the MSS option, window scaling (RFC
// 7323 2) with Linux's receive and send buffer autotuning, and keepalive.
//
// Congestion control: CUBIC (RFC 8312, Linux's default) or Reno/NewReno,
// per connection as TCP_CONGESTION picks.
//
// SACK (RFC 2018): offered and answered as net.ipv4.tcp_sack says; blocks
// for out-of-order data in every ACK; as sender, a scoreboard and RFC
// 6675's loss recovery (every hole retransmitted in the first round trip
// of recovery, the pipe kept at cwnd).
//
// Timestamps (RFC 7323 3-5): offered and answered as
// net.ipv4.tcp_timestamps says; TSecr echoes TS.Recent, RTT from TSecr
// where Karn's rule leaves no timed sample, PAWS drops old segments.
//
// D-SACK (RFC 2883): a duplicate segment is reported in the first block
// of the next ACK; as sender, a D-SACK block is counted, never taken as
// newly SACKed data.
//
// Not yet: urgent data, SYN cookies, delayed ACKs
// (every segment is acknowledged at once).
//
// The socket layer drives it without blocking: every call returns EAGAIN /
// EINPROGRESS where a socket would wait, and the observer says when to try
// again.
//
//   auto ep = stack.NewTcp();
//   ep->Connect({MakeIp4(10, 0, 0, 2), 80});   // EINPROGRESS
//   ... wait until Readiness() has POLLOUT, then TakeError() == 0 ...
//   ep->Send("GET / HTTP/1.0\r\n\r\n");
#ifndef SEEDVISOR_NETSTACK_SHARED_TCP_H_
#define SEEDVISOR_NETSTACK_SHARED_TCP_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/shared/byte_queue.h"
#include "netstack/shared/endpoint.h"
#include "netstack/shared/rto.h"
#include "netstack/shared/timer_wheel.h"
#include "sentry/base/errno.h"

namespace seedvisor::netstack {

enum class TcpState {
  kClosed, kListen, kSynSent, kSynRcvd, kEstablished, kFinWait1, kFinWait2,
  kCloseWait, kClosing, kLastAck, kTimeWait,
};
const char* TcpStateName(TcpState s);
// Linux's number for a state (include/net/tcp_states.h), as /proc/net/tcp
// and TCP_INFO show it.
int LinuxTcpState(TcpState s);

class TcpEndpoint : public Endpoint, public std::enable_shared_from_this<TcpEndpoint> {
 public:
  static constexpr int64_t kTimeWaitNs = 60'000'000'000;   // TCP_TIMEWAIT_LEN
  static constexpr int64_t kFinWait2Ns = 60'000'000'000;   // tcp_fin_timeout
  static constexpr int kSynRetries = 6;                    // tcp_syn_retries
  static constexpr int kSynAckRetries = 5;                 // tcp_synack_retries
  static constexpr int kDataRetries = 15;                  // tcp_retries2
  static constexpr uint16_t kDefaultMss = 536;             // RFC 9293 3.7.1
  // Buffer sizes as Linux's defaults: net.ipv4.tcp_rmem and tcp_wmem
  // (4096 131072 6291456, 4096 16384 4194304). A buffer the user did not
  // set (SO_RCVBUF/SO_SNDBUF) grows with the connection up to the maximum
  // (tcp_rcv_space_adjust(), tcp_sndbuf_expand()); half of the receive
  // buffer's memory is payload (tcp_win_from_space() at its default 50 %).
  static constexpr size_t kRcvBufDefault = 131072;
  static constexpr size_t kRmemMax = 6291456;
  static constexpr size_t kRcvRoomMax = kRmemMax / 2;
  static constexpr size_t kSndBufDefault = 262144;
  static constexpr size_t kWmemMax = 4194304;

  explicit TcpEndpoint(Stack* stack);
  ~TcpEndpoint() override;

  Status Bind(SockAddr a);
  Status Listen(int backlog);
  // A connection from the accept queue; EAGAIN if none, EINVAL if not listening.
  Result<std::shared_ptr<TcpEndpoint>> Accept();
  // EINPROGRESS once the SYN is out (the caller waits for POLLOUT, then
  // reads TakeError()); EALREADY while connecting; EISCONN when connected.
  Status Connect(SockAddr a);
  // Bytes taken into the send buffer; EAGAIN if it is full.
  Result<size_t> Send(std::string_view data);
  // 0 at end of stream; EAGAIN if nothing is there yet.
  Result<size_t> Recv(char* buf, size_t len, bool peek);
  Status Shutdown(int how);  // SHUT_RD, SHUT_WR, SHUT_RDWR
  // close(2): FIN (or RST if unread data is dropped); the stack keeps the
  // connection until it is done with it.
  void Close();

  uint32_t Readiness();  // poll(2) bits
  Result<SockAddr> remote();  // ENOTCONN unless connected
  TcpState state();
  // Never connected, listening or connecting (a fresh socket's poll bits).
  bool Unused();
  size_t Available();  // FIONREAD / SIOCINQ
  size_t Unsent();     // SIOCOUTQ: bytes not yet acknowledged
  void SetNoDelay(bool on);
  void SetReuseAddr(bool on);
  // The payload room of the receive and send buffers (SO_RCVBUF's and
  // SO_SNDBUF's share); 0 leaves one as it is. A size set here is fixed:
  // no autotuning (SOCK_RCVBUF_LOCK, SOCK_SNDBUF_LOCK).
  void SetBufferSizes(size_t rcvbuf, size_t sndbuf);
  uint16_t mss();
  int64_t rto_ns();
  // What ArmRto() adds to a retransmission timer of `rto_ns` armed after
  // `retry` timeouts, when it adds any (a handshake's timers, and every
  // one after a timeout): [0, rto_ns / 8), from the stack's re-keyed
  // secrets (Secrets::RetryJitter).
  int64_t RtoJitterNs(int64_t rto_ns, int retry);
  // A snapshot of the connection's state, what TCP_INFO reports
  // (tcp_get_info()); sentry/socket/tcp_info.h lays it out as Linux's
  // struct tcp_info. Counts of segments are of MSS-sized pieces, as
  // Linux's (packets_out, sacked_out) count its skbs.
  struct Info {
    int linux_state = 7;  // include/net/tcp_states.h (LinuxTcpState())
    // TCP_CA_Open 0, Disorder 1 (duplicate ACKs or SACKed data), Recovery
    // 3 (fast recovery), Loss 4 (after an RTO until it is repaired).
    uint8_t ca_state = 0;
    // The window scale shifts in use (RFC 7323): ours (applied to the
    // windows we advertise) and the peer's; both 0 unless both SYNs had
    // the option.
    uint8_t rcv_wscale = 0, snd_wscale = 0;
    bool wscale_ok = false;  // both SYNs had the window scale option
    bool sack_ok = false;    // both SYNs had SACK-permitted
    bool ts_ok = false;      // both SYNs had timestamps (RFC 7323 3)
    uint32_t cwnd = 0, ssthresh = 0;  // bytes
    size_t rcvbuf = 0, sndbuf = 0;    // the buffers' payload room now
    size_t sack_ranges = 0;           // ranges on the SACK scoreboard
    // Timeouts in a row without progress (icsk_retransmits), keepalive
    // or zero-window probes unanswered (icsk_probes_out), RTO backoff.
    uint8_t retransmits = 0, probes = 0, backoff = 0;
    int64_t rto_ns = 0;
    uint32_t snd_mss = 0;  // payload per segment we send (mss_cache)
    uint32_t rcv_mss = 0;  // the peer's segment size as we see it
    uint32_t advmss = 0;   // the MSS we advertise
    uint32_t pmtu = 0;     // the route's MTU
    uint32_t unacked_segs = 0, sacked_segs = 0;
    // How long ago (ns): the last data segment sent and received, the
    // last segment (an ACK) from the peer.
    int64_t last_data_sent_ago_ns = 0, last_data_recv_ago_ns = 0, last_ack_recv_ago_ns = 0;
    int64_t srtt_ns = -1, rttvar_ns = 0, min_rtt_ns = -1;  // -1: no sample yet
    uint64_t rcv_space = 0;  // receive autotuning's bytes per round trip
    uint32_t total_retrans = 0;  // segments retransmitted
    uint64_t bytes_acked = 0;     // sequence space the peer acknowledged (SYN, FIN too)
    uint64_t bytes_received = 0;  // sequence space taken in order (FIN too)
    uint64_t bytes_sent = 0, bytes_retrans = 0;  // payload sent, resent included
    uint32_t segs_out = 0, segs_in = 0, data_segs_out = 0, data_segs_in = 0;
    uint32_t notsent_bytes = 0;
    uint32_t snd_wnd = 0;        // the peer's window, scaled
    uint32_t rcv_ooopack = 0;    // segments that arrived out of order
    uint32_t dsack_dups = 0;     // D-SACK blocks the peer sent (RFC 2883)
    // A listener: connections waiting in accept() and the backlog.
    uint32_t accept_queue = 0, backlog = 0;
  };
  // Bounds against a hostile peer: segments held out of order (Linux
  // prunes its out-of-order queue too, tcp_prune_ofo_queue()) and ranges
  // on the scoreboard (the lowest, nearest retransmission, are kept).
  static constexpr size_t kMaxOooSegments = 4096, kMaxSackRanges = 1024;
  Info info();

  // TCP_CONGESTION: "cubic" (the default, as Linux's) or "reno"; ENOENT
  // for any other name (tcp_set_congestion_control()). A listener's
  // choice passes to its connections.
  static constexpr size_t kCcNameMax = 16;  // TCP_CA_NAME_MAX
  Status SetCongestionControl(std::string_view name);
  std::string congestion_control();

  // SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL (seconds) and TCP_KEEPCNT
  // (tcp_keepalive_timer()): after `idle_s` without a segment from the
  // peer and with nothing in flight, a probe (an ACK one byte below
  // SND.UNA, which the peer answers) every `intvl_s`; `cnt` unanswered
  // probes reset the connection with ETIMEDOUT. A listener passes them on
  // to its connections.
  struct Keepalive {
    bool on = false;
    int idle_s = 7200;  // net.ipv4.tcp_keepalive_time
    int intvl_s = 75;   // net.ipv4.tcp_keepalive_intvl
    int cnt = 9;        // net.ipv4.tcp_keepalive_probes
  };
  static constexpr int kMaxKeepIdleS = 32767, kMaxKeepIntvlS = 32767, kMaxKeepCnt = 127;
  Keepalive keepalive();
  void SetKeepalive(const Keepalive& k);

 private:
  friend class Stack;

  // ---- input (tcp_input.cc) ----
  void HandleSegment(const TcpHeader& h, std::string_view payload);
  void HandleListen(const TcpHeader& h, const IpAddr& src, const IpAddr& dst);
  void HandleSynSent(const TcpHeader& h);
  bool AcceptableSeq(const TcpHeader& h, size_t seg_len) const;
  void HandleRst(const TcpHeader& h);
  void HandleAck(const TcpHeader& h, size_t payload_len);
  void HandleData(uint32_t seq, std::string_view payload, bool fin);
  void ReceiveFin();
  void EnterEstablishedFromSynRcvd();  // may stay in kSynRcvd (full queue)
  void EnterTimeWait();

  // ---- output (tcp_output.cc) ----
  void Output();
  void SendSegment(uint32_t seq, uint8_t flags, std::string_view payload, bool with_mss);
  void SendAck() { SendSegment(snd_nxt_, kTcpAck, {}, false); }
  void SendSyn();
  void RetransmitFirst();
  // One new segment at snd_nxt_ of at most `usable` bytes, if Nagle and
  // sender SWS avoidance let it go; false if nothing went. Toward a NIC
  // that cuts segments (TSO) several whole ones in one frame.
  bool SendNew(uint32_t usable);
  // The payload of the largest frame SendNew may hand the route's NIC.
  size_t MaxSendBurst();
  // `n` bytes of the send queue from `off`, in the stack's reused buffer
  // (valid until the next call).
  std::string_view SendQueueBytes(size_t off, size_t n);

  // ---- congestion control (tcp_cc.cc) ----
  // The slow start threshold after a loss (fast retransmit, SACK
  // recovery, RTO) with `flight` bytes outstanding; CUBIC also starts a
  // new epoch from here.
  uint32_t SsthreshOnLoss(uint32_t flight);
  // Congestion avoidance (cwnd_ >= ssthresh_) for `acked` new bytes.
  void CongestionAvoidance(uint32_t acked);

  // ---- SACK (tcp_sack.cc) ----
  // Fills h->sack: a D-SACK block first if a duplicate came (RFC 2883),
  // then the out-of-order data held: the block with the latest arrival
  // first, then the others from the highest (RFC 2018 4).
  void FillSackBlocks(TcpHeader* h) const;
  // A duplicate [seq, end) arrived: the next ACK reports it first
  // (tcp_dsack_set()), with SACK agreed.
  void NoteDuplicate(uint32_t seq, uint32_t end);
  // RFC 2883 4.1 (tcp_check_dsack()): the first block is a D-SACK if it
  // starts below the ACK or lies inside the second block.
  static bool IsDsack(const TcpHeader& h);
  // Adds [a, b) to ooo_ranges_, merging what it overlaps or touches.
  void AddOooRange(uint64_t a, uint64_t b);
  // Adds the peer's valid blocks to the scoreboard; true if any byte was
  // not SACKed before.
  bool TakeSack(const TcpHeader& h);
  // Merges one block (inside snd_una_..snd_max_) into the scoreboard; a
  // new range past kMaxSackRanges displaces the highest or is ignored.
  bool AddSacked(TcpSackBlock b);
  void TrimSacked();  // after snd_una_ moved
  // RFC 6675 4: every unSACKed byte below the result is lost (DupThresh
  // blocks or more than (DupThresh - 1) * SMSS bytes SACKed above it).
  uint32_t LostBoundary() const;
  // SetPipe(): bytes in flight, from the scoreboard.
  uint32_t Pipe(uint32_t lost) const;
  // Resends up to `n` bytes from `seq`; returns the sequence space sent.
  uint32_t RetransmitRange(uint32_t seq, uint32_t n);
  void EnterSackRecovery();
  // RFC 6675 5 step (C): while cwnd - pipe >= SMSS, NextSeg() rules 1
  // (the first lost hole not resent, as a whole segment from its start)
  // and 2 (new data); at most cwnd / SMSS segments per call.
  void SackRecoverySend();
  void OnRetransmitTimer();
  void ArmRto();
  int64_t JitterLocked(int64_t rto_ns, int retry) const;  // RtoJitterNs, lock held
  // The window field for a segment (unscaled in a SYN, RFC 7323 2.2);
  // moves rcv_adv_edge_ to what it says.
  uint16_t AdvertiseWindow(bool syn);
  size_t RcvSpace() const;  // free room in the receive buffer
  void MaybeSendWindowUpdate();
  // The window scale we offer (tcp_select_initial_window()): enough for
  // the largest receive buffer this connection may get.
  uint8_t OurWindowScale() const;
  // ---- timestamps (tcp_ts.cc, RFC 7323 3-5) ----
  // Our TSval now: a 1 ms clock plus the connection's keyed offset.
  uint32_t TsNow() const;
  void InitTsOffset();  // once the 4-tuple is known
  // Fills the option of a segment we send.
  void PutTimestamps(TcpHeader* h);
  // PAWS (5.3 R1): an old TSval on a non-RST segment that is not a
  // reordered pure ACK.
  bool PawsReject(const TcpHeader& h, size_t payload_len) const;
  // TSval no more than `window` ticks behind TS.Recent, or TS.Recent void.
  bool PawsOk(const TcpHeader& h, uint32_t window) const;
  bool DisorderedAck(const TcpHeader& h, size_t payload_len) const;
  // 4.3 (5.3 R3): TS.Recent from a segment that covers Last.ACK.sent.
  void UpdateTsRecent(const TcpHeader& h);
  // An RTT sample from TSecr (4.1) for an ACK of new data after a
  // retransmission stopped the timing (Karn), as Linux takes one only
  // where its own per-segment timing has none (tcp_ack_update_rtt()):
  // the 1 ms ticks are coarse beside the timed samples.
  void SampleRttFromTsecr(const TcpHeader& h);

  // Takes the options of the peer's SYN or SYN-ACK (window scale);
  // rcv_wscale_ holds the scale we offer (or will, in a SYN-ACK).
  void TakeSynOptions(const TcpHeader& h);
  // Receive buffer autotuning after the user read (tcp_rcv_space_adjust()).
  void AdjustRcvSpace();
  // Starts the measurements autotuning needs, at establishment.
  void InitBufferSpace();

  // ---- keepalive (tcp_keepalive.cc) ----
  // (Re)arms the keepalive timer for `idle_s` after the last segment in.
  void ArmKeepalive();
  void OnKeepaliveTimer();

  // ---- lifecycle (tcp.cc) ----
  Status BindLocked(SockAddr a);
  // Sets error `err` (0: none), leaves the tables; the connection is over.
  void Abort(int err, bool send_rst);
  void Finish();  // to kClosed and out of the stack's tables
  bool SendClosed() const;
  bool FinSent() const { return fin_queued_ && fin_sent_; }
  bool FinAcked() const { return fin_sent_ && SeqGt(snd_una_, fin_seq_); }

  TcpState state_ = TcpState::kClosed;
  bool ever_connected_ = false;
  bool user_closed_ = false;
  bool shut_rd_ = false, shut_wr_ = false;
  bool nodelay_ = false;
  bool reuse_addr_ = false;

  // Listening.
  int backlog_ = 0;
  std::deque<std::shared_ptr<TcpEndpoint>> accept_queue_;
  size_t syn_pending_ = 0;
  std::weak_ptr<TcpEndpoint> listener_;  // a child in kSynRcvd
  bool passive_ = false;                 // made by a listener
  bool syn_ack_uncounted_ = false;       // passive: bytes_acked_ not yet past the SYN-ACK

  // Send side. sndq_ holds the bytes from snd_una_ (SYN acknowledged).
  uint32_t iss_ = 0, snd_una_ = 0, snd_nxt_ = 0, snd_max_ = 0;
  uint32_t snd_wnd_ = 0, snd_wl1_ = 0, snd_wl2_ = 0;
  uint16_t snd_mss_ = kDefaultMss;
  // Window scaling (RFC 7323 2): the peer's windows are shifted left by
  // snd_wscale_, ours right by rcv_wscale_ (both 0 without agreement).
  uint8_t snd_wscale_ = 0, rcv_wscale_ = 0;
  bool wscale_ok_ = false;  // the peer's SYN had the option
  // SACK: agreed in the SYNs; the scoreboard (the peer's SACKed ranges
  // above snd_una_, sorted, disjoint); HighRxt in recovery.
  bool sack_ok_ = false;
  // Timestamps: agreed in the SYNs; TS.Recent and when it was taken, the
  // RCV.NXT our last ACK carried (Last.ACK.sent), our clock's offset.
  bool ts_ok_ = false;
  uint32_t ts_recent_ = 0, last_ack_sent_ = 0, ts_offset_ = 0;
  int64_t ts_recent_ns_ = 0;
  std::vector<TcpSackBlock> sacked_;
  uint32_t high_rxt_ = 0;
  bool rcvbuf_locked_ = false, sndbuf_locked_ = false;
  ByteQueue sndq_;
  bool fin_queued_ = false, fin_sent_ = false;
  uint32_t fin_seq_ = 0;

  // Receive side. rcv_off_ counts the stream bytes taken in order.
  uint32_t irs_ = 0, rcv_nxt_ = 0, rcv_adv_edge_ = 0;
  uint64_t rcv_off_ = 0;
  ByteQueue rcvq_;
  std::map<uint64_t, std::string> ooo_;  // stream offset -> bytes
  // ooo_ as maximal contiguous ranges (start -> end), kept as segments
  // come so that an ACK's SACK blocks cost O(log n), not a walk of ooo_.
  std::map<uint64_t, uint64_t> ooo_ranges_;
  size_t ooo_bytes_ = 0;
  std::optional<uint64_t> ooo_fin_off_;
  uint64_t last_ooo_off_ = 0;  // where the latest out-of-order segment starts
  std::optional<TcpSackBlock> dsack_;  // a duplicate the next ACK reports
  bool fin_received_ = false;
  // Receive autotuning: bytes the user read, and the last measurement
  // (bytes read per round trip, where it started and when).
  uint64_t copied_ = 0;
  uint64_t rcv_space_ = 0, rcv_space_from_ = 0;
  int64_t rcv_space_ns_ = 0;

  // Congestion control and retransmission.
  enum class Cc : uint8_t { kReno, kCubic };
  Cc cc_ = Cc::kCubic;
  // CUBIC (RFC 8312), in segments and seconds: W_max and the fast
  // convergence memory, K, the epoch's start (-1: none yet) and the
  // TCP-friendly estimate W_est.
  double cubic_w_max_ = 0, cubic_w_last_max_ = 0, cubic_k_ = 0, cubic_w_est_ = 0;
  int64_t cubic_epoch_ns_ = -1;
  // Growth not yet whole: Reno's acknowledged bytes toward the next
  // segment (tcp_cong_avoid_ai()'s snd_cwnd_cnt), CUBIC's byte fraction.
  uint32_t reno_acked_ = 0;
  double cubic_frac_ = 0;
  uint32_t cwnd_ = 0, ssthresh_ = 0x7fffffff;
  int dupacks_ = 0;
  // In fast recovery until recover_ is acknowledged; by RFC 6675 with the
  // scoreboard (sack_recovery_), else NewReno's (RFC 6582), which a SACK
  // connection also uses when the peer's duplicates carry no blocks.
  bool in_recovery_ = false, sack_recovery_ = false;
  uint32_t recover_ = 0;
  RtoEstimator rto_;
  int retries_ = 0;
  bool rtt_timing_ = false;
  // A retransmission stopped the timing (Karn): until the next sample,
  // an ACK of new data is measured from its TSecr.
  bool rtt_karn_ = false;
  uint32_t rtt_seq_ = 0;
  int64_t rtt_start_ns_ = 0;
  Timer rto_timer_;
  Timer wait_timer_;  // TIME_WAIT and orphaned FIN_WAIT2

  Keepalive keepalive_;
  int keepalive_probes_ = 0;  // sent since the peer was last heard
  int64_t last_rcv_ns_ = 0;   // when the last acceptable segment came
  Timer keepalive_timer_;

  // ---- what TCP_INFO reports (tcp_info.cc) ----
  // Counts a segment we send or resend (`segs` of them in a TSO frame),
  // and one that came.
  void CountOut(std::string_view payload, uint32_t segs = 1);
  void CountRetransmit(size_t payload);
  void CountIn(size_t payload);
  // An RTT measurement: the estimator and the minimum.
  void SampleRtt(int64_t rtt_ns);
  bool loss_ = false;  // after an RTO, until recover_ is acknowledged (TCP_CA_Loss)
  int64_t last_data_sent_ns_ = 0, last_data_rcv_ns_ = 0, min_rtt_ns_ = -1;
  uint16_t rcv_mss_ = 0;  // the largest segment from the peer (tcp_measure_rcv_mss())
  uint64_t bytes_acked_ = 0, bytes_received_ = 0, bytes_sent_ = 0, bytes_retrans_ = 0;
  uint32_t segs_out_ = 0, segs_in_ = 0, data_segs_out_ = 0, data_segs_in_ = 0;
  uint32_t total_retrans_ = 0, rcv_ooopack_ = 0, dsack_dups_ = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_TCP_H_
