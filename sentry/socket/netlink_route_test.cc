#include "sentry/socket/netlink_route.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include <random>

#include "gtest/gtest.h"

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
  HandleRouteRequests(Request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 7, std::string(1, AF_UNSPEC)),
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
    HandleRouteRequests(Request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1,
                                std::string(reinterpret_cast<char*>(&ifa), sizeof(ifa))),
                        5, &out);
    EXPECT_EQ(out.size(), want) << family;
  }
}

TEST(NetlinkRoute, ChangesAreRefusedAndAcksEcho) {
  std::vector<std::string> out;
  std::string batch = Request(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK, 3, std::string(8, '\0')) +
                      Request(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 4, "");
  HandleRouteRequests(batch, 9, &out);
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
  HandleRouteRequests(Request(RTM_GETLINK, NLM_F_REQUEST, 1, "ab"), 1, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ErrorOf(out[0]), EINVAL);
}

TEST(NetlinkRoute, LengthPastTheEndStopsSilently) {
  std::string m = Request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 1, "x");
  uint32_t bad = 1000;
  memcpy(m.data(), &bad, sizeof(bad));
  std::vector<std::string> out;
  HandleRouteRequests(m, 1, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(RouteBatchIsReadOnly(m));
}

// Hostile input: random batches, including valid headers with random
// payloads, never crash and every reply is a well-formed message.
TEST(NetlinkRoute, RandomInputIsSafe) {
  std::mt19937 rng(1);
  for (int i = 0; i < 20000; ++i) {
    std::string payload(rng() % 64, '\0');
    for (char& c : payload) c = static_cast<char>(rng());
    std::string batch = Request(static_cast<uint16_t>(rng() % 100), static_cast<uint16_t>(rng()),
                                rng(), payload);
    if (rng() % 2) batch[rng() % batch.size()] = static_cast<char>(rng());
    std::vector<std::string> out;
    HandleRouteRequests(batch, 1, &out);
    for (const std::string& r : out) {
      ASSERT_GE(r.size(), sizeof(nlmsghdr));
      EXPECT_EQ(Header(r).nlmsg_len, r.size());
    }
  }
}

}  // namespace
}  // namespace seedvisor::sentry
