// The split at a sandbox fork: a host fork() copies the whole stack (it is
// plain memory), and RekeyAfterFork() must make the copies pick different
// ISNs and ephemeral ports. Without the re-key the copies are identical,
// which is what this test would catch. The same holds for when a
// connection retries: forks that connect together must not resend their
// SYNs together.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
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

// When (ms after connect) a connection to a peer that never answers resends
// its SYN, the first `n` times, in a fork of `s` (re-keyed or not).
std::vector<int64_t> SynRetriesInChild(testing::OneStack& s, bool rekey, int n) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (rekey) s.stack->RekeyAfterFork();
    auto c = s.stack->NewTcp();
    (void)c->Connect({testing::kPeerIp, 80});
    s.link.frames.clear();  // the first SYN
    std::vector<int64_t> at;
    for (int64_t ms = 1; int(at.size()) < n && ms < 60'000; ++ms) {
      s.Advance(1'000'000);
      if (!s.Quiet()) at.push_back(ms);
      s.link.frames.clear();
    }
    ssize_t w = write(fds[1], at.data(), at.size() * sizeof(int64_t));
    _exit(w == ssize_t(n * sizeof(int64_t)) ? 0 : 1);
  }
  close(fds[1]);
  std::vector<int64_t> v(size_t(n), 0);
  size_t got = 0, want = size_t(n) * sizeof(int64_t);
  while (got < want) {
    ssize_t r = read(fds[0], reinterpret_cast<char*>(v.data()) + got, want - got);
    if (r <= 0) break;
    got += size_t(r);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != want || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return {};
  return v;
}

// Issue 11 (review): two forks of one seed that connect at the same moment
// to a peer that drops their SYNs resent them at the same 1, 3, 7, 15 s.
// Re-keyed, each retry lands somewhere in [Linux's time, + RTO / 8): never
// all in step; without the re-key, the forks' schedules are the same.
TEST(Fork, RekeyedForksDoNotRetryInLockstep) {
  testing::OneStack s;
  constexpr int kRetries = 4;
  std::vector<int64_t> same1 = SynRetriesInChild(s, false, kRetries);
  std::vector<int64_t> same2 = SynRetriesInChild(s, false, kRetries);
  ASSERT_EQ(same1.size(), size_t(kRetries));
  EXPECT_EQ(same1, same2) << "a fork without its re-key retries as its seed would";
  std::vector<int64_t> a = SynRetriesInChild(s, true, kRetries);
  std::vector<int64_t> b = SynRetriesInChild(s, true, kRetries);
  ASSERT_EQ(a.size(), size_t(kRetries));
  ASSERT_EQ(b.size(), size_t(kRetries));
  int in_step = 0;
  int64_t linux_at = 0, rto = 1000;
  for (int i = 0; i < kRetries; ++i, rto *= 2) {
    linux_at += rto;
    SCOPED_TRACE(i);
    // Each timer runs from the previous retry; the jitters add up.
    const int64_t a_from = i == 0 ? 0 : a[size_t(i) - 1], b_from = i == 0 ? 0 : b[size_t(i) - 1];
    EXPECT_GE(a[size_t(i)] - a_from, rto);
    EXPECT_LE(a[size_t(i)] - a_from, rto + rto / 8 + 1);
    EXPECT_GE(b[size_t(i)] - b_from, rto);
    EXPECT_LE(b[size_t(i)] - b_from, rto + rto / 8 + 1);
    EXPECT_GE(a[size_t(i)], linux_at);
    // Within 1 ms of each other by chance: about 2 % for the first retry,
    // less for later ones (their jitters add up); three of four: p < 1e-5.
    in_step += std::abs(a[size_t(i)] - b[size_t(i)]) <= 1 ? 1 : 0;
  }
  EXPECT_LE(in_step, 2) << "two re-keyed forks resent their SYNs together " << in_step << " times";
}

}  // namespace
}  // namespace seedvisor::netstack
