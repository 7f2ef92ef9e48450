// open(2) flags on directories and the odd access mode 3, O_APPEND from
// concurrent writers, and RLIMIT_FSIZE on writes.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// The kernel's O_LARGEFILE on x86-64 (glibc defines O_LARGEFILE as 0 there).
constexpr int kLargefile = 0100000;

class OpenTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

// may_open(): O_TRUNC asks to write, and a directory is EISDIR for that,
// whatever the access mode; O_CREAT on an existing directory too.
TEST_F(OpenTest, DirectoryWithTruncOrCreatIsEISDIR) {
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), O_RDONLY | O_TRUNC));
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_TRUNC));
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), O_RDONLY | O_CREAT, 0600));
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), O_WRONLY));
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), O_RDWR));
}

// do_dentry_open(): O_DIRECT needs FMODE_CAN_ODIRECT; no directory has it.
TEST_F(OpenTest, DirectoryWithODirectIsEINVAL) {
  EXPECT_ERRNO(EINVAL, open(dir_.path().c_str(), O_RDONLY | O_DIRECT));
  EXPECT_ERRNO(EINVAL, open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_DIRECT));
}

// Access mode 3 (O_RDONLY|O_WRONLY|O_RDWR bits both set) needs read and
// write permission and gives neither: an fd for ioctls only (open(2)).
TEST_F(OpenTest, AccessModeThree) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "data"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), 3));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL), 3 | kLargefile);
  char c;
  EXPECT_ERRNO(EBADF, read(fd.get(), &c, 1));
  EXPECT_ERRNO(EBADF, write(fd.get(), "x", 1));
  struct stat st;
  EXPECT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 4);
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), 3));
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), 3 | O_DIRECTORY));
}

// Each process opens the file itself (one open file description each) and
// appends fixed-size records: with O_APPEND nothing is overwritten, so the
// file ends up holding every record whole (generic_file_write_iter() finds
// the end and writes under the inode lock).
TEST_F(OpenTest, ConcurrentAppendersLoseNothing) {
  constexpr int kWriters = 8, kRecords = 2000, kLen = 8;
  std::string path = dir_.Path("log");
  ASSERT_TRUE(WriteFile(path, ""));
  std::vector<pid_t> kids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t p = fork();
    ASSERT_GE(p, 0);
    if (p == 0) {
      int fd = open(path.c_str(), O_WRONLY | O_APPEND);
      if (fd < 0) _exit(1);
      std::string rec(kLen - 1, static_cast<char>('a' + w));
      rec += '\n';
      for (int i = 0; i < kRecords; ++i) {
        if (write(fd, rec.data(), rec.size()) != kLen) _exit(2);
      }
      _exit(0);
    }
    kids.push_back(p);
  }
  for (pid_t p : kids) {
    int st = 0;
    ASSERT_EQ(waitpid(p, &st, 0), p);
    EXPECT_EXIT_CODE(st, 0);
  }
  std::string all = ReadFile(path);
  ASSERT_EQ(all.size(), size_t{kWriters * kRecords * kLen});
  int counts[kWriters] = {};
  for (size_t off = 0; off < all.size(); off += kLen) {
    char c = all[off];
    ASSERT_GE(c, 'a');
    ASSERT_LT(c, 'a' + kWriters);
    EXPECT_EQ(all.substr(off, kLen), std::string(kLen - 1, c) + "\n") << "at " << off;
    ++counts[c - 'a'];
  }
  for (int w = 0; w < kWriters; ++w) EXPECT_EQ(counts[w], kRecords);
}

// generic_write_check_limits(): past RLIMIT_FSIZE a write is EFBIG and
// sends SIGXFSZ; a write that crosses the limit is cut short at it.
TEST_F(OpenTest, FileSizeLimit) {
  std::string path = dir_.Path("f");
  int status = RunInChild([&] {
    signal(SIGXFSZ, SIG_IGN);
    rlimit rl{100, 100};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 1;
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 2;
    std::string buf(150, 'x');
    if (write(fd, buf.data(), 150) != 100) return 3;   // cut short
    if (write(fd, buf.data(), 1) != -1 || errno != EFBIG) return 4;
    if (write(fd, buf.data(), 0) != 0) return 5;        // nothing to write
    if (pwrite(fd, buf.data(), 10, 95) != 5) return 6;
    if (pwrite(fd, buf.data(), 10, 100) != -1 || errno != EFBIG) return 7;
    iovec iov[2] = {{buf.data(), 30}, {buf.data(), 30}};
    if (pwritev(fd, iov, 2, 50) != 50) return 8;
    if (lseek(fd, 0, SEEK_SET) != 0) return 9;
    if (write(fd, buf.data(), 150) != 100) return 10;   // overwrites, within the limit
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size != 100) return 11;
    // O_APPEND starts at the end, which is the limit.
    int afd = open(path.c_str(), O_WRONLY | O_APPEND);
    if (write(afd, buf.data(), 1) != -1 || errno != EFBIG) return 12;
    // Not a regular file: no limit.
    int p[2];
    if (pipe(p) != 0 || write(p[1], buf.data(), 150) != 150) return 13;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST_F(OpenTest, FileSizeLimitSendsSigxfsz) {
  std::string path = dir_.Path("f");
  int status = RunInChild([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGXFSZ);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    rlimit rl{10, 10};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 1;
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 2;
    if (write(fd, "0123456789", 10) != 10) return 3;
    sigset_t pending;
    if (sigpending(&pending) != 0 || sigismember(&pending, SIGXFSZ)) return 4;
    if (write(fd, "x", 1) != -1 || errno != EFBIG) return 5;
    if (sigpending(&pending) != 0 || !sigismember(&pending, SIGXFSZ)) return 6;
    // Unblocked with the default action, it kills (and dumps core).
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    return 7;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGXFSZ);
}

// O_NOATIME is for the file's owner or CAP_FOWNER: open(2) and
// fcntl(F_SETFL) by anyone else are EPERM (may_open(), setfl()).
TEST_F(OpenTest, NoatimeOnlyForTheOwner) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  ASSERT_OK(chmod(dir_.path().c_str(), 0777));
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x", 0644));  // root's
  FileDescriptor top(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(top.get(), 0);
  const int dfd = top.get();
  EXPECT_EQ(RunAsNobody([dfd] {
              if (openat(dfd, "f", O_RDONLY | O_NOATIME) != -1 || errno != EPERM) return 1;
              const int fd = openat(dfd, "f", O_RDONLY);
              if (fd < 0) return 2;
              if (fcntl(fd, F_SETFL, O_NOATIME) != -1 || errno != EPERM) return 3;
              if (fcntl(fd, F_GETFL) & O_NOATIME) return 4;
              // Its own file it may.
              const int mine = openat(dfd, "mine", O_RDWR | O_CREAT | O_NOATIME, 0600);
              return mine >= 0 ? 0 : 5;
            }),
            0);
  // The owner (here root, with CAP_FOWNER) may.
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY | O_NOATIME));
  EXPECT_GE(fd.get(), 0) << ErrnoName(errno);
}

}  // namespace
}  // namespace syscall_test
