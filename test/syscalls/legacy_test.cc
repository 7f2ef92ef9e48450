// sysfs(2), ustat(2), vhangup(2), mlock2(2) and readahead(2): old or small
// syscalls that LTP's cases call (issue 13).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(SysfsTest, IndexNameAndCountAgree) {
  const long count = syscall(SYS_sysfs, 3);
  ASSERT_GT(count, 0);
  const long tmpfs = syscall(SYS_sysfs, 1, "tmpfs");
  ASSERT_GE(tmpfs, 0);
  ASSERT_LT(tmpfs, count);
  char name[64] = {};
  ASSERT_EQ(syscall(SYS_sysfs, 2, tmpfs, name), 0);
  EXPECT_STREQ(name, "tmpfs");
}

TEST(SysfsTest, BadArgumentsAreEinvalOrEfault) {
  char name[64];
  const long count = syscall(SYS_sysfs, 3);
  EXPECT_ERRNO(EINVAL, syscall(SYS_sysfs, 1, "no-such-fs-type"));
  EXPECT_ERRNO(EINVAL, syscall(SYS_sysfs, 2, count, name));
  EXPECT_ERRNO(EINVAL, syscall(SYS_sysfs, 0));
  EXPECT_ERRNO(EINVAL, syscall(SYS_sysfs, 4));
  EXPECT_ERRNO(EFAULT, syscall(SYS_sysfs, 1, nullptr));
  EXPECT_ERRNO(EFAULT, syscall(SYS_sysfs, 2, 0, nullptr));
}

// struct ustat on x86-64.
struct Ustat {
  int32_t f_tfree;
  uint64_t f_tinode;
  char f_fname[6];
  char f_fpack[6];
};

TEST(UstatTest, FreeCountsOfAMountedFileSystem) {
  struct stat st;
  ASSERT_OK(stat("/proc", &st));
  struct statfs sfs;
  ASSERT_OK(statfs("/proc", &sfs));
  Ustat u;
  memset(&u, 0xff, sizeof(u));
  ASSERT_OK(syscall(SYS_ustat, static_cast<unsigned>(st.st_dev), &u));
  EXPECT_EQ(u.f_tfree, static_cast<int32_t>(sfs.f_bfree));
  EXPECT_EQ(u.f_tinode, sfs.f_ffree);
  EXPECT_EQ(u.f_fname[0], 0);
  EXPECT_EQ(u.f_fpack[0], 0);
}

TEST(UstatTest, UnknownDeviceAndBadBuffer) {
  Ustat u;
  EXPECT_ERRNO(EINVAL, syscall(SYS_ustat, ~0u, &u));
  struct stat st;
  ASSERT_OK(stat("/proc", &st));
  EXPECT_ERRNO(EFAULT, syscall(SYS_ustat, static_cast<unsigned>(st.st_dev), nullptr));
}

TEST(VhangupTest, NeedsCapSysTtyConfig) {
  if (HaveCap(CAP_SYS_TTY_CONFIG)) GTEST_SKIP() << "capable: vhangup would hang up the tty";
  EXPECT_ERRNO(EPERM, syscall(SYS_vhangup));
}

TEST(Mlock2Test, OnfaultOnlyFlag) {
  const long page = sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_ERRNO(EINVAL, syscall(SYS_mlock2, p, page, 0x2));
  ASSERT_OK(syscall(SYS_mlock2, p, page, 0));
  ASSERT_OK(syscall(SYS_mlock2, p, page, 0x1));
  ASSERT_OK(munlock(p, page));
  munmap(p, page);
}

TEST(ReadaheadTest, RegularFileReadableOnly) {
  char path[] = "/tmp/readahead_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  FileDescriptor rw(fd);
  FileDescriptor wo(open(path, O_WRONLY));
  unlink(path);
  ASSERT_GE(wo.get(), 0);
  ASSERT_EQ(write(rw.get(), "abcd", 4), 4);
  ASSERT_OK(syscall(SYS_readahead, rw.get(), 0, 4096));
  EXPECT_ERRNO(EBADF, syscall(SYS_readahead, -1, 0, 4096));
  EXPECT_ERRNO(EBADF, syscall(SYS_readahead, wo.get(), 0, 4096));
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_ERRNO(EINVAL, syscall(SYS_readahead, r.get(), 0, 4096));
}

}  // namespace
}  // namespace syscall_test
