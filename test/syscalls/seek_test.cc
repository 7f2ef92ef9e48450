// lseek(2) SEEK_END, SEEK_DATA and SEEK_HOLE on /proc: seq_files refuse all
// three (seq_lseek()); files that are no seq_file and the directories seek
// as generic_file_llseek() does with i_size 0. Positioned I/O on a file
// with no position (a pipe, a socket, a terminal, an anonymous file) is
// ESPIPE even through an end or a description not open for it.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
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

// Every file without a position (FMODE_PREAD/FMODE_PWRITE: terminals,
// FIFOs and anonymous files too, not only pipes and sockets) is ESPIPE
// for I/O at an offset, whatever its access mode; files opened by a path
// have one.
TEST(SeekTest, EveryFileWithoutPositionIsESPIPE) {
  char buf[8] = "abcdefg";
  auto expect_espipe = [&](int fd, const char* what) {
    SCOPED_TRACE(what);
    ASSERT_GE(fd, 0) << ErrnoName(errno);
    EXPECT_ERRNO(ESPIPE, pread(fd, buf, 1, 0));
    EXPECT_ERRNO(ESPIPE, pwrite(fd, buf, 1, 0));
    iovec v = {buf, 1};
    EXPECT_ERRNO(ESPIPE, preadv(fd, &v, 1, 0));
    EXPECT_ERRNO(ESPIPE, pwritev(fd, &v, 1, 0));
  };
  FileDescriptor ev(eventfd(0, EFD_NONBLOCK));
  expect_espipe(ev.get(), "eventfd");
  FileDescriptor in(inotify_init1(IN_NONBLOCK));  // open O_RDONLY
  expect_espipe(in.get(), "inotify");
  FileDescriptor ep(epoll_create1(0));
  expect_espipe(ep.get(), "epoll");
  FileDescriptor tf(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
  expect_espipe(tf.get(), "timerfd");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  FileDescriptor sf(signalfd(-1, &mask, SFD_NONBLOCK));
  expect_espipe(sf.get(), "signalfd");
  // (Not a pidfd: since Linux 6.9 a pidfs file has a position, and pread
  // of one is EINVAL; older kernels said ESPIPE.)

  FileDescriptor master(posix_openpt(O_RDWR | O_NOCTTY));
  ASSERT_GE(master.get(), 0);
  ASSERT_EQ(grantpt(master.get()), 0);
  ASSERT_EQ(unlockpt(master.get()), 0);
  expect_espipe(master.get(), "pty master");
  FileDescriptor replica(open(ptsname(master.get()), O_RDONLY | O_NOCTTY));
  expect_espipe(replica.get(), "pty replica open for reading");

  TempDir dir;
  const std::string fifo = dir.Path("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  FileDescriptor fr(open(fifo.c_str(), O_RDONLY | O_NONBLOCK));
  expect_espipe(fr.get(), "FIFO open for reading");

  // Files opened by a path have a position: the access mode decides.
  FileDescriptor null(open("/dev/null", O_RDWR));
  ASSERT_GE(null.get(), 0);
  EXPECT_EQ(pread(null.get(), buf, 1, 5), 0);
  EXPECT_EQ(pwrite(null.get(), buf, 1, 5), 1);
  ASSERT_TRUE(WriteFile(dir.Path("f"), "0123456789"));
  FileDescriptor wo(open(dir.Path("f").c_str(), O_WRONLY));
  EXPECT_ERRNO(EBADF, pread(wo.get(), buf, 1, 0));

  // sendfile(2) with an offset: ESPIPE for an input without a position, even
  // a pipe (whose splice is EINVAL without one); a file's offset moves.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  FileDescriptor pr(p[0]), pw(p[1]);
  FileDescriptor rd(open(dir.Path("f").c_str(), O_RDONLY));
  off_t off = 0;
  EXPECT_ERRNO(ESPIPE, sendfile(pw.get(), pr.get(), &off, 1));
  EXPECT_ERRNO(ESPIPE, sendfile(pw.get(), ev.get(), &off, 1));
  EXPECT_ERRNO(EINVAL, sendfile(pw.get(), pr.get(), nullptr, 1));
  off = 3;
  EXPECT_EQ(sendfile(pw.get(), rd.get(), &off, 2), 2);
  EXPECT_EQ(off, 5);
  EXPECT_EQ(read(pr.get(), buf, sizeof(buf)), 2);
  EXPECT_EQ(std::string(buf, 2), "34");
}

}  // namespace
}  // namespace syscall_test
