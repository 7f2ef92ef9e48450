// splice(2) between pipes and files, copy_file_range(2) between files,
// preadv2(2)/pwritev2(2).
#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

std::string TmpPath(const char* name) {
  const char* d = getenv("TEST_TMPDIR");
  return std::string(d ? d : "/tmp") + "/" + name + "-" + std::to_string(getpid());
}

TEST(SpliceTest, FileToPipeAndBack) {
  std::string src = TmpPath("splice-src"), dst = TmpPath("splice-dst");
  int in = open(src.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  int out = open(dst.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  ASSERT_EQ(write(in, "0123456789", 10), 10);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  loff_t off = 2;
  ASSERT_EQ(splice(in, &off, p[1], nullptr, 5, 0), 5);
  EXPECT_EQ(off, 7);
  EXPECT_EQ(lseek(in, 0, SEEK_CUR), 10);  // an explicit offset leaves the file's
  ASSERT_EQ(splice(p[0], nullptr, out, nullptr, 100, 0), 5);  // what the pipe had
  char buf[8] = {};
  ASSERT_EQ(pread(out, buf, sizeof(buf), 0), 5);
  EXPECT_EQ(std::string(buf, 5), "23456");
  EXPECT_ERRNO(EINVAL, splice(in, nullptr, out, nullptr, 5, 0));  // no pipe
  EXPECT_ERRNO(ESPIPE, splice(p[0], &off, out, nullptr, 5, 0));   // pipe + offset
  close(p[0]);
  close(p[1]);
  close(in);
  close(out);
  unlink(src.c_str());
  unlink(dst.c_str());
}

TEST(CopyFileRangeTest, CopiesAndMovesOffsets) {
  std::string src = TmpPath("cfr-src"), dst = TmpPath("cfr-dst");
  int in = open(src.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  int out = open(dst.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_EQ(write(in, "abcdefgh", 8), 8);
  ASSERT_EQ(lseek(in, 0, SEEK_SET), 0);
  ASSERT_EQ(copy_file_range(in, nullptr, out, nullptr, 100, 0), 8);
  EXPECT_EQ(lseek(in, 0, SEEK_CUR), 8);
  EXPECT_EQ(lseek(out, 0, SEEK_CUR), 8);
  loff_t ioff = 4, ooff = 0;
  ASSERT_EQ(copy_file_range(in, &ioff, out, &ooff, 2, 0), 2);
  EXPECT_EQ(ioff, 6);
  char buf[8];
  ASSERT_EQ(pread(out, buf, 8, 0), 8);
  EXPECT_EQ(std::string(buf, 8), "efcdefgh");
  EXPECT_ERRNO(EINVAL, copy_file_range(in, nullptr, out, nullptr, 1, 1));
  loff_t a = 0, b = 1;
  EXPECT_ERRNO(EINVAL, copy_file_range(in, &a, in, &b, 4, 0));  // overlap
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_ERRNO(EINVAL, copy_file_range(p[0], nullptr, out, nullptr, 1, 0));
  int ro = open(src.c_str(), O_RDONLY);
  EXPECT_ERRNO(EBADF, copy_file_range(in, nullptr, ro, nullptr, 1, 0));
  close(ro);
  close(p[0]);
  close(p[1]);
  close(in);
  close(out);
  unlink(src.c_str());
  unlink(dst.c_str());
}

TEST(Rw2Test, OffsetsAndFlags) {
  std::string path = TmpPath("rw2");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  char a[] = "hello", b[] = "world";
  iovec w[2] = {{a, 5}, {b, 5}};
  ASSERT_EQ(pwritev2(fd, w, 2, -1, 0), 10);  // -1: at the file offset
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 10);
  ASSERT_EQ(pwritev2(fd, w, 1, 20, RWF_DSYNC), 5);
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 10);  // an explicit offset leaves it
  char r1[5], r2[5];
  iovec r[2] = {{r1, 5}, {r2, 5}};
  ASSERT_EQ(preadv2(fd, r, 2, 0, RWF_HIPRI), 10);
  EXPECT_EQ(std::string(r1, 5) + std::string(r2, 5), "helloworld");
  ASSERT_EQ(lseek(fd, 20, SEEK_SET), 20);
  ASSERT_EQ(preadv2(fd, r, 1, -1, 0), 5);
  EXPECT_EQ(std::string(r1, 5), "hello");
  EXPECT_ERRNO(EOPNOTSUPP, preadv2(fd, r, 1, 0, 0x1000));  // unknown flag
  close(fd);
  unlink(path.c_str());
}

}  // namespace
}  // namespace syscall_test
