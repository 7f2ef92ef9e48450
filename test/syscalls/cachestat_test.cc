// cachestat(2) (Linux 6.5): pages of a file just written are in the cache
// (or were, and are counted evicted), over a range or to the end; other
// kinds of file have no pages; the checks in Linux's order, and (Linux
// 6.14) EPERM for a file the caller may neither write nor owns.
#include <errno.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

struct Range {
  uint64_t off, len;
};
struct Stat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

long Cachestat(int fd, const Range* r, Stat* s, unsigned flags = 0) {
  return syscall(SYS_cachestat, fd, r, s, flags);
}

const size_t kPage = static_cast<size_t>(getpagesize());

// A file of `pages` pages written in full: a memfd (tmpfs) or one in the
// test's directory.
FileDescriptor Written(int pages, const std::string& path = "") {
  int fd = path.empty() ? memfd_create("cachestat", 0) : open(path.c_str(), O_RDWR | O_CREAT, 0600);
  std::string page(kPage, 'a');
  for (int i = 0; fd >= 0 && i < pages; ++i) {
    if (write(fd, page.data(), page.size()) != static_cast<ssize_t>(page.size())) return {};
  }
  return FileDescriptor(fd);
}

// nr_cache + nr_evicted: every page is one or the other.
int64_t Pages(int fd, Range r) {
  Stat s;
  memset(&s, 0xff, sizeof(s));
  if (Cachestat(fd, &r, &s) != 0) return -errno;
  return static_cast<int64_t>(s.nr_cache + s.nr_evicted);
}

TEST(CachestatTest, WrittenPagesCount) {
  TempDir dir;
  for (const std::string& path : {std::string(), dir.Path("f")}) {
    FileDescriptor fd = Written(8, path);
    ASSERT_GE(fd.get(), 0) << path;
    EXPECT_EQ(Pages(fd.get(), {0, 0}), 8) << path;  // len 0: to the end
    EXPECT_EQ(Pages(fd.get(), {0, 8 * kPage}), 8) << path;
    EXPECT_EQ(Pages(fd.get(), {kPage, 2 * kPage}), 2) << path;
    EXPECT_EQ(Pages(fd.get(), {kPage + 1, 1}), 1) << path;  // a byte of page 1
    EXPECT_EQ(Pages(fd.get(), {7 * kPage, 100 * kPage}), 1) << path;
    EXPECT_EQ(Pages(fd.get(), {8 * kPage, 0}), 0) << path;  // past the end
  }
}

TEST(CachestatTest, OtherFilesHaveNoPages) {
  TempDir dir;
  FileDescriptor d(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(d.get(), 0);
  EXPECT_EQ(Pages(d.get(), {0, 0}), 0);
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_EQ(Pages(r.get(), {0, 0}), 0);
  FileDescriptor z(open("/dev/zero", O_RDONLY));
  ASSERT_GE(z.get(), 0);
  EXPECT_EQ(Pages(z.get(), {0, 0}), 0);
}

TEST(CachestatTest, Checks) {
  FileDescriptor fd = Written(1);
  ASSERT_GE(fd.get(), 0);
  Range r{0, 0};
  Stat s;
  EXPECT_ERRNO(EBADF, Cachestat(-1, &r, &s));
  EXPECT_ERRNO(EBADF, Cachestat(99999, nullptr, nullptr, 1));  // the fd first
  TempDir dir;
  FileDescriptor path_fd(open(dir.path().c_str(), O_PATH));
  ASSERT_GE(path_fd.get(), 0);
  EXPECT_ERRNO(EBADF, Cachestat(path_fd.get(), &r, &s));
  EXPECT_ERRNO(EFAULT, Cachestat(fd.get(), nullptr, &s, 1));  // the range before the flags
  EXPECT_ERRNO(EINVAL, Cachestat(fd.get(), &r, nullptr, 1));  // the flags before the result
  EXPECT_ERRNO(EFAULT, Cachestat(fd.get(), &r, nullptr));
}

// can_do_cachestat() (Linux 6.14): a file opened read-only that the caller
// neither owns nor may write is EPERM (the fd is opened before the switch:
// the check is of the caller, not of the path); one it owns is fine.
TEST(CachestatTest, ForeignReadOnlyFileIsEperm) {
  if (!HaveCap(CAP_SETUID)) GTEST_SKIP() << "needs to become nobody";
  TempDir dir;
  const std::string path = dir.Path("root-owned");
  ASSERT_TRUE(WriteFile(path, std::string(kPage, 'a'), 0644));
  FileDescriptor fd(open(path.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  const int foreign = fd.get();
  EXPECT_EQ(RunAsNobody([foreign] {
              Range r{0, 0};
              Stat s;
              if (Cachestat(foreign, &r, &s) != -1 || errno != EPERM) return 2;
              FileDescriptor own = Written(1);
              if (own.get() < 0 || Cachestat(own.get(), &r, &s) != 0) return 3;
              return 0;
            }),
            0);
}

}  // namespace
}  // namespace syscall_test
