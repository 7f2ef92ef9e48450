// splice(2) between pipes and files, tee(2) and vmsplice(2) on pipes,
// copy_file_range(2) between files, preadv2(2)/pwritev2(2).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
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

TEST(SpliceTest, NonblockFlagOnPipes) {
  int a[2], b[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  // An empty input pipe with a writer: EAGAIN instead of blocking.
  EXPECT_ERRNO(EAGAIN, splice(a[0], nullptr, b[1], nullptr, 10, SPLICE_F_NONBLOCK));
  ASSERT_EQ(write(a[1], "abc", 3), 3);
  EXPECT_EQ(splice(a[0], nullptr, b[1], nullptr, 10, SPLICE_F_NONBLOCK), 3);
  char buf[4] = {};
  EXPECT_EQ(read(b[0], buf, sizeof(buf)), 3);
  EXPECT_STREQ(buf, "abc");
  EXPECT_ERRNO(EINVAL, splice(a[0], nullptr, b[1], nullptr, 10, 0x100));
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

// A file without ->splice_read or ->splice_write (an anonymous-inode file,
// a directory, an unconnected unix socket) at the other end of a pipe is
// EINVAL at once (do_splice_read()/do_splice_from()), never a read or write
// that blocks on it (LTP's splice07 hung here). Each call runs in a child
// that a hang would keep past its alarm.
TEST(SpliceTest, EndsWithoutSpliceSupportAreEinvalWithoutBlocking) {
  int status = RunInChild([] {
    alarm(10);
    int p[2];
    if (pipe(p) != 0) return 10;
    int efd = eventfd(0, 0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    int ep = epoll_create1(0);
    const char* tmp = getenv("TEST_TMPDIR");
    int dir = open(tmp ? tmp : "/tmp", O_RDONLY | O_DIRECTORY);
    int us = socket(AF_UNIX, SOCK_STREAM, 0);
    if (efd < 0 || tfd < 0 || ep < 0 || dir < 0 || us < 0) return 11;
    // {fd, errno as splice's input, errno as its output (0: not tried)}:
    // a directory open for reading is not writable (EBADF first); an
    // unconnected socket does take splice writes (and fails as send does).
    const int cases[][3] = {
        {efd, EINVAL, EINVAL}, {tfd, EINVAL, EINVAL}, {ep, EINVAL, EINVAL},
        {dir, EINVAL, EBADF},  {us, EINVAL, 0},
    };
    int code = 20;
    for (const auto& c : cases) {
      // fd -> pipe: eventfd and timerfd reads would block.
      errno = 0;
      if (splice(c[0], nullptr, p[1], nullptr, 1, 0) != -1 || errno != c[1]) return code;
      if (c[2] != 0) {
        // pipe (with data, so a read does not block) -> fd.
        if (write(p[1], "x", 1) != 1) return 12;
        errno = 0;
        if (splice(p[0], nullptr, c[0], nullptr, 1, 0) != -1 || errno != c[2]) return code + 1;
        char b;
        if (read(p[0], &b, 1) != 1) return 13;  // the byte stayed in the pipe
      }
      code += 2;
    }
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// sendfile(2) with offsets, at and past EOF, length 0, a bad offset, a
// pipe as input (EINVAL, without blocking on the empty pipe), a read-only
// output, and a full non-blocking pipe (EAGAIN).
TEST(SendfileTest, EdgeCases) {
  std::string path = TmpPath("sendfile");
  int f = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(f, 0);
  unlink(path.c_str());
  ASSERT_EQ(write(f, "0123456789", 10), 10);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  off_t off = 3;
  EXPECT_EQ(sendfile(p[1], f, &off, 4), 4);
  EXPECT_EQ(off, 7);
  EXPECT_EQ(lseek(f, 0, SEEK_CUR), 10);  // the file offset is untouched
  char buf[64];
  ASSERT_EQ(read(p[0], buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "3456");
  off = 20;
  EXPECT_EQ(sendfile(p[1], f, &off, 4), 0);
  EXPECT_EQ(off, 20);
  ASSERT_EQ(lseek(f, 8, SEEK_SET), 8);
  EXPECT_EQ(sendfile(p[1], f, nullptr, 10), 2);  // to EOF, moving the offset
  EXPECT_EQ(lseek(f, 0, SEEK_CUR), 10);
  ASSERT_EQ(read(p[0], buf, sizeof(buf)), 2);
  EXPECT_EQ(sendfile(p[1], f, nullptr, 0), 0);
  off = -1;
  EXPECT_ERRNO(EINVAL, sendfile(p[1], f, &off, 1));
  EXPECT_ERRNO(EINVAL, sendfile(f, p[0], nullptr, 1));
  int ro = open("/proc/self/cmdline", O_RDONLY);
  ASSERT_GE(ro, 0);
  EXPECT_ERRNO(EBADF, sendfile(ro, f, nullptr, 1));
  close(ro);
  int q[2];
  ASSERT_EQ(pipe2(q, O_NONBLOCK), 0);
  std::string big(1 << 20, 'x');
  while (write(q[1], big.data(), big.size()) > 0) {
  }
  off = 0;
  EXPECT_ERRNO(EAGAIN, sendfile(q[1], f, &off, 4));
  EXPECT_EQ(off, 0);
  for (int fd : {f, p[0], p[1], q[0], q[1]}) close(fd);
}

TEST(TeeTest, DuplicatesWithoutConsuming) {
  int a[2], b[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  ASSERT_EQ(write(a[1], "hello", 5), 5);
  EXPECT_EQ(tee(a[0], b[1], 3, 0), 3);
  char buf[8] = {};
  EXPECT_EQ(read(b[0], buf, sizeof(buf)), 3);
  EXPECT_EQ(std::string(buf, 3), "hel");
  // The input still holds everything.
  EXPECT_EQ(tee(a[0], b[1], 100, 0), 5);
  EXPECT_EQ(read(a[0], buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(read(b[0], buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");

  // Empty: EAGAIN with SPLICE_F_NONBLOCK; 0 once no writer is left.
  EXPECT_ERRNO(EAGAIN, tee(a[0], b[1], 10, SPLICE_F_NONBLOCK));
  EXPECT_EQ(tee(a[0], b[1], 0, 0), 0);
  EXPECT_ERRNO(EINVAL, tee(a[0], a[1], 10, SPLICE_F_NONBLOCK));  // the same pipe
  EXPECT_ERRNO(EINVAL, tee(a[0], b[1], 10, 0x100));
  EXPECT_ERRNO(EBADF, tee(a[1], b[1], 10, 0));  // a write end as input
  EXPECT_ERRNO(EBADF, tee(-1, b[1], 10, 0));
  close(a[1]);
  EXPECT_EQ(tee(a[0], b[1], 10, 0), 0);

  // Not pipes.
  std::string path = TmpPath("tee-file");
  int f = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(f, 0);
  EXPECT_ERRNO(EINVAL, tee(a[0], f, 10, 0));
  EXPECT_ERRNO(EINVAL, tee(f, b[1], 10, 0));
  close(f);
  unlink(path.c_str());

  // No reader on the output: EPIPE (and SIGPIPE, ignored here).
  int c[2];
  ASSERT_EQ(pipe(c), 0);
  ASSERT_EQ(write(c[1], "x", 1), 1);
  close(b[0]);
  sighandler_t old = signal(SIGPIPE, SIG_IGN);
  EXPECT_ERRNO(EPIPE, tee(c[0], b[1], 1, 0));
  signal(SIGPIPE, old);
  for (int fd : {a[0], b[1], c[0], c[1]}) close(fd);
}

TEST(TeeTest, BlocksUntilDataArrives) {
  int a[2], b[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(100 * 1000);
    _exit(write(a[1], "late", 4) == 4 ? 0 : 1);
  }
  ASSERT_GT(pid, 0);
  EXPECT_EQ(tee(a[0], b[1], 10, 0), 4);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

TEST(VmspliceTest, IntoAndOutOfAPipe) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  char x[] = "abc", y[] = "defg";
  iovec in[2] = {{x, 3}, {y, 4}};
  EXPECT_EQ(vmsplice(p[1], in, 2, 0), 7);
  char o1[2], o2[10] = {};
  iovec out[2] = {{o1, 2}, {o2, sizeof(o2)}};
  EXPECT_EQ(vmsplice(p[0], out, 2, 0), 7);
  EXPECT_EQ(std::string(o1, 2), "ab");
  EXPECT_EQ(std::string(o2, 5), "cdefg");
  // Empty: EAGAIN with SPLICE_F_NONBLOCK.
  EXPECT_ERRNO(EAGAIN, vmsplice(p[0], out, 2, SPLICE_F_NONBLOCK));
  EXPECT_ERRNO(EINVAL, vmsplice(p[1], in, 2, 0x100));
  EXPECT_EQ(vmsplice(p[1], in, 0, 0), 0);

  // Full: EAGAIN with SPLICE_F_NONBLOCK, a partial count before that.
  ASSERT_OK(fcntl(p[1], F_SETFL, O_NONBLOCK));
  std::string big(1 << 16, 'z');
  while (write(p[1], big.data(), big.size()) > 0) {
  }
  ASSERT_OK(fcntl(p[1], F_SETFL, 0));
  EXPECT_ERRNO(EAGAIN, vmsplice(p[1], in, 2, SPLICE_F_NONBLOCK));

  // Not a pipe.
  std::string path = TmpPath("vmsplice-file");
  int f = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(f, 0);
  EXPECT_ERRNO(EBADF, vmsplice(f, in, 2, 0));
  EXPECT_ERRNO(EBADF, vmsplice(-1, in, 2, 0));
  close(f);
  unlink(path.c_str());
  close(p[0]);
  close(p[1]);
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
