// A UDP endpoint (RFC 768): bind, connect (a default peer and a receive
// filter), datagrams queued up to SO_RCVBUF, MSG_TRUNC-style lengths, and
// ICMP errors about its datagrams as Linux reports them (__udp4_lib_err(),
// __udp6_lib_err()): a hard error (port unreachable: ECONNREFUSED) becomes
// the pending error of a connected endpoint; with IP_RECVERR/IPV6_RECVERR
// every error is pending and queued for MSG_ERRQUEUE as well.
//
// The same endpoint serves ICMP echo "ping sockets" (socket(AF_INET,
// SOCK_DGRAM, IPPROTO_ICMP), AF_INET6 with IPPROTO_ICMPV6; Linux's
// net/ipv4/ping.c), made by Stack::NewPing(): the "port" is the echo
// identifier, a datagram sent is an echo request whose identifier and
// checksum the stack fills in, and what arrives is an echo reply, ICMP
// header and all, from port 0 (ping.cc). And raw ICMP sockets (SOCK_RAW,
// IPPROTO_ICMP / IPPROTO_ICMPV6; raw(7), Stack::NewRawIcmp()): what is
// sent goes out as the caller wrote it (ICMPv6: the checksum filled in),
// and every ICMP message that arrives is a copy for each raw socket whose
// address, peer and ICMP filter let it in: an IPv4 one with its IP header,
// an ICMPv6 one without (raw_v4_input(), rawv6_rcv()).
//
//   auto ep = stack.NewUdp();
//   ep->Bind({Ip4{}, 5353});
//   ep->SendTo("q", SockAddr{MakeIp4(10, 0, 0, 2), 53});
//   SockAddr from; ep->RecvFrom(buf, sizeof buf, false, &from);
#ifndef SEEDVISOR_NETSTACK_SHARED_UDP_H_
#define SEEDVISOR_NETSTACK_SHARED_UDP_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "netstack/shared/endpoint.h"
#include "sentry/base/errno.h"

namespace seedvisor::netstack {

// An ICMP error about a datagram the endpoint sent, as IP_RECVERR and
// IPV6_RECVERR queue it (ip_icmp_error(), ipv6_icmp_error()).
struct IcmpError {
  int err = 0;         // ee_errno
  bool icmp6 = false;  // origin SO_EE_ORIGIN_ICMP6, else SO_EE_ORIGIN_ICMP
  uint8_t type = 0, code = 0;
  uint32_t info = 0;    // ee_info: a "too big"'s MTU, a parameter problem's pointer
  IpAddr offender;      // who sent the ICMP message
  SockAddr dest;        // where the failed datagram went
  std::string payload;  // its payload, as far as the ICMP message quoted it
};

// What a datagram's IP header said, for the control messages a receiver
// may ask for (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS; IPV6_RECVPKTINFO,
// IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS).
struct RecvInfo {
  IpAddr dst;       // its destination address
  // The address a reply would come from (IP_PKTINFO's ipi_spec_dst,
  // fib_compute_spec_dst()): `dst`, or for a broadcast or multicast one
  // the source of the route back.
  IpAddr spec_dst;
  int nic = 0;      // the NIC (interface index) it came in on
  uint8_t ttl = 0;  // TTL or hop limit
  uint8_t tos = 0;  // TOS or traffic class
};

// One send's own IP options (a sendmsg's control messages: IP_TTL, IP_TOS,
// IP_PKTINFO; IPV6_HOPLIMIT, IPV6_TCLASS, IPV6_PKTINFO), over the
// endpoint's sticky ones (Endpoint::IpTx).
struct SendInfo {
  int ttl = -1;   // -1: the endpoint's
  int tos = -1;   // -1: the endpoint's
  IpAddr src;     // any: the bound address or the route's
  uint32_t oif = 0;  // the NIC to send from (0: the route's)
};

class UdpEndpoint : public Endpoint, public std::enable_shared_from_this<UdpEndpoint> {
 public:
  static constexpr size_t kMaxPayload = 65507;

  enum class Kind { kUdp, kPing, kRaw };
  // `proto`: kProtoUdp, or kProtoIcmp / kProtoIcmp6 for a ping or raw socket.
  explicit UdpEndpoint(Stack* stack, uint8_t proto = kProtoUdp, Kind kind = Kind::kUdp);
  ~UdpEndpoint() override;

  Status Bind(SockAddr a);
  Status Connect(SockAddr a);
  Status Disconnect();  // connect(AF_UNSPEC)
  // `to` may be absent on a connected endpoint (else EDESTADDRREQ).
  // `scope`: its sin6_scope_id, for a link-local address (0: the
  // endpoint's, stack_scope.cc).
  // `info`: this datagram's TTL, TOS and source (EINVAL for a source that
  // is not ours, ENODEV for a NIC that does not exist).
  Result<size_t> SendTo(std::string_view data, std::optional<SockAddr> to, uint32_t scope = 0,
                        const SendInfo& info = {});
  // The datagram's full length (it may be longer than `len`). A pending
  // error comes first (taken, even by a peek); EAGAIN if nothing waits,
  // or 0 (end of file) once shut down for reading if the caller would
  // wait (`may_wait`), as __skb_wait_for_more_packets() says.
  // `scope`: the sin6_scope_id of a link-local `from` (the NIC it came
  // in on), else 0.
  // `info`: what its IP header said.
  Result<size_t> RecvFrom(char* buf, size_t len, bool peek, SockAddr* from, bool may_wait = false,
                          uint32_t* scope = nullptr, RecvInfo* info = nullptr);
  // MSG_ERRQUEUE: the oldest queued ICMP error, or EAGAIN. The pending
  // error becomes the next queued one's errno, or none
  // (sock_dequeue_err_skb()).
  Result<IcmpError> TakeQueuedError();
  // IP_RECVERR (`ipv6` false: errors from ICMP) or IPV6_RECVERR (from
  // ICMPv6); turning either off empties the queue (skb_errqueue_purge()).
  void SetRecvErr(bool ipv6, bool on);
  bool RecvErr(bool ipv6);
  Status Shutdown(int how);
  void Close();  // call before dropping the last reference

  uint32_t Readiness();
  Result<SockAddr> remote();
  size_t Available();  // FIONREAD: the next datagram's length
  void SetReuseAddr(bool on);
  // SO_BROADCAST: without it a send to, or a connect to, a broadcast
  // address is EACCES.
  void SetBroadcast(bool on);
  void SetBufferSizes(size_t rcvbuf, size_t sndbuf);
  bool ping() const { return kind_ == Kind::kPing; }
  bool raw() const { return kind_ == Kind::kRaw; }
  // ICMP_FILTER (IPv4: types 0..31) and ICMP6_FILTER: a set bit drops
  // that type (raw_icmp_filter(), icmpv6_filter()).
  void SetIcmpFilter(const std::array<uint32_t, 8>& blocked);
  std::array<uint32_t, 8> IcmpFilter();

 private:
  friend class Stack;
  struct Datagram {
    SockAddr from;
    std::string data;
    uint32_t scope = 0;  // RecvFrom()'s
    RecvInfo info;
  };
  Status BindLocked(SockAddr a);
  // EACCES for a broadcast `to` without SO_BROADCAST.
  Status BroadcastAllowed(const IpAddr& to) const;
  // Whether the bound address is the source of what we send: not when
  // unbound or bound to a multicast or broadcast address (Linux's
  // inet_saddr 0: the route's source).
  bool SourceIsOurs() const;
  // ping.cc: ping_bind()/ping_get_port() (sockets of either family share
  // an identifier unless one turned SO_REUSEADDR off, which ping sockets
  // start with; 0: the next free one after the rover) and ping_v4_sendmsg()/
  // ping_v6_sendmsg() (an echo request of ours: EINVAL otherwise).
  Status BindPingLocked(SockAddr a);
  void UnbindPingLocked();
  Result<size_t> SendEchoLocked(std::string_view msg, const SockAddr& to, const SendInfo& info);
  Result<size_t> SendRawLocked(std::string_view msg, const SockAddr& to, const SendInfo& info);
  // A datagram's TTL (hop limit) and TOS (traffic class): the send's,
  // else the endpoint's.
  uint8_t TtlOf(const SendInfo& info, const IpAddr& to) const;
  uint8_t TosOf(const SendInfo& info, const IpAddr& to) const;
  // Whether a raw socket takes ICMP message `type` from `src` to `dst`.
  bool RawAccepts(const IpAddr& src, const IpAddr& dst, uint8_t type) const;
  void Deliver(SockAddr from, std::string_view data, uint32_t scope = 0, const RecvInfo& info = {});
  // An ICMP error about one of our datagrams; `hard`: one Linux reports
  // to a connected socket without IP_RECVERR (icmp_err_convert[].fatal).
  void IcmpErrorLocked(IcmpError e, bool hard);

  const uint8_t proto_;
  const Kind kind_;
  std::array<uint32_t, 8> icmp_filter_{};
  bool connected_ = false;
  bool reuse_addr_;  // SO_REUSEADDR: ping and raw sockets start with it
  bool broadcast_ = false;  // SO_BROADCAST
  bool shut_rd_ = false, shut_wr_ = false;
  bool closed_ = false;
  bool recverr4_ = false, recverr6_ = false;
  std::deque<Datagram> rcvq_;
  std::deque<IcmpError> errq_;
  size_t rcvq_bytes_ = 0;  // both queues, against SO_RCVBUF (sk_rmem_alloc)
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_UDP_H_
