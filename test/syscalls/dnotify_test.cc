// dnotify: fcntl(F_NOTIFY) on directories. The signal (SIGIO, or F_SETSIG's
// with si_fd) is sent while the syscall that caused the event runs, so it
// is pending when that syscall returns: every check below looks with a
// zero timeout.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class DnotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sig_ = SIGRTMIN + 1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig_);
    sigaddset(&s, SIGIO);
    ASSERT_OK(sigprocmask(SIG_BLOCK, &s, &old_mask_));
    Drain();
  }
  void TearDown() override {
    Drain();
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  // The si_fd of every pending `sig_` (queued: one per signal sent).
  std::vector<int> Pending() {
    std::vector<int> fds;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig_);
    timespec zero = {0, 0};
    siginfo_t si;
    while (sigtimedwait(&s, &si, &zero) == sig_) {
      EXPECT_EQ(si.si_code, POLL_MSG);
      fds.push_back(si.si_fd);
    }
    return fds;
  }
  bool SigioPending() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGIO);
    timespec zero = {0, 0};
    return sigtimedwait(&s, nullptr, &zero) == SIGIO;
  }
  void Drain() {
    Pending();
    while (SigioPending()) {
    }
  }
  int Watch(const std::string& dir, unsigned long mask) {
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    EXPECT_GE(fd, 0) << ErrnoName(errno);
    EXPECT_OK(fcntl(fd, F_SETSIG, sig_));
    EXPECT_OK(fcntl(fd, F_NOTIFY, mask));
    return fd;
  }

  int sig_ = 0;
  sigset_t old_mask_;
  TempDir dir_;
};

// An attribute change of a subdirectory signals a watch on it and one on
// its parent (LTP fcntl38).
TEST_F(DnotifyTest, AttribReachesTheDirectoryAndItsParent) {
  const std::string sub = dir_.Path("sub");
  ASSERT_OK(mkdir(sub.c_str(), 0700));
  FileDescriptor parent(Watch(dir_.path(), DN_ATTRIB | DN_MULTISHOT));
  FileDescriptor child(Watch(sub, DN_ATTRIB | DN_MULTISHOT));
  ASSERT_OK(chmod(sub.c_str(), 0755));
  std::vector<int> got = Pending();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0], got[1]);
  for (int fd : got) EXPECT_TRUE(fd == parent.get() || fd == child.get()) << fd;
  // Multishot: again.
  ASSERT_OK(chmod(sub.c_str(), 0700));
  EXPECT_EQ(Pending().size(), 2u);
}

// DN_RENAME is a rename within the directory; a move into or out of it is
// none, and the moved directory hears nothing (LTP fcntl39).
TEST_F(DnotifyTest, RenameIsWithinTheDirectoryOnly) {
  const std::string sub = dir_.Path("sub");
  ASSERT_OK(mkdir(sub.c_str(), 0700));
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  FileDescriptor parent(Watch(dir_.path(), DN_RENAME | DN_MULTISHOT));
  FileDescriptor child(Watch(sub, DN_RENAME | DN_MULTISHOT));
  ASSERT_OK(rename(dir_.Path("f").c_str(), (sub + "/f").c_str()));
  EXPECT_TRUE(Pending().empty());
  ASSERT_OK(rename(sub.c_str(), dir_.Path("sub2").c_str()));
  EXPECT_EQ(Pending(), std::vector<int>{parent.get()});
  ASSERT_OK(rename((dir_.Path("sub2") + "/f").c_str(), dir_.Path("f").c_str()));
  EXPECT_TRUE(Pending().empty());
  ASSERT_OK(rename(dir_.Path("f").c_str(), dir_.Path("g").c_str()));
  EXPECT_EQ(Pending(), std::vector<int>{parent.get()});
}

// Which events each DN_ bit asks for, on the directory's entries.
TEST_F(DnotifyTest, EachMaskBitItsEvents) {
  const std::string f = dir_.Path("f");
  FileDescriptor create(Watch(dir_.path(), DN_CREATE | DN_MULTISHOT));
  FileDescriptor modify(Watch(dir_.path(), DN_MODIFY | DN_MULTISHOT));
  FileDescriptor access(Watch(dir_.path(), DN_ACCESS | DN_MULTISHOT));
  FileDescriptor del(Watch(dir_.path(), DN_DELETE | DN_MULTISHOT));
  FileDescriptor fd(open(f.c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(Pending(), std::vector<int>{create.get()});
  ASSERT_EQ(write(fd.get(), "abc", 3), 3);
  EXPECT_EQ(Pending(), std::vector<int>{modify.get()});
  char buf[3];
  ASSERT_EQ(pread(fd.get(), buf, 3, 0), 3);
  EXPECT_EQ(Pending(), std::vector<int>{access.get()});
  ASSERT_OK(unlink(f.c_str()));
  EXPECT_EQ(Pending(), std::vector<int>{del.get()});
}

// Without DN_MULTISHOT a watch signals once; a mask of nothing removes
// it, and so does a close; F_NOTIFY is for directories only.
TEST_F(DnotifyTest, OneShotRemovalAndNonDirectories) {
  const std::string sub = dir_.Path("sub");
  ASSERT_OK(mkdir(sub.c_str(), 0700));
  FileDescriptor once(Watch(dir_.path(), DN_ATTRIB));
  ASSERT_OK(chmod(sub.c_str(), 0750));
  EXPECT_EQ(Pending(), std::vector<int>{once.get()});
  ASSERT_OK(chmod(sub.c_str(), 0700));
  EXPECT_TRUE(Pending().empty());

  FileDescriptor multi(Watch(dir_.path(), DN_ATTRIB | DN_MULTISHOT));
  ASSERT_OK(fcntl(multi.get(), F_NOTIFY, 0));
  ASSERT_OK(chmod(sub.c_str(), 0750));
  EXPECT_TRUE(Pending().empty());
  ASSERT_OK(fcntl(multi.get(), F_NOTIFY, DN_ATTRIB | DN_MULTISHOT));
  multi.reset();
  ASSERT_OK(chmod(sub.c_str(), 0700));
  EXPECT_TRUE(Pending().empty());

  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  FileDescriptor file(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(file.get(), 0);
  EXPECT_ERRNO(ENOTDIR, fcntl(file.get(), F_NOTIFY, DN_ATTRIB));
  EXPECT_OK(fcntl(file.get(), F_NOTIFY, 0));
}

// Without F_SETSIG the signal is SIGIO.
TEST_F(DnotifyTest, PlainSigioWithoutSetsig) {
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(d.get(), 0);
  ASSERT_OK(fcntl(d.get(), F_NOTIFY, DN_CREATE));
  ASSERT_OK(mkdir(dir_.Path("new").c_str(), 0700));
  EXPECT_TRUE(SigioPending());
  EXPECT_TRUE(Pending().empty());
}

}  // namespace
}  // namespace syscall_test
