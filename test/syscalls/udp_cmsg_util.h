// The fixture and helpers of the udp_cmsg tests (udp_cmsg_test.cc: what
// recvmsg returns; udp_cmsg_send_test.cc: the sticky options and a
// sendmsg's control messages): a UDP receiver and sender bound to loopback
// of the test's family, control messages built and parsed byte by byte.
#ifndef SEEDVISOR_TEST_SYSCALLS_UDP_CMSG_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_UDP_CMSG_UTIL_H_

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {


struct Cmsg {
  int level, type;
  std::string data;
};

struct Received {
  std::string data;
  int flags = 0;
  std::vector<Cmsg> cmsgs;
  sockaddr_storage from{};
};

// One control message's bytes for sendmsg.
inline std::string CmsgBytes(int level, int type, const void* data, size_t len) {
  std::string s(CMSG_SPACE(len), '\0');
  cmsghdr h{};
  h.cmsg_len = CMSG_LEN(len);
  h.cmsg_level = level;
  h.cmsg_type = type;
  memcpy(s.data(), &h, sizeof h);
  memcpy(s.data() + CMSG_LEN(0), data, len);
  return s;
}
inline std::string IntCmsg(int level, int type, int v) {
  return CmsgBytes(level, type, &v, sizeof v);
}

inline int IntOf(const Cmsg& c) {
  int v = -1;
  EXPECT_EQ(c.data.size(), sizeof v);
  memcpy(&v, c.data.data(), std::min(c.data.size(), sizeof v));
  return v;
}

class UdpCmsgTest : public InetTest {
 protected:
  void SetUp() override {
    InetTest::SetUp();
    rx_ = Bound(SOCK_DGRAM, &rx_addr_);
    tx_ = Fd(socket(family(), SOCK_DGRAM, 0));
    ASSERT_GE(tx_, 0);
    sockaddr_storage a = Loopback();
    ASSERT_EQ(bind(tx_, Sa(a), Len()), 0) << strerror(errno);
    SetRcvTimeoutMs(rx_, 5000);
  }

  int Lvl() const { return v6() ? SOL_IPV6 : SOL_IP; }

  void SetInt(int fd, int level, int name, int v) {
    EXPECT_EQ(setsockopt(fd, level, name, &v, sizeof v), 0)
        << level << "/" << name << ": " << strerror(errno);
  }
  int GetInt(int fd, int level, int name) {
    int v = -12345;
    socklen_t l = sizeof v;
    EXPECT_EQ(getsockopt(fd, level, name, &v, &l), 0) << strerror(errno);
    EXPECT_EQ(l, sizeof v);
    return v;
  }

  // sendmsg of `msg` to the receiver with `control`; its result.
  ssize_t SendWith(const std::string& msg, const std::string& control, int fd = -1) {
    iovec iov{const_cast<char*>(msg.data()), msg.size()};
    msghdr h{};
    h.msg_name = &rx_addr_;
    h.msg_namelen = Len();
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    std::string c = control;
    h.msg_control = c.empty() ? nullptr : c.data();
    h.msg_controllen = c.size();
    return sendmsg(fd < 0 ? int(tx_) : fd, &h, 0);
  }

  // recvmsg with `room` bytes of control buffer.
  Received Recv(size_t room = 1024, int fd = -1) {
    Received r;
    char buf[256];
    iovec iov{buf, sizeof buf};
    std::vector<char> control(room + 64, '\x7f');
    msghdr h{};
    h.msg_name = &r.from;
    h.msg_namelen = sizeof r.from;
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = room ? control.data() : nullptr;
    h.msg_controllen = room;
    ssize_t n = recvmsg(fd < 0 ? int(rx_) : fd, &h, 0);
    EXPECT_GE(n, 0) << strerror(errno);
    if (n < 0) return r;
    EXPECT_LE(h.msg_controllen, room);
    r.data.assign(buf, size_t(n));
    r.flags = h.msg_flags;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
      size_t len = std::min<size_t>(c->cmsg_len, h.msg_controllen) - CMSG_LEN(0);
      r.cmsgs.push_back({c->cmsg_level, c->cmsg_type,
                         std::string(reinterpret_cast<char*>(CMSG_DATA(c)), len)});
    }
    return r;
  }

  // What a datagram sent with `control` carried: its TTL (hop limit) and
  // TOS (traffic class) as the receiver's control messages say.
  std::pair<int, int> TtlTosOf(const std::string& control) {
    SetInt(rx_, Lvl(), v6() ? IPV6_RECVHOPLIMIT : IP_RECVTTL, 1);
    SetInt(rx_, Lvl(), v6() ? IPV6_RECVTCLASS : IP_RECVTOS, 1);
    EXPECT_EQ(SendWith("m", control), 1) << strerror(errno);
    Received r = Recv();
    EXPECT_EQ(r.cmsgs.size(), 2u);
    if (r.cmsgs.size() != 2) return {-1, -1};
    int tos = v6() ? IntOf(r.cmsgs[1]) : static_cast<unsigned char>(r.cmsgs[1].data[0]);
    return {IntOf(r.cmsgs[0]), tos};
  }

  Fd rx_, tx_;
  sockaddr_storage rx_addr_{};
};

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_UDP_CMSG_UTIL_H_
