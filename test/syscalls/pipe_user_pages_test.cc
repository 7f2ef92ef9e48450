// Pipe buffers counted per user (pipe(7), /proc/sys/fs/pipe-user-pages-soft):
// past the soft limit a user without CAP_SYS_RESOURCE and CAP_SYS_ADMIN
// gets pipes of two pages and cannot grow them; root is not limited (LTP's
// pipe15 reads the limit and makes that many pipes).
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int kDefaultSize = 16 * 4096;
constexpr int kMinSize = 2 * 4096;  // PIPE_MIN_DEF_BUFFERS pages

long SoftLimitPages() {
  std::string text = ReadFile("/proc/sys/fs/pipe-user-pages-soft");
  return text.empty() ? -1 : std::stol(text);
}

TEST(PipeUserPagesTest, LimitsAreReadable) {
  EXPECT_GE(SoftLimitPages(), 0);
  std::string hard = ReadFile("/proc/sys/fs/pipe-user-pages-hard");
  ASSERT_FALSE(hard.empty());
  EXPECT_GE(std::stol(hard), 0);
}

// A user past the soft limit: new pipes have two pages, which F_SETPIPE_SZ
// cannot grow; once the user's pipes are closed, full-size pipes again.
TEST(PipeUserPagesTest, PastTheSoftLimitPipesAreSmall) {
  const long soft = SoftLimitPages();
  if (soft <= 0) GTEST_SKIP() << "no soft limit on pipe pages here";
  // Enough pipes of 16 pages to pass it, with some slack for other pipes
  // of the same user elsewhere on the host (natively).
  const long pipes = soft / 16 + 8;
  struct rlimit nofile;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &nofile));
  if (nofile.rlim_max < static_cast<rlim_t>(2 * pipes + 16)) {
    GTEST_SKIP() << "RLIMIT_NOFILE's hard limit is below " << 2 * pipes + 16;
  }
  int status = RunAsNobody([&] {
    struct rlimit want = {static_cast<rlim_t>(2 * pipes + 16), nofile.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) return 1;
    std::vector<int> fds;
    int small_at = -1;
    for (long i = 0; i < pipes && small_at < 0; ++i) {
      int p[2];
      if (pipe(p) != 0) return 2;
      fds.push_back(p[0]);
      fds.push_back(p[1]);
      const int size = fcntl(p[1], F_GETPIPE_SZ);
      if (size == kMinSize) {
        small_at = static_cast<int>(i);
      } else if (size != kDefaultSize) {
        return 3;
      }
    }
    if (small_at < 0) return 4;  // never limited
    const int small = fds.back();
    // Growing it is refused.
    if (fcntl(small, F_SETPIPE_SZ, kDefaultSize) != -1 || errno != EPERM) return 5;
    // Two pages: a full write, a partial read, then one more byte fits.
    std::string buf(kMinSize, 'p');
    const int rd = fds[fds.size() - 2];
    if (fcntl(small, F_SETFL, O_NONBLOCK) != 0) return 6;
    if (write(small, buf.data(), kMinSize) != kMinSize) return 7;
    if (read(rd, buf.data(), kMinSize - 1) != kMinSize - 1) return 8;
    if (write(small, "x", 1) != 1) return 9;
    if (read(rd, buf.data(), 2) != 2) return 10;
    // Shrinking is always allowed, growing back to what it had is not.
    if (fcntl(small, F_SETPIPE_SZ, 4096) != 4096) return 11;
    if (fcntl(small, F_SETPIPE_SZ, kMinSize) != -1 || errno != EPERM) return 15;
    for (int fd : fds) close(fd);
    // Below the limit again: a full-size pipe that may grow.
    int p[2];
    if (pipe(p) != 0) return 12;
    if (fcntl(p[1], F_GETPIPE_SZ) != kDefaultSize) return 13;
    if (fcntl(p[1], F_SETPIPE_SZ, 2 * kDefaultSize) != 2 * kDefaultSize) return 14;
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// Pipes that are closed give their pages back at once: a user who has made
// and closed three soft limits' worth of pipes, one at a time, still gets
// full-size pipes that may grow.
TEST(PipeUserPagesTest, ClosedPipesDoNotCount) {
  const long soft = SoftLimitPages();
  if (soft <= 0 || soft > 64 * 1024) GTEST_SKIP() << "soft limit " << soft;
  const long rounds = 3 * (soft / 16 + 1);
  int status = RunAsNobody([&] {
    for (long i = 0; i < rounds; ++i) {
      int p[2];
      if (pipe(p) != 0) return 1;
      if (fcntl(p[1], F_GETPIPE_SZ) != kDefaultSize) return 2;
      if (i % 64 == 0 && fcntl(p[1], F_SETPIPE_SZ, 2 * kDefaultSize) != 2 * kDefaultSize) {
        return 3;
      }
      close(p[0]);
      close(p[1]);
    }
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// Root (CAP_SYS_RESOURCE, CAP_SYS_ADMIN) is never limited.
TEST(PipeUserPagesTest, RootIsNotLimited) {
  if (getuid() != 0) GTEST_SKIP() << "needs root";
  const long soft = SoftLimitPages();
  if (soft <= 0 || soft > 64 * 1024) GTEST_SKIP() << "soft limit " << soft;
  const long pipes = soft / 16 + 2;
  struct rlimit nofile;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &nofile));
  if (nofile.rlim_max < static_cast<rlim_t>(2 * pipes + 16)) GTEST_SKIP() << "RLIMIT_NOFILE";
  int status = RunInChild([&] {
    struct rlimit want = {static_cast<rlim_t>(2 * pipes + 16), nofile.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) return 1;
    for (long i = 0; i < pipes; ++i) {
      int p[2];
      if (pipe(p) != 0) return 2;
      if (fcntl(p[1], F_GETPIPE_SZ) != kDefaultSize) return 3;
    }
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
