// The split at a sandbox fork: a host fork() copies the whole stack (it is
// plain memory), and RekeyAfterFork() must make the copies pick different
// ISNs and ephemeral ports. Without the re-key the copies are identical,
// which is what this test would catch.
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack {
namespace {

struct Pick {
  uint16_t port;
  uint32_t isn;
  bool operator==(const Pick&) const = default;
};

// Three connections to the peer: the SYNs' source ports and ISNs.
std::vector<Pick> Sample(testing::OneStack& s) {
  std::vector<Pick> out;
  for (int i = 0; i < 3; ++i) {
    auto c = s.stack->NewTcp();
    (void)c->Connect({testing::kPeerIp, 80});
    auto f = s.link.Pop();
    if (!f) return {};
    TcpHeader h;
    if (!ParseTcp(std::string_view(*f).substr(kEthHeaderLen + 20), &h)) return {};
    out.push_back({h.src_port, h.seq});
    c->Close();
  }
  return out;
}

std::vector<Pick> SampleInChild(testing::OneStack& s, bool rekey) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (rekey) s.stack->RekeyAfterFork();
    std::vector<Pick> v = Sample(s);
    ssize_t n = write(fds[1], v.data(), v.size() * sizeof(Pick));
    _exit(n == ssize_t(v.size() * sizeof(Pick)) ? 0 : 1);
  }
  close(fds[1]);
  std::vector<Pick> v(3);
  size_t got = 0;
  while (got < sizeof(Pick) * 3) {
    ssize_t n = read(fds[0], reinterpret_cast<char*>(v.data()) + got, sizeof(Pick) * 3 - got);
    if (n <= 0) break;
    got += size_t(n);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != sizeof(Pick) * 3 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return {};
  return v;
}

TEST(Fork, RekeyedForksPickDifferentIsnsAndPorts) {
  testing::OneStack s;  // a seed: stack built, peer's MAC learned
  // Control: a fork without the re-key repeats the seed's choices exactly.
  std::vector<Pick> copy = SampleInChild(s, false);
  ASSERT_EQ(copy.size(), 3u);
  std::vector<Pick> a = SampleInChild(s, true), b = SampleInChild(s, true);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  std::vector<Pick> seed = Sample(s);
  ASSERT_EQ(seed.size(), 3u);
  EXPECT_EQ(copy, seed);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(a[i].isn, b[i].isn) << i;
    EXPECT_NE(a[i].isn, seed[i].isn) << i;
  }
  // Port sequences: equal in at most one place by chance (1 in 28232).
  EXPECT_FALSE(a[0].port == b[0].port && a[1].port == b[1].port);
  EXPECT_FALSE(a[0].port == seed[0].port && a[1].port == seed[1].port);
}

}  // namespace
}  // namespace seedvisor::netstack
