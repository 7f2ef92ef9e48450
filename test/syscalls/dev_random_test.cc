// random_ioctl() (drivers/char/random.c) on /dev/random and /dev/urandom
// (LTP ioctl07): RNDGETENTCNT is the input pool's entropy count, which
// /proc/sys/kernel/random/entropy_avail shows too; the requests that feed
// or reset the pool need CAP_SYS_ADMIN; any other is EINVAL. mem.c's
// devices take no ioctl (ENOTTY).
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int EntropyAvail() {
  FILE* f = fopen("/proc/sys/kernel/random/entropy_avail", "r");
  int v = -1;
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
  }
  return v;
}

TEST(DevRandom, EntropyCountAgreesWithProc) {
  for (const char* dev : {"/dev/urandom", "/dev/random"}) {
    SCOPED_TRACE(dev);
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << ErrnoName(errno);
    int bits = -1;
    ASSERT_EQ(ioctl(fd, RNDGETENTCNT, &bits), 0) << ErrnoName(errno);
    const int proc = EntropyAvail();
    ASSERT_GE(proc, 0);
    EXPECT_LE(abs(bits - proc), 2) << bits << " vs " << proc;  // LTP's fuzz
    EXPECT_ERRNO(EFAULT, ioctl(fd, RNDGETENTCNT, nullptr));
    // Not random's: EINVAL, not ENOTTY.
    EXPECT_ERRNO(EINVAL, ioctl(fd, FIONREAD, &bits));
    close(fd);
  }
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null, 0);
  int bits;
  EXPECT_ERRNO(ENOTTY, ioctl(null, RNDGETENTCNT, &bits));
  close(null);
}

TEST(DevRandom, ResettingThePoolNeedsCapSysAdmin) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  int st = RunInChild([&] {
    if (!DropEffective(CAP_SYS_ADMIN)) return 1;
    if (ioctl(fd, RNDZAPENTCNT) != -1 || errno != EPERM) return 2;
    if (ioctl(fd, RNDCLEARPOOL) != -1 || errno != EPERM) return 3;
    int n = 8;
    if (ioctl(fd, RNDADDTOENTCNT, &n) != -1 || errno != EPERM) return 4;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  close(fd);
}

}  // namespace
}  // namespace syscall_test
