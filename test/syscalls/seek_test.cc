// lseek(2) SEEK_END, SEEK_DATA and SEEK_HOLE on /proc: seq_files refuse all
// three (seq_lseek()); files that are no seq_file and the directories seek
// as generic_file_llseek() does with i_size 0. Positioned I/O on a file
// with no position (a pipe, a socket) is ESPIPE even through an end not
// open for it.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

void ExpectSeqFile(const std::string& path) {
  SCOPED_TRACE(path);
  FileDescriptor fd(open(path.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(lseek(fd.get(), 1, SEEK_SET), 1);
  EXPECT_EQ(lseek(fd.get(), 1, SEEK_CUR), 2);
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 0, SEEK_END));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 1, SEEK_END));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 0, SEEK_DATA));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 0, SEEK_HOLE));
}

void ExpectSizeZero(const std::string& path) {
  SCOPED_TRACE(path);
  FileDescriptor fd(open(path.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_END), 0);
  EXPECT_EQ(lseek(fd.get(), 3, SEEK_END), 3);
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), -1, SEEK_END));
  EXPECT_ERRNO(ENXIO, lseek(fd.get(), 0, SEEK_DATA));
  EXPECT_ERRNO(ENXIO, lseek(fd.get(), 1, SEEK_HOLE));
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
}

TEST(SeekTest, ProcSeqFiles) {
  for (const char* p : {"/proc/self/status", "/proc/self/stat", "/proc/self/maps",
                        "/proc/self/mountinfo", "/proc/meminfo", "/proc/cpuinfo",
                        "/proc/version", "/proc/uptime", "/proc/self/comm"}) {
    ExpectSeqFile(p);
  }
}

TEST(SeekTest, ProcFilesThatAreNoSeqFile) {
  for (const char* p : {"/proc/self/cmdline", "/proc/self/environ",
                        "/proc/sys/kernel/hostname", "/proc/sys/vm/overcommit_memory"}) {
    ExpectSizeZero(p);
  }
}

TEST(SeekTest, ProcDirectories) {
  for (const char* p : {"/proc", "/proc/self", "/proc/self/fd", "/proc/self/task", "/proc/sys",
                        "/proc/sys/kernel"}) {
    ExpectSizeZero(p);
  }
}

// A dirent offset stays usable after SEEK_END moved elsewhere and back.
TEST(SeekTest, ProcDirectoryStillReadsAfterSeekEnd) {
  FileDescriptor fd(open("/proc/self", O_RDONLY | O_DIRECTORY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_END), 0);
  char buf[4096];
  EXPECT_GT(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), 0);
}

// ksys_pread64() and do_preadv() answer ESPIPE for a file without
// FMODE_PREAD/FMODE_PWRITE before vfs_read()/vfs_write() check the access
// mode: pwrite on a pipe's read end is ESPIPE, not EBADF (LTP pwritev202).
// A negative offset is EINVAL before the fd is even looked up.
TEST(SeekTest, PositionedIoWithoutPositionIsESPIPE) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  FileDescriptor r(p[0]), w(p[1]);
  char buf[4] = "abc";
  iovec v = {buf, 3};
  EXPECT_ERRNO(ESPIPE, pwrite(r.get(), buf, 3, 0));
  EXPECT_ERRNO(ESPIPE, pwritev(r.get(), &v, 1, 0));
  EXPECT_ERRNO(ESPIPE, pwritev2(r.get(), &v, 1, 0, 0));
  EXPECT_ERRNO(ESPIPE, pread(w.get(), buf, 3, 0));
  EXPECT_ERRNO(ESPIPE, preadv(w.get(), &v, 1, 0));
  EXPECT_ERRNO(ESPIPE, preadv2(w.get(), &v, 1, 0, 0));
  // Offset -1 of the *v2 calls is the file offset: the access mode rules.
  EXPECT_ERRNO(EBADF, pwritev2(r.get(), &v, 1, -1, 0));
  EXPECT_ERRNO(EBADF, preadv2(w.get(), &v, 1, -1, 0));
  EXPECT_ERRNO(EINVAL, syscall(SYS_pread64, w.get(), buf, 3, -1L));
  EXPECT_ERRNO(EINVAL, syscall(SYS_pwrite64, r.get(), buf, 3, -1L));
  EXPECT_ERRNO(EINVAL, syscall(SYS_pread64, 9999, buf, 3, -1L));

  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  FileDescriptor s0(s[0]), s1(s[1]);
  ASSERT_EQ(shutdown(s0.get(), SHUT_RDWR), 0);
  EXPECT_ERRNO(ESPIPE, pread(s0.get(), buf, 3, 0));
  EXPECT_ERRNO(ESPIPE, pwrite(s0.get(), buf, 3, 0));
}

}  // namespace
}  // namespace syscall_test
