// A UDP endpoint (RFC 768): bind, connect (a default peer and a receive
// filter), datagrams queued up to SO_RCVBUF, MSG_TRUNC-style lengths, and
// ICMP port-unreachable turned into ECONNREFUSED on a connected endpoint
// as Linux does (__udp4_lib_err()).
//
//   auto ep = stack.NewUdp();
//   ep->Bind({Ip4{}, 5353});
//   ep->SendTo("q", SockAddr{MakeIp4(10, 0, 0, 2), 53});
//   SockAddr from; ep->RecvFrom(buf, sizeof buf, false, &from);
#ifndef SEEDVISOR_NETSTACK_SHARED_UDP_H_
#define SEEDVISOR_NETSTACK_SHARED_UDP_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "netstack/shared/endpoint.h"
#include "sentry/base/errno.h"

namespace seedvisor::netstack {

class UdpEndpoint : public Endpoint, public std::enable_shared_from_this<UdpEndpoint> {
 public:
  static constexpr size_t kMaxPayload = 65507;

  explicit UdpEndpoint(Stack* stack);
  ~UdpEndpoint() override;

  Status Bind(SockAddr a);
  Status Connect(SockAddr a);
  Status Disconnect();  // connect(AF_UNSPEC)
  // `to` may be absent on a connected endpoint (else EDESTADDRREQ).
  Result<size_t> SendTo(std::string_view data, std::optional<SockAddr> to);
  // The datagram's full length (it may be longer than `len`); EAGAIN if none.
  Result<size_t> RecvFrom(char* buf, size_t len, bool peek, SockAddr* from);
  Status Shutdown(int how);
  void Close();  // call before dropping the last reference

  uint32_t Readiness();
  Result<SockAddr> remote();
  size_t Available();  // FIONREAD: the next datagram's length
  void SetReuseAddr(bool on);
  void SetBufferSizes(size_t rcvbuf, size_t sndbuf);

 private:
  friend class Stack;
  struct Datagram {
    SockAddr from;
    std::string data;
  };
  Status BindLocked(SockAddr a);
  void Deliver(SockAddr from, std::string_view data);

  bool connected_ = false;
  bool reuse_addr_ = false;
  bool shut_rd_ = false, shut_wr_ = false;
  bool closed_ = false;
  std::deque<Datagram> rcvq_;
  size_t rcvq_bytes_ = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_UDP_H_
