#include "sentry/socket/netlink_route.h"

#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <map>
#include <random>

#include "gtest/gtest.h"
#include "sentry/socket/linux_ipv6_reference.h"

namespace seedvisor::sentry {
namespace {

std::string Request(uint16_t type, uint16_t flags, uint32_t seq, const std::string& payload) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(payload.size()));
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  std::string s(reinterpret_cast<const char*>(&h), sizeof(h));
  s += payload;
  s.resize(NLMSG_ALIGN(s.size()), '\0');
  return s;
}

nlmsghdr Header(const std::string& m) {
  nlmsghdr h;
  memcpy(&h, m.data(), sizeof(h));
  return h;
}

int ErrorOf(const std::string& m) {
  int32_t e;
  memcpy(&e, m.data() + sizeof(nlmsghdr), sizeof(e));
  return -e;
}

TEST(NetlinkRoute, LinkDumpIsLoThenDone) {
  std::vector<std::string> out;
  HandleRouteRequests(LoopbackOnlyView(), Request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 7, std::string(1, AF_UNSPEC)),
                      42, &out);
  ASSERT_EQ(out.size(), 2u);
  nlmsghdr h = Header(out[0]);
  EXPECT_EQ(h.nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(h.nlmsg_seq, 7u);
  EXPECT_EQ(h.nlmsg_pid, 42u);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_MULTI);
  EXPECT_EQ(h.nlmsg_len, out[0].size());
  ifinfomsg ifi;
  memcpy(&ifi, out[0].data() + NLMSG_HDRLEN, sizeof(ifi));
  EXPECT_EQ(ifi.ifi_index, 1);
  EXPECT_NE(out[0].find(std::string("lo\0", 3)), std::string::npos);
  EXPECT_EQ(Header(out[1]).nlmsg_type, NLMSG_DONE);
}

TEST(NetlinkRoute, AddrDumpFiltersByFamily) {
  for (auto [family, want] : {std::pair<int, size_t>{AF_UNSPEC, 3}, {AF_INET, 2}, {AF_INET6, 2}}) {
    std::vector<std::string> out;
    ifaddrmsg ifa{};
    ifa.ifa_family = static_cast<uint8_t>(family);
    HandleRouteRequests(LoopbackOnlyView(), Request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1,
                                std::string(reinterpret_cast<char*>(&ifa), sizeof(ifa))),
                        5, &out);
    EXPECT_EQ(out.size(), want) << family;
  }
}

TEST(NetlinkRoute, ChangesAreRefusedAndAcksEcho) {
  std::vector<std::string> out;
  std::string batch = Request(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK, 3, std::string(8, '\0')) +
                      Request(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 4, "");
  HandleRouteRequests(LoopbackOnlyView(), batch, 9, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Header(out[0]).nlmsg_type, NLMSG_ERROR);
  EXPECT_EQ(ErrorOf(out[0]), EOPNOTSUPP);
  EXPECT_EQ(Header(out[1]).nlmsg_seq, 4u);
  EXPECT_EQ(ErrorOf(out[1]), 0);
  EXPECT_FALSE(RouteBatchIsReadOnly(batch));
  EXPECT_TRUE(RouteBatchIsReadOnly(Request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 1, "x")));
}

TEST(NetlinkRoute, ShortGetLinkIsEinval) {
  std::vector<std::string> out;
  HandleRouteRequests(LoopbackOnlyView(), Request(RTM_GETLINK, NLM_F_REQUEST, 1, "ab"), 1, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ErrorOf(out[0]), EINVAL);
}

TEST(NetlinkRoute, LengthPastTheEndStopsSilently) {
  std::string m = Request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 1, "x");
  uint32_t bad = 1000;
  memcpy(m.data(), &bad, sizeof(bad));
  std::vector<std::string> out;
  HandleRouteRequests(LoopbackOnlyView(), m, 1, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(RouteBatchIsReadOnly(m));
}

// Attributes of one reply after its fixed header of `fixed` bytes.
std::map<int, std::string> Attrs(const std::string& m, size_t fixed) {
  std::map<int, std::string> out;
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(fixed);
  while (off + sizeof(rtattr) <= m.size()) {
    rtattr a;
    memcpy(&a, m.data() + off, sizeof(a));
    if (a.rta_len < sizeof(rtattr) || off + a.rta_len > m.size()) break;
    out[a.rta_type] = m.substr(off + sizeof(rtattr), a.rta_len - sizeof(rtattr));
    off += RTA_ALIGN(a.rta_len);
  }
  return out;
}

std::string In(const char* dotted) {
  in_addr a;
  inet_pton(AF_INET, dotted, &a);
  return std::string(reinterpret_cast<const char*>(&a), sizeof(a));
}

class NullLink : public netstack::LinkEndpoint {
 public:
  void WriteFrame(std::string_view) override {}
};

// --network=sandbox: the stack's own lo and a taken-over eth0.
class StackViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int eth0 = stack_.AddNic({"eth0", {2, 0, 0, 0, 0, 7}, 1400}, &link_).value();
    ASSERT_TRUE(stack_.AddAddress(eth0, {netstack::MakeIp4(10, 1, 2, 3), 24,
                                         netstack::MakeIp4(10, 1, 2, 255)})
                    .ok());
    ASSERT_TRUE(stack_.AddRoute({netstack::Ip4{}, 0}, netstack::MakeIp4(10, 1, 2, 1), eth0).ok());
  }
  std::vector<std::string> Dump(uint16_t type, int family, size_t fixed) {
    std::vector<std::string> out;
    std::string payload(fixed, '\0');
    payload[0] = static_cast<char>(family);
    HandleRouteRequests(StackView(stack_), Request(type, NLM_F_REQUEST | NLM_F_DUMP, 3, payload),
                        8, &out);
    EXPECT_FALSE(out.empty());
    if (!out.empty()) {
      EXPECT_EQ(Header(out.back()).nlmsg_type, NLMSG_DONE);
      out.pop_back();
    }
    return out;
  }
  NullLink link_;
  netstack::Stack stack_{{}};
};

TEST_F(StackViewTest, LinksAreLoAndTheNic) {
  std::vector<std::string> out = Dump(RTM_GETLINK, AF_UNSPEC, sizeof(ifinfomsg));
  ASSERT_EQ(out.size(), 2u);
  ifinfomsg ifi;
  memcpy(&ifi, out[1].data() + NLMSG_HDRLEN, sizeof(ifi));
  EXPECT_EQ(ifi.ifi_index, 2);
  EXPECT_EQ(ifi.ifi_type, ARPHRD_ETHER);
  EXPECT_EQ(ifi.ifi_flags & (IFF_UP | IFF_BROADCAST | IFF_LOOPBACK), unsigned(IFF_UP | IFF_BROADCAST));
  auto a = Attrs(out[1], sizeof(ifinfomsg));
  EXPECT_EQ(a[IFLA_IFNAME], std::string("eth0\0", 5));
  EXPECT_EQ(a[IFLA_ADDRESS], std::string("\x02\0\0\0\0\x07", 6));
  uint32_t mtu;
  memcpy(&mtu, a[IFLA_MTU].data(), 4);
  EXPECT_EQ(mtu, 1400u);

  // By name and by index.
  std::vector<std::string> one;
  ifinfomsg q{};
  std::string req(reinterpret_cast<char*>(&q), sizeof(q));
  rtattr ra{static_cast<unsigned short>(RTA_LENGTH(5)), IFLA_IFNAME};
  req += std::string(reinterpret_cast<char*>(&ra), sizeof(ra)) + std::string("eth0\0\0\0\0", 8);
  HandleRouteRequests(StackView(stack_), Request(RTM_GETLINK, NLM_F_REQUEST, 1, req), 8, &one);
  ASSERT_EQ(one.size(), 1u);
  memcpy(&ifi, one[0].data() + NLMSG_HDRLEN, sizeof(ifi));
  EXPECT_EQ(ifi.ifi_index, 2);
  one.clear();
  q.ifi_index = 3;
  HandleRouteRequests(StackView(stack_),
                      Request(RTM_GETLINK, NLM_F_REQUEST, 1, std::string(reinterpret_cast<char*>(&q), sizeof(q))),
                      8, &one);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(ErrorOf(one[0]), ENODEV);
}

TEST_F(StackViewTest, AddressesHaveBroadcastAndScope) {
  std::vector<std::string> out = Dump(RTM_GETADDR, AF_INET, sizeof(ifaddrmsg));
  ASSERT_EQ(out.size(), 2u);  // 127.0.0.1/8 on lo, 10.1.2.3/24 on eth0
  ifaddrmsg ifa;
  memcpy(&ifa, out[1].data() + NLMSG_HDRLEN, sizeof(ifa));
  EXPECT_EQ(ifa.ifa_index, 2u);
  EXPECT_EQ(ifa.ifa_prefixlen, 24);
  EXPECT_EQ(ifa.ifa_scope, RT_SCOPE_UNIVERSE);
  auto a = Attrs(out[1], sizeof(ifaddrmsg));
  EXPECT_EQ(a[IFA_LOCAL], In("10.1.2.3"));
  EXPECT_EQ(a[IFA_BROADCAST], In("10.1.2.255"));
  EXPECT_EQ(a[IFA_LABEL], std::string("eth0\0", 5));
  // IPv6: ::1 on lo (the NIC was given no IPv6 address).
  std::vector<std::string> v6 = Dump(RTM_GETADDR, AF_INET6, sizeof(ifaddrmsg));
  ASSERT_EQ(v6.size(), 1u);
  memcpy(&ifa, v6[0].data() + NLMSG_HDRLEN, sizeof(ifa));
  EXPECT_EQ(ifa.ifa_index, 1u);
  EXPECT_EQ(ifa.ifa_prefixlen, 128);
  EXPECT_EQ(ifa.ifa_scope, RT_SCOPE_HOST);
}

TEST_F(StackViewTest, RoutesAsLinuxSplitsThem) {
  std::vector<std::string> out = Dump(RTM_GETROUTE, AF_INET, sizeof(rtmsg));
  std::vector<std::string> main_routes, local_routes;
  for (const std::string& m : out) {
    rtmsg rt;
    memcpy(&rt, m.data() + NLMSG_HDRLEN, sizeof(rt));
    auto a = Attrs(m, sizeof(rtmsg));
    uint32_t oif;
    memcpy(&oif, a[RTA_OIF].data(), 4);
    std::string d = a.count(RTA_DST) ? a[RTA_DST] : "default";
    std::string line = std::to_string(rt.rtm_dst_len) + " " + std::to_string(oif) + " " +
                       std::to_string(rt.rtm_scope) + (a.count(RTA_GATEWAY) ? " gw" : "") +
                       (a.count(RTA_PREFSRC) ? " src" : "");
    (rt.rtm_table == RT_TABLE_MAIN ? main_routes : local_routes).push_back(d + " " + line);
  }
  // In key order, as fib_table_dump() walks the trie.
  EXPECT_EQ(main_routes, (std::vector<std::string>{
                             "default 0 2 0 gw",
                             In("10.1.2.0") + " 24 2 " + std::to_string(RT_SCOPE_LINK) + " src"}));
  EXPECT_EQ(local_routes.size(), 3u);  // 127.0.0.0/8, 127.0.0.1, 10.1.2.3
  // IPv6: only lo's ::1 (local table), as a namespace whose eth0 has no IPv6.
  std::vector<std::string> v6 = Dump(RTM_GETROUTE, AF_INET6, sizeof(rtmsg));
  ASSERT_EQ(v6.size(), 1u);
  rtmsg rt;
  memcpy(&rt, v6[0].data() + NLMSG_HDRLEN, sizeof(rt));
  EXPECT_EQ(rt.rtm_family, AF_INET6);
  EXPECT_EQ(rt.rtm_table, RT_TABLE_LOCAL);
  EXPECT_EQ(rt.rtm_type, RTN_LOCAL);
  EXPECT_EQ(rt.rtm_dst_len, 128);
}

// What `ip -6 route show table all` printed in a namespace (Linux 6.18)
// whose eth0 has fd00:219::2/64 (and a link-local address) and a default
// route via fd00:219::1, one message per line, in the kernel's order.
TEST_F(StackViewTest, Ipv6RoutesAsLinuxShowsThem) {
  ASSERT_TRUE(AddLinuxIpv6Reference(stack_, 2));
  std::vector<std::string> got;
  for (const std::string& m : Dump(RTM_GETROUTE, AF_INET6, sizeof(rtmsg))) {
    rtmsg rt;
    memcpy(&rt, m.data() + NLMSG_HDRLEN, sizeof(rt));
    auto a = Attrs(m, sizeof(rtmsg));
    uint32_t oif = 0, metric = 0, table = 0;
    memcpy(&oif, a[RTA_OIF].data(), 4);
    memcpy(&metric, a[RTA_PRIORITY].data(), 4);
    memcpy(&table, a[RTA_TABLE].data(), 4);
    char dst[64] = "default", via[64] = "";
    if (a.count(RTA_DST)) inet_ntop(AF_INET6, a[RTA_DST].data(), dst, sizeof dst);
    if (a.count(RTA_GATEWAY)) inet_ntop(AF_INET6, a[RTA_GATEWAY].data(), via, sizeof via);
    std::string line = std::to_string(rt.rtm_type) + " " + dst + "/" +
                       std::to_string(rt.rtm_dst_len) + (*via ? std::string(" via ") + via : "") +
                       " dev " + std::to_string(oif) + " table " + std::to_string(table) +
                       " proto " + std::to_string(rt.rtm_protocol) + " scope " +
                       std::to_string(rt.rtm_scope) + " metric " + std::to_string(metric) +
                       " pref " + std::to_string(a.count(RTA_PREF) ? a[RTA_PREF][0] : -1);
    EXPECT_EQ(table, rt.rtm_table);
    EXPECT_EQ(a[RTA_CACHEINFO].size(), sizeof(rta_cacheinfo));
    got.push_back(line);
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "1 fd00:219::/64 dev 2 table 254 proto 2 scope 0 metric 256 pref 0",
                     "1 fe80::/64 dev 2 table 254 proto 2 scope 0 metric 256 pref 0",
                     "1 default/0 via fd00:219::1 dev 2 table 254 proto 3 scope 0 metric 1024 pref 0",
                     "2 ::1/128 dev 1 table 255 proto 2 scope 0 metric 0 pref 0",
                     "2 fd00:219::2/128 dev 2 table 255 proto 2 scope 0 metric 0 pref 0",
                     "2 fe80::508d:c1ff:feea:ebc4/128 dev 2 table 255 proto 2 scope 0 metric 0 pref 0",
                     "5 ff00::/8 dev 2 table 255 proto 2 scope 0 metric 256 pref 0",
                 }));
  // AF_UNSPEC: the IPv4 routes, then these.
  EXPECT_EQ(Dump(RTM_GETROUTE, AF_UNSPEC, sizeof(rtmsg)).size(),
            Dump(RTM_GETROUTE, AF_INET, sizeof(rtmsg)).size() + got.size());
}

// Hostile input: random batches, including valid headers with random
// payloads, never crash and every reply is a well-formed message.
TEST(NetlinkRoute, RandomInputIsSafe) {
  std::mt19937 rng(1);
  NullLink link;
  netstack::Stack stack({});
  int eth0 = stack.AddNic({"eth0", {2, 0, 0, 0, 0, 7}, 1500}, &link).value();
  ASSERT_TRUE(stack.AddAddress(eth0, {netstack::MakeIp4(10, 1, 2, 3), 24}).ok());
  for (int i = 0; i < 20000; ++i) {
    NetView view = i % 2 ? StackView(stack) : LoopbackOnlyView();
    std::string payload(rng() % 64, '\0');
    for (char& c : payload) c = static_cast<char>(rng());
    std::string batch = Request(static_cast<uint16_t>(rng() % 100), static_cast<uint16_t>(rng()),
                                rng(), payload);
    if (rng() % 2) batch[rng() % batch.size()] = static_cast<char>(rng());
    std::vector<std::string> out;
    HandleRouteRequests(view, batch, 1, &out);
    for (const std::string& r : out) {
      ASSERT_GE(r.size(), sizeof(nlmsghdr));
      EXPECT_EQ(Header(r).nlmsg_len, r.size());
    }
  }
}

}  // namespace
}  // namespace seedvisor::sentry
