// /proc/net/{tcp,udp,dev,route} list the network namespace's sockets,
// interfaces and routes (tcp4_seq_show(), udp4_seq_show(), dev_seq_show(),
// fib_route_seq_show()); /proc/net is a link to self/net. Each socket's
// row carries its addresses, state, queues, owner uid and the inode that
// fstat(2) reports for it: that is how netstat -p, ss and lsof tie rows to
// processes. Natively and with --network=sandbox (the sandbox's stack).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Row {
  std::string local, remote;  // "0100007F:1F90"
  int state = -1;
  unsigned long tx = 0, rx = 0;
  unsigned uid = 0;
  unsigned long ino = 0;
};

std::vector<std::string> Lines(const char* path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

std::vector<Row> Rows(const char* path) {
  std::vector<Row> out;
  std::vector<std::string> lines = Lines(path);
  for (size_t i = 1; i < lines.size(); ++i) {
    Row r;
    char local[64], remote[64], queues[64], timer[64];
    unsigned retr;
    int timeout;
    if (sscanf(lines[i].c_str(), " %*d: %63s %63s %x %63s %63s %x %u %d %lu", local, remote,
               &r.state, queues, timer, &retr, &r.uid, &timeout, &r.ino) != 9) {
      ADD_FAILURE() << path << ": cannot parse: " << lines[i];
      continue;
    }
    sscanf(queues, "%lx:%lx", &r.tx, &r.rx);
    r.local = local;
    r.remote = remote;
    out.push_back(r);
  }
  return out;
}

std::string Hex(const sockaddr_in& a) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%08X:%04X", a.sin_addr.s_addr, ntohs(a.sin_port));
  return buf;
}

sockaddr_in Name(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return a;
}

unsigned long Ino(int fd) {
  struct stat st {};
  fstat(fd, &st);
  return st.st_ino;
}

const Row* FindIno(const std::vector<Row>& rows, unsigned long ino) {
  for (const Row& r : rows) {
    if (r.ino == ino) return &r;
  }
  return nullptr;
}

sockaddr_in Loopback() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

TEST(ProcNetTest, TcpRowsOfListenerAndBothEnds) {
  Fd l(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = Loopback();
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
  ASSERT_EQ(listen(l, 4), 0);
  a = Name(l);
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
  Fd s(accept(l, nullptr, nullptr));
  ASSERT_GE(s, 0);

  // Unread bytes are the receiver's rx_queue.
  ASSERT_EQ(write(c, "hello", 5), 5);
  for (int i = 0; i < 100; ++i) {
    int n = 0;
    ioctl(s, FIONREAD, &n);
    if (n == 5) break;
    usleep(10'000);
  }
  std::vector<Row> rows = Rows("/proc/net/tcp");
  const Row* lr = FindIno(rows, Ino(l));
  ASSERT_NE(lr, nullptr) << "no row for the listener";
  EXPECT_EQ(lr->local, Hex(a));
  EXPECT_EQ(lr->remote, "00000000:0000");
  EXPECT_EQ(lr->state, 0x0A);  // TCP_LISTEN
  EXPECT_EQ(lr->uid, geteuid());
  const Row* cr = FindIno(rows, Ino(c));
  ASSERT_NE(cr, nullptr) << "no row for the client";
  EXPECT_EQ(cr->local, Hex(Name(c)));
  EXPECT_EQ(cr->remote, Hex(a));
  EXPECT_EQ(cr->state, 0x01);  // TCP_ESTABLISHED
  const Row* sr = FindIno(rows, Ino(s));
  ASSERT_NE(sr, nullptr) << "no row for the accepted socket";
  EXPECT_EQ(sr->local, Hex(a));
  EXPECT_EQ(sr->remote, Hex(Name(c)));
  EXPECT_EQ(sr->state, 0x01);
  EXPECT_EQ(sr->rx, 5u);
  EXPECT_EQ(sr->uid, geteuid());

  // A closed listener leaves the table.
  unsigned long lino = Ino(l);
  l = Fd();
  EXPECT_EQ(FindIno(Rows("/proc/net/tcp"), lino), nullptr);
}

TEST(ProcNetTest, UdpRowsBoundAndConnected) {
  Fd u(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = Loopback();
  ASSERT_EQ(bind(u, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const Row* r;
  std::vector<Row> rows = Rows("/proc/net/udp");
  r = FindIno(rows, Ino(u));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->local, Hex(Name(u)));
  EXPECT_EQ(r->remote, "00000000:0000");
  EXPECT_EQ(r->state, 0x07);  // TCP_CLOSE: not connected
  EXPECT_EQ(r->uid, geteuid());

  Fd v(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(v, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  sockaddr_in to = Name(v);
  ASSERT_EQ(connect(u, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  rows = Rows("/proc/net/udp");
  r = FindIno(rows, Ino(u));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->remote, Hex(to));
  EXPECT_EQ(r->state, 0x01);  // TCP_ESTABLISHED: connected

  // An unbound socket is in no table.
  Fd w(socket(AF_INET, SOCK_DGRAM, 0));
  EXPECT_EQ(FindIno(Rows("/proc/net/udp"), Ino(w)), nullptr);
}

TEST(ProcNetTest, DevAndRouteFormats) {
  char link[64] = {};
  ASSERT_GT(readlink("/proc/net", link, sizeof(link) - 1), 0) << strerror(errno);
  EXPECT_STREQ(link, "self/net");

  std::vector<std::string> dev = Lines("/proc/net/dev");
  ASSERT_GE(dev.size(), 3u);
  EXPECT_EQ(dev[0].substr(0, 10), "Inter-|   ");
  bool lo = false;
  for (size_t i = 2; i < dev.size(); ++i) {
    char name[32];
    unsigned long long v[16];
    int n = sscanf(dev[i].c_str(),
                   " %31[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                   "%llu %llu %llu",
                   name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                   &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
    EXPECT_EQ(n, 17) << dev[i];
    if (std::string(name) == "lo") lo = true;
  }
  EXPECT_TRUE(lo);

  std::vector<std::string> route = Lines("/proc/net/route");
  ASSERT_GE(route.size(), 1u);
  for (const std::string& l : route) EXPECT_EQ(l.size(), 127u) << l;
  EXPECT_EQ(route[0].substr(0, route[0].find_last_not_of(' ') + 1),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT");
  // Loopback routes live in the local table: never here.
  for (size_t i = 1; i < route.size(); ++i) EXPECT_NE(route[i].substr(0, 3), "lo\t") << route[i];
}

}  // namespace
}  // namespace syscall_test
