// The stack fed frames built by hand (testing/harness.cc), its output
// frames parsed and checked: Ethernet, ARP, IPv4, ICMP and UDP here; TCP in
// tcp_test.cc.
#include <poll.h>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack {
namespace {

using testing::OneStack;
using testing::Parsed;
using testing::kOurIp;
using testing::kOurMac;
using testing::kPeerIp;
using testing::kPeerMac;

TEST(Arp, AnswersRequestsForOurAddressOnly) {
  OneStack s(false);
  s.Deliver(testing::PeerArp(kArpRequest, kOurIp));
  Parsed p = s.Next();
  ASSERT_TRUE(p.is_arp);
  EXPECT_EQ(p.eth.dst, kPeerMac);
  EXPECT_EQ(p.eth.src, kOurMac);
  EXPECT_EQ(p.arp.op, kArpReply);
  EXPECT_EQ(p.arp.sha, kOurMac);
  EXPECT_EQ(p.arp.spa, kOurIp);
  EXPECT_EQ(p.arp.tha, kPeerMac);
  EXPECT_EQ(p.arp.tpa, kPeerIp);
  s.Deliver(testing::PeerArp(kArpRequest, MakeIp4(10, 0, 0, 9)));
  EXPECT_TRUE(s.Quiet());
  EXPECT_EQ(s.stack->stats().arp_replies_sent, 1u);
}

TEST(Arp, ResolvesQueuesAndGivesUp) {
  OneStack s(false);
  s.answer_arp = false;
  auto u = s.stack->NewUdp();
  ASSERT_TRUE(u->SendTo("one", SockAddr{kPeerIp, 53}).ok());
  ASSERT_TRUE(u->SendTo("two", SockAddr{kPeerIp, 53}).ok());
  Parsed req = s.Next();  // one request for both packets
  ASSERT_TRUE(req.is_arp);
  EXPECT_EQ(req.eth.dst, kBroadcastMac);
  EXPECT_EQ(req.arp.op, kArpRequest);
  EXPECT_EQ(req.arp.tpa, kPeerIp);
  EXPECT_EQ(req.arp.spa, kOurIp);
  EXPECT_TRUE(s.Quiet());
  s.Deliver(testing::PeerArp(kArpReply, kOurIp, kOurMac));
  Parsed a = s.Next(), b = s.Next();
  EXPECT_EQ(a.eth.dst, kPeerMac);
  EXPECT_EQ(a.payload, "one");
  EXPECT_EQ(b.payload, "two");
  // A neighbour that never answers: 3 requests a second apart, then the
  // waiting packet is dropped.
  Ip4 ghost = MakeIp4(10, 0, 0, 77);
  ASSERT_TRUE(u->SendTo("lost", SockAddr{ghost, 53}).ok());
  for (int i = 0; i < 3; ++i) {
    Parsed r = s.Next();
    ASSERT_TRUE(r.is_arp);
    EXPECT_EQ(r.arp.tpa, ghost);
    s.Advance(1'000'000'000);
  }
  EXPECT_TRUE(s.Quiet());
  EXPECT_EQ(s.stack->stats().arp_failed, 1u);
  u->Close();
}

TEST(Ip4, DropsWithReasons) {
  OneStack s;
  std::string f = testing::PeerUdp(1, 2, "x");
  std::string bad = f;
  bad[14 + 10] ^= 1;  // header checksum
  s.Deliver(bad);
  s.Deliver(f.substr(0, 14 + 19));  // truncated header
  bad = f;
  bad[14 + 3] = char(200);  // total length past the frame
  s.Deliver(bad);
  s.Deliver(testing::PeerIpFrame(kProtoUdp, "12345678", kPeerIp, MakeIp4(10, 0, 0, 50)));
  s.Deliver(testing::PeerIpFrame(kProtoUdp, "12345678", MakeIp4(127, 0, 0, 1), kOurIp));
  std::string other_mac = f;
  other_mac[0] = 0x04;
  s.Deliver(other_mac);
  Stats st = s.stack->stats();
  EXPECT_EQ(st.ip_bad_checksum, 1u);
  EXPECT_EQ(st.ip_truncated, 1u);
  EXPECT_EQ(st.ip_bad_total_len, 1u);
  EXPECT_EQ(st.ip_not_for_us, 1u);
  EXPECT_EQ(st.ip_bad_src, 1u);
  EXPECT_EQ(st.eth_not_for_us, 1u);
  EXPECT_TRUE(s.Quiet());
}

TEST(Icmp, EchoReply) {
  OneStack s;
  std::string echo = std::string("\x08\x00\x00\x00\x12\x34\x00\x07", 8) + "ping-data";
  uint16_t c = ChecksumFinish(ChecksumPartial(echo));
  echo[2] = char(c >> 8);
  echo[3] = char(c);
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, echo, kPeerIp, kOurIp, 99, 0, 3));
  Parsed p = s.Next();
  ASSERT_TRUE(p.is_ip);
  EXPECT_EQ(p.ip.proto, kProtoIcmp);
  EXPECT_EQ(p.ip.src, kOurIp);
  EXPECT_EQ(p.ip.dst, kPeerIp);
  EXPECT_EQ(p.ip.ttl, Stack::kDefaultTtl);  // our TTL, not the request's
  EXPECT_EQ(uint8_t(p.payload[0]), kIcmpEchoReply);
  EXPECT_EQ(p.payload.substr(4), echo.substr(4));  // id, sequence, data
  // A corrupted echo is not answered.
  echo[9] ^= 1;
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, echo));
  EXPECT_TRUE(s.Quiet());
  EXPECT_EQ(s.stack->stats().icmp_malformed, 1u);
}

// An ICMP error (`type`, `code`, the 32 bits after the checksum `word`)
// about `sent`, a UDP datagram the stack sent: its IP header, UDP header
// and payload quoted.
std::string IcmpAbout(const Parsed& sent, uint8_t type, uint8_t code, uint32_t word = 0) {
  std::string m(8, '\0');
  U8(m)[0] = type;
  U8(m)[1] = code;
  Put32(U8(m) + 4, word);
  AppendIp4(&m, sent.ip);
  std::string l4(8, '\0');
  Put16(U8(l4), sent.udp.src_port);
  Put16(U8(l4) + 2, sent.udp.dst_port);
  Put16(U8(l4) + 4, uint16_t(8 + sent.payload.size()));
  m += l4 + sent.payload;
  Put16(U8(m) + 2, ChecksumFinish(ChecksumPartial(m)));
  return m;
}

// An ICMP message of `type` with the identifier `id`, sequence `seq` and
// `data`, its checksum filled in unless `bad_sum`.
std::string Echo(uint8_t type, uint16_t id, uint16_t seq, std::string_view data,
                 bool bad_sum = false) {
  std::string m(8, '\0');
  U8(m)[0] = type;
  Put16(U8(m) + 4, id);
  Put16(U8(m) + 6, seq);
  m.append(data);
  Put16(U8(m) + 2, bad_sum ? 0xbeef : ChecksumFinish(ChecksumPartial(m)));
  return m;
}

TEST(Ping, EchoOverTheLinkRepliesOnlyToItsIdentifier) {
  OneStack s;
  auto p = s.stack->NewPing(false);
  // The caller's identifier and checksum are replaced by the stack's.
  ASSERT_TRUE(p->SendTo(Echo(kIcmpEchoRequest, 0x1234, 7, "abc", true), SockAddr{kPeerIp, 99})
                  .ok());
  const uint16_t id = p->local().port;
  EXPECT_NE(id, 0);
  Parsed req = s.Next();
  ASSERT_TRUE(req.is_ip);
  EXPECT_EQ(req.ip.proto, kProtoIcmp);
  EXPECT_EQ(req.payload, Echo(kIcmpEchoRequest, id, 7, "abc"));
  // Another identifier's reply, an echo request and our reply: only the
  // last reaches the socket, header and all, from port 0.
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, Echo(kIcmpEchoReply, uint16_t(id + 1), 7, "abc")));
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, Echo(kIcmpEchoRequest, id, 8, "req")));
  EXPECT_EQ(s.Next().payload, Echo(kIcmpEchoReply, id, 8, "req"));  // the stack answers it
  EXPECT_EQ(p->Available(), 0u);
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, Echo(kIcmpEchoReply, id, 7, "abc")));
  char buf[64];
  SockAddr from;
  auto n = p->RecvFrom(buf, sizeof buf, false, &from);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), Echo(kIcmpEchoReply, id, 7, "abc"));
  EXPECT_EQ(from, (SockAddr{kPeerIp, 0}));
  EXPECT_EQ(p->RecvFrom(buf, sizeof buf, false, &from).error(), Errno(EAGAIN));
  EXPECT_EQ(s.stack->stats().ping_no_socket, 1u);
  // Not an echo request (13: a timestamp request): EINVAL, nothing sent.
  EXPECT_EQ(p->SendTo(Echo(13, 0, 1, ""), SockAddr{kPeerIp, 0}).error(),
            Errno(EINVAL));
  EXPECT_EQ(p->SendTo("short", SockAddr{kPeerIp, 0}).error(), Errno(EINVAL));
  EXPECT_TRUE(s.Quiet());
  p->Close();
}

TEST(Ping, IcmpErrorsAboutItsRequests) {
  OneStack s;
  const Ip4 router = MakeIp4(10, 0, 0, 254);
  auto p = s.stack->NewPing(false);
  p->SetRecvErr(false, true);
  ASSERT_TRUE(p->SendTo(Echo(kIcmpEchoRequest, 0, 1, "x"), SockAddr{kPeerIp, 0}).ok());
  Parsed req = s.Next();
  // ping_err(): a host unreachable quoting the request.
  std::string m(8, '\0');
  U8(m)[0] = kIcmpDestUnreach;
  U8(m)[1] = 1;
  AppendIp4(&m, req.ip);
  m += req.payload;
  Put16(U8(m) + 2, ChecksumFinish(ChecksumPartial(m)));
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, m, router));
  EXPECT_NE(p->Readiness() & POLLERR, 0u);
  Result<IcmpError> e = p->TakeQueuedError();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->err, EHOSTUNREACH);
  EXPECT_EQ(e->offender, IpAddr(router));
  EXPECT_EQ(e->dest, (SockAddr{kPeerIp, 0}));
  EXPECT_EQ(e->payload, req.payload);
  p->Close();
}

TEST(Ping, LoopbackBothFamilies) {
  OneStack s;
  auto p4 = s.stack->NewPing(false), p6 = s.stack->NewPing(true);
  ASSERT_TRUE(p4->Bind({Ip4{}, 4321}).ok());
  ASSERT_TRUE(p4->SendTo(Echo(kIcmpEchoRequest, 0, 3, "lo"), SockAddr{MakeIp4(127, 0, 0, 1), 0})
                  .ok());
  char buf[64];
  SockAddr from;
  auto n = p4->RecvFrom(buf, sizeof buf, false, &from);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), Echo(kIcmpEchoReply, 4321, 3, "lo"));
  EXPECT_EQ(from, (SockAddr{MakeIp4(127, 0, 0, 1), 0}));
  // ICMPv6: an IPv4-mapped destination or an ICMP type is EINVAL.
  std::string e6 = Echo(kIcmp6EchoRequest, 0, 4, "six");
  EXPECT_EQ(p6->SendTo(e6, SockAddr{MakeIp4(127, 0, 0, 1), 0}).error(), Errno(EINVAL));
  EXPECT_EQ(p6->SendTo(Echo(kIcmpEchoRequest, 0, 4, ""), SockAddr{kIp6Loopback, 0}).error(),
            Errno(EINVAL));
  ASSERT_TRUE(p6->SendTo(e6, SockAddr{kIp6Loopback, 0}).ok());
  n = p6->RecvFrom(buf, sizeof buf, false, &from);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, e6.size());
  EXPECT_EQ(uint8_t(buf[0]), kIcmp6EchoReply);
  EXPECT_EQ(Get16(reinterpret_cast<const uint8_t*>(buf) + 4), p6->local().port);
  EXPECT_EQ(std::string(buf + 6, *n - 6), e6.substr(6));
  EXPECT_EQ(from, (SockAddr{kIp6Loopback, 0}));
  EXPECT_EQ(p4->Available(), 0u);  // the IPv4 socket saw none of it
  EXPECT_TRUE(s.Quiet());
  p4->Close();
  p6->Close();
}

// udp_sendmsg(), ping_v4_sendmsg(), raw_sendmsg(): the subnet's broadcast
// address (and 255.255.255.255) needs SO_BROADCAST; then it goes to the
// broadcast MAC.
TEST(Ping, SubnetBroadcastNeedsSoBroadcastAsUdpAndRaw) {
  OneStack s;
  const SockAddr bcast{MakeIp4(10, 0, 0, 255), 9};
  auto u = s.stack->NewUdp();
  auto p = s.stack->NewPing(false);
  auto r = s.stack->NewRawIcmp(false);
  const std::string echo = Echo(kIcmpEchoRequest, 0, 1, "b");
  EXPECT_EQ(u->SendTo("x", bcast).error(), Errno(EACCES));
  EXPECT_EQ(u->Connect(bcast).error(), Errno(EACCES));
  EXPECT_EQ(p->SendTo(echo, bcast).error(), Errno(EACCES));
  EXPECT_EQ(r->SendTo(echo, bcast).error(), Errno(EACCES));
  EXPECT_TRUE(s.Quiet());
  for (UdpEndpoint* ep : {u.get(), p.get(), r.get()}) {
    ep->SetBroadcast(true);
    ASSERT_TRUE(ep->SendTo(ep == u.get() ? "x" : echo, bcast).ok());
    Parsed f = s.Next();
    EXPECT_EQ(f.eth.dst, kBroadcastMac);
    EXPECT_EQ(f.ip.src, kOurIp);
    EXPECT_EQ(f.ip.dst, MakeIp4(10, 0, 0, 255));
  }
  EXPECT_TRUE(u->Connect(bcast).ok());
  // A raw socket bound to the broadcast address sends from ours.
  ASSERT_TRUE(r->Bind({MakeIp4(10, 0, 0, 255), 0}).ok());
  ASSERT_TRUE(r->SendTo(echo, SockAddr{kPeerIp, 0}).ok());
  EXPECT_EQ(s.Next().ip.src, kOurIp);
  // A ping socket binds no broadcast address.
  auto p2 = s.stack->NewPing(false);
  EXPECT_EQ(p2->Bind({MakeIp4(10, 0, 0, 255), 0}).error(), Errno(EADDRNOTAVAIL));
  for (auto* ep : {u.get(), p.get(), r.get(), p2.get()}) ep->Close();
}

TEST(RawIcmp, SendsAsWrittenAndGetsACopyOfEveryMessage) {
  OneStack s;
  auto r = s.stack->NewRawIcmp(false);
  EXPECT_EQ(r->local().port, kProtoIcmp);  // inet_create(): the "port" is the protocol
  // The caller's identifier and checksum stay as written.
  std::string req = Echo(kIcmpEchoRequest, 0x77, 1, "raw");
  ASSERT_TRUE(r->SendTo(req, SockAddr{kPeerIp, 0}).ok());
  EXPECT_EQ(s.Next().payload, req);
  // The peer's reply: to the raw socket with its IPv4 header.
  std::string reply = Echo(kIcmpEchoReply, 0x77, 1, "raw");
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, reply));
  char buf[128];
  SockAddr from;
  auto n = r->RecvFrom(buf, sizeof buf, false, &from);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 20 + reply.size());
  Ip4Header h;
  ASSERT_EQ(ParseIp4(std::string_view(buf, *n), &h), Ip4ParseError::kOk);
  EXPECT_EQ(h.src, kPeerIp);
  EXPECT_EQ(h.dst, kOurIp);
  EXPECT_EQ(h.proto, kProtoIcmp);
  EXPECT_EQ(std::string(buf + 20, *n - 20), reply);
  EXPECT_EQ(from, (SockAddr{kPeerIp, 0}));
  // An echo request to us: a copy to the raw socket, and the stack's answer.
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, Echo(kIcmpEchoRequest, 5, 2, "q")));
  EXPECT_EQ(s.Next().payload, Echo(kIcmpEchoReply, 5, 2, "q"));
  n = r->RecvFrom(buf, sizeof buf, false, &from);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(uint8_t(buf[20]), kIcmpEchoRequest);
  // ICMP_FILTER: a set bit drops that type.
  std::array<uint32_t, 8> f{};
  f[0] = 1u << kIcmpEchoRequest;
  r->SetIcmpFilter(f);
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, Echo(kIcmpEchoRequest, 5, 3, "q")));
  EXPECT_FALSE(s.Next().payload.empty());
  EXPECT_EQ(r->Available(), 0u);
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, reply));
  EXPECT_EQ(r->Available(), 20 + reply.size());
  r->Close();
  // A closed raw socket is out of the table.
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, reply));
  EXPECT_EQ(s.stack->stats().raw_delivered, 3u);
}

TEST(RawIcmp, Icmp6ChecksumIsTheStacksAndNoHeaderComesWithIt) {
  OneStack s;
  auto r = s.stack->NewRawIcmp(true);
  std::string req = Echo(kIcmp6EchoRequest, 0x99, 1, "six", true);
  ASSERT_TRUE(r->SendTo(req, SockAddr{kIp6Loopback, 0}).ok());
  // Loopback carries our request (a copy to us) and the stack's reply.
  char buf[128];
  SockAddr from;
  for (uint8_t want : {kIcmp6EchoRequest, kIcmp6EchoReply}) {
    auto n = r->RecvFrom(buf, sizeof buf, false, &from);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(*n, req.size());
    EXPECT_EQ(uint8_t(buf[0]), want);
    EXPECT_EQ(std::string(buf + 4, *n - 4), req.substr(4));
    std::string m(buf, *n);
    EXPECT_EQ(ChecksumFinish(ChecksumPartial(
                  m, PseudoHeaderSum(kIp6Loopback, kIp6Loopback, kProtoIcmp6, uint32_t(m.size())))),
              0);
    EXPECT_EQ(from, (SockAddr{kIp6Loopback, 0}));
  }
  EXPECT_EQ(r->SendTo(req, SockAddr{kPeerIp, 0}).error(), Errno(EINVAL));
  EXPECT_TRUE(s.Quiet());
  r->Close();
}

TEST(Udp, DeliversAnswersUnreachableAndReportsRefused) {
  OneStack s;
  auto u = s.stack->NewUdp();
  ASSERT_TRUE(u->Bind({Ip4{}, 5000}).ok());
  EXPECT_EQ(u->Readiness() & POLLIN, 0u);
  s.Deliver(testing::PeerUdp(4000, 5000, "hello"));
  EXPECT_NE(u->Readiness() & POLLIN, 0u);
  EXPECT_EQ(u->Available(), 5u);
  char buf[16];
  SockAddr from;
  auto n = u->RecvFrom(buf, 3, false, &from);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);  // the datagram's length (MSG_TRUNC)
  EXPECT_EQ(std::string(buf, 3), "hel");
  EXPECT_EQ(from.ip, kPeerIp);
  EXPECT_EQ(from.port, 4000);
  EXPECT_EQ(u->RecvFrom(buf, 3, false, &from).error(), Errno(EAGAIN));
  // Nobody on 5001: ICMP port unreachable quoting our header.
  std::string f = testing::PeerUdp(4000, 5001, "x");
  s.Deliver(f);
  Parsed p = s.Next();
  ASSERT_EQ(p.ip.proto, kProtoIcmp);
  EXPECT_EQ(uint8_t(p.payload[0]), kIcmpDestUnreach);
  EXPECT_EQ(uint8_t(p.payload[1]), kIcmpPortUnreach);
  EXPECT_EQ(p.payload.substr(8, 28), f.substr(14, 28));
  // Our send: header and checksum.
  ASSERT_TRUE(u->SendTo("answer", SockAddr{kPeerIp, 4000}).ok());
  p = s.Next();
  EXPECT_EQ(p.udp.src_port, 5000);
  EXPECT_EQ(p.udp.dst_port, 4000);
  EXPECT_EQ(p.payload, "answer");
  EXPECT_EQ(p.ip.ttl, 64);
  // A connected endpoint hears about the peer's port unreachable.
  auto c = s.stack->NewUdp();
  ASSERT_TRUE(c->Connect({kPeerIp, 9}).ok());
  ASSERT_TRUE(c->SendTo("x", std::nullopt).ok());
  Parsed sent = s.Next();
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, IcmpAbout(sent, kIcmpDestUnreach, kIcmpPortUnreach)));
  EXPECT_NE(c->Readiness() & POLLERR, 0u);
  EXPECT_EQ(c->SendTo("y", std::nullopt).error(), Errno(ECONNREFUSED));
  u->Close();
  c->Close();
}

// __udp4_lib_err(): a soft error (time exceeded) reaches only a socket
// with IP_RECVERR, a hard one (fragmentation needed, path MTU discovery
// on) a connected socket's pending error too; with IP_RECVERR each is
// queued with its origin, ee_info, the router as offender and the quoted
// payload. An unconnected socket without it hears nothing.
// A sticky TTL and TOS (IP_TTL, IP_TOS) and a send's own (a sendmsg's
// control messages) go into the IP header, with a pktinfo's source; what a
// datagram's header said comes back with it for IP_RECVTTL, IP_RECVTOS
// and IP_PKTINFO.
TEST(Udp, TtlTosAndPktinfoBothWays) {
  OneStack s;
  auto u = s.stack->NewUdp();
  ASSERT_TRUE(u->Bind({Ip4{}, 5000}).ok());
  Endpoint::IpTx tx;
  tx.ttl = 9;
  tx.tos = 0x20;
  u->SetIpTx(tx);
  ASSERT_TRUE(u->SendTo("a", SockAddr{kPeerIp, 4000}).ok());
  Parsed p = s.Next();
  EXPECT_EQ(p.ip.ttl, 9);
  EXPECT_EQ(p.ip.tos, 0x20);
  SendInfo si;
  si.ttl = 3;
  si.tos = 0x40;
  si.src = kOurIp;
  ASSERT_TRUE(u->SendTo("b", SockAddr{kPeerIp, 4000}, 0, si).ok());
  p = s.Next();
  EXPECT_EQ(p.ip.ttl, 3);
  EXPECT_EQ(p.ip.tos, 0x40);
  EXPECT_EQ(p.ip.src, kOurIp);
  EXPECT_EQ(p.payload, "b");
  si = {};
  si.src = MakeIp4(10, 0, 0, 99);  // not ours
  EXPECT_EQ(u->SendTo("c", SockAddr{kPeerIp, 4000}, 0, si).error(), Errno(ENETUNREACH));
  si = {};
  si.oif = 99;  // no such NIC
  EXPECT_EQ(u->SendTo("c", SockAddr{kPeerIp, 4000}, 0, si).error(), Errno(ENODEV));
  EXPECT_TRUE(s.Quiet());
  // A datagram with TTL 7 and TOS 0x88, its header checksum made anew.
  std::string f = testing::PeerUdp(4000, 5000, "in");
  f[14 + 1] = char(0x88);
  f[14 + 8] = 7;
  f[14 + 10] = f[14 + 11] = 0;
  uint16_t c = ChecksumFinish(ChecksumPartial(std::string_view(f).substr(14, 20)));
  f[14 + 10] = char(c >> 8);
  f[14 + 11] = char(c);
  s.Deliver(f);
  char buf[8];
  SockAddr from;
  RecvInfo info;
  ASSERT_EQ(u->RecvFrom(buf, sizeof buf, false, &from, false, nullptr, &info).value(), 2u);
  EXPECT_EQ(info.ttl, 7);
  EXPECT_EQ(info.tos, 0x88);
  EXPECT_EQ(info.dst, IpAddr(kOurIp));
  EXPECT_EQ(info.spec_dst, IpAddr(kOurIp));
  EXPECT_EQ(info.nic, s.nic);
  u->Close();
}

TEST(Udp, IcmpErrorsFromARouter) {
  OneStack s;
  const Ip4 router = MakeIp4(10, 0, 0, 254);
  const SockAddr far{kPeerIp, 53};
  auto c = s.stack->NewUdp();
  ASSERT_TRUE(c->Connect(far).ok());
  auto send = [&](const char* what) {
    EXPECT_TRUE(c->SendTo(what, std::nullopt).ok());
    return s.Next();
  };
  Parsed sent = send("q1");
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, IcmpAbout(sent, kIcmpTimeExceeded, 0), router));
  EXPECT_EQ(c->Readiness() & POLLERR, 0u);
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, IcmpAbout(sent, kIcmpDestUnreach, kIcmpFragNeeded, 1400),
                                 router));
  EXPECT_NE(c->Readiness() & POLLERR, 0u);
  EXPECT_EQ(c->TakeError(), EMSGSIZE);
  EXPECT_EQ(c->TakeQueuedError().error(), Errno(EAGAIN));  // no IP_RECVERR: not queued

  c->SetRecvErr(false, true);
  sent = send("q2");
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, IcmpAbout(sent, kIcmpTimeExceeded, 0), router));
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, IcmpAbout(sent, kIcmpDestUnreach, kIcmpFragNeeded, 1400),
                                 router));
  EXPECT_NE(c->Readiness() & POLLERR, 0u);
  Result<IcmpError> e = c->TakeQueuedError();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->err, EHOSTUNREACH);
  EXPECT_FALSE(e->icmp6);
  EXPECT_EQ(e->type, kIcmpTimeExceeded);
  EXPECT_EQ(e->offender, IpAddr(router));
  EXPECT_EQ(e->dest, far);
  EXPECT_EQ(e->payload, "q2");
  e = c->TakeQueuedError();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->err, EMSGSIZE);
  EXPECT_EQ(e->code, kIcmpFragNeeded);
  EXPECT_EQ(e->info, 1400u);
  EXPECT_EQ(c->Readiness() & POLLERR, 0u);  // reading the last one cleared the error
  // A parameter problem: EPROTO, the pointer in ee_info.
  sent = send("q3");
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, IcmpAbout(sent, kIcmpParamProblem, 0, 9u << 24), router));
  e = c->TakeQueuedError();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->err, EPROTO);
  EXPECT_EQ(e->info, 9u);
  // A quote too short for the ports is ignored.
  std::string cut = IcmpAbout(sent, kIcmpDestUnreach, kIcmpPortUnreach).substr(0, 8 + 20 + 2);
  Put16(U8(cut) + 2, 0);
  Put16(U8(cut) + 2, ChecksumFinish(ChecksumPartial(cut)));
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, cut, router));
  EXPECT_EQ(c->Readiness() & POLLERR, 0u);

  // Unconnected, no IP_RECVERR: nothing, even for a hard error.
  auto u = s.stack->NewUdp();
  ASSERT_TRUE(u->SendTo("u", far).ok());
  sent = s.Next();
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, IcmpAbout(sent, kIcmpDestUnreach, kIcmpPortUnreach)));
  EXPECT_EQ(u->Readiness() & POLLERR, 0u);
  EXPECT_EQ(u->TakeError(), 0);
  c->Close();
  u->Close();
}

TEST(Ip4, ReassemblesFragmentsAndFragmentsOutput) {
  OneStack s;
  auto u = s.stack->NewUdp();
  ASSERT_TRUE(u->Bind({Ip4{}, 7}).ok());
  // A 40-byte UDP datagram in three fragments, last one first.
  std::string payload(32, 'z');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = char('a' + i % 26);
  std::string dgram = testing::PeerUdp(1234, 7, payload).substr(14 + 20);
  ASSERT_EQ(dgram.size(), 40u);
  s.Deliver(testing::PeerIpFrame(kProtoUdp, dgram.substr(32), kPeerIp, kOurIp, 55, 4));
  s.Deliver(testing::PeerIpFrame(kProtoUdp, dgram.substr(0, 16), kPeerIp, kOurIp, 55, kIpFlagMF));
  EXPECT_EQ(u->Available(), 0u);
  s.Deliver(testing::PeerIpFrame(kProtoUdp, dgram.substr(16, 16), kPeerIp, kOurIp, 55, kIpFlagMF | 2));
  char buf[64];
  auto n = u->RecvFrom(buf, sizeof buf, false, nullptr);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), payload);
  EXPECT_EQ(s.stack->stats().ip_reassembled, 1u);
  // An incomplete datagram expires after 30 s.
  s.Deliver(testing::PeerIpFrame(kProtoUdp, dgram.substr(0, 16), kPeerIp, kOurIp, 56, kIpFlagMF));
  s.Advance(31'000'000'000);
  EXPECT_EQ(s.stack->stats().ip_frag_timeout, 1u);
  // Our 3000-byte datagram leaves as 1480 + 1480 + 48 bytes of IP payload.
  std::string big(3000, 'q');
  ASSERT_TRUE(u->SendTo(big, SockAddr{kPeerIp, 1234}).ok());
  Parsed f1 = s.Next(), f2 = s.Next(), f3 = s.Next();
  EXPECT_TRUE(f1.ip.more_fragments());
  EXPECT_EQ(f1.ip.total_len, 1500);
  EXPECT_EQ(f2.ip.frag_offset(), 1480u);
  EXPECT_TRUE(f2.ip.more_fragments());
  EXPECT_EQ(f3.ip.frag_offset(), 2960u);
  EXPECT_FALSE(f3.ip.more_fragments());
  EXPECT_EQ(f3.ip.total_len, 20 + 3008 - 2960);
  EXPECT_EQ(f1.ip.id, f3.ip.id);
  u->Close();
}

TEST(Loopback, UdpAndPingInsideTheStack) {
  OneStack s;
  auto a = s.stack->NewUdp(), b = s.stack->NewUdp();
  ASSERT_TRUE(b->Bind({MakeIp4(127, 0, 0, 1), 9000}).ok());
  ASSERT_TRUE(a->SendTo("via lo", SockAddr{MakeIp4(127, 0, 0, 1), 9000}).ok());
  char buf[16];
  SockAddr from;
  auto n = b->RecvFrom(buf, sizeof buf, false, &from);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "via lo");
  EXPECT_EQ(from.ip, MakeIp4(127, 0, 0, 1));
  // To our own eth0 address: also through loopback, never onto the link.
  auto c = s.stack->NewUdp();
  ASSERT_TRUE(c->Bind({kOurIp, 9001}).ok());
  ASSERT_TRUE(a->SendTo("self", SockAddr{kOurIp, 9001}).ok());
  n = c->RecvFrom(buf, sizeof buf, false, &from);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(from.ip, kOurIp);
  EXPECT_TRUE(s.Quiet());
  a->Close();
  b->Close();
  c->Close();
}

}  // namespace
}  // namespace seedvisor::netstack
