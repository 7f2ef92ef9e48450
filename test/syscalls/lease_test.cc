// File leases: fcntl(F_SETLEASE, F_GETLEASE), who may take which lease, and
// how an open(2) or truncate(2) by someone else breaks one.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFile(path_, "data", 0644)) << ErrnoName(errno);
    sigset_t io;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    ASSERT_OK(sigprocmask(SIG_BLOCK, &io, &old_mask_));
  }
  void TearDown() override {
    // Leave no SIGIO pending behind.
    sigset_t io;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    timespec zero = {0, 0};
    while (sigtimedwait(&io, nullptr, &zero) > 0) {
    }
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  // Whether SIGIO comes (within 30 s: it comes when the breaker's open or
  // truncate runs, which a loaded machine may delay).
  bool GotSigio() {
    sigset_t io;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    timespec limit = {30, 0};
    return sigtimedwait(&io, nullptr, &limit) == SIGIO;
  }
  // Runs `fn` in a child (killed after 60 s: a hang guard); returns its pid.
  pid_t Start(const std::function<int()>& fn) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(60);
      _exit(fn());
    }
    return pid;
  }
  int Wait(pid_t pid) {
    int status = -1;
    waitpid(pid, &status, 0);
    return status;
  }

  TempDir dir_;
  std::string path_ = dir_.Path("f");
  sigset_t old_mask_;
};

TEST_F(LeaseTest, SetGetAndRemove) {
  FileDescriptor fd(open(path_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_UNLCK);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_RDLCK));
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_RDLCK);
  // The only opener may have a write lease, and come down from it.
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_WRLCK));
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_WRLCK);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_RDLCK));
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_RDLCK);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_UNLCK));
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_UNLCK);
  EXPECT_ERRNO(EAGAIN, fcntl(fd.get(), F_SETLEASE, F_UNLCK));
  EXPECT_ERRNO(EINVAL, fcntl(fd.get(), F_SETLEASE, 99));
  // A file open for writing may have a write lease but no read lease.
  FileDescriptor wr(open(path_.c_str(), O_WRONLY));
  fd.reset();
  ASSERT_GE(wr.get(), 0);
  EXPECT_ERRNO(EAGAIN, fcntl(wr.get(), F_SETLEASE, F_RDLCK));
  ASSERT_OK(fcntl(wr.get(), F_SETLEASE, F_WRLCK));
  ASSERT_OK(fcntl(wr.get(), F_SETLEASE, F_UNLCK));
}

TEST_F(LeaseTest, ConflictingOpensAndWrongFiles) {
  FileDescriptor a(open(path_.c_str(), O_RDONLY));
  FileDescriptor b(open(path_.c_str(), O_RDONLY));
  ASSERT_GE(a.get(), 0);
  ASSERT_GE(b.get(), 0);
  // Another open of the file: no write lease; read leases side by side.
  EXPECT_ERRNO(EAGAIN, fcntl(a.get(), F_SETLEASE, F_WRLCK));
  ASSERT_OK(fcntl(a.get(), F_SETLEASE, F_RDLCK));
  ASSERT_OK(fcntl(b.get(), F_SETLEASE, F_RDLCK));
  ASSERT_OK(fcntl(a.get(), F_SETLEASE, F_UNLCK));
  ASSERT_OK(fcntl(b.get(), F_SETLEASE, F_UNLCK));
  // Only regular files.
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_ERRNO(EINVAL, fcntl(d.get(), F_SETLEASE, F_RDLCK));
  // Only the owner (or CAP_LEASE).
  if (geteuid() == 0) {
    ASSERT_OK(chmod(dir_.path().c_str(), 0755));
    const int fd = a.get();
    EXPECT_EQ(RunAsNobody([fd] {
                return fcntl(fd, F_SETLEASE, F_RDLCK) == -1 && errno == EACCES ? 0 : 1;
              }),
              0);
  }
}

// A reader's open breaks a write lease: O_NONBLOCK is EWOULDBLOCK, a
// blocking open waits until the holder comes down to a read lease; a
// writer's open breaks that too, and the holder can then only give it up.
TEST_F(LeaseTest, OpensBreakLeases) {
  FileDescriptor fd(open(path_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_WRLCK));
  const std::string path = path_;
  pid_t nb = Start([&] {
    return open(path.c_str(), O_RDONLY | O_NONBLOCK) == -1 && errno == EWOULDBLOCK ? 0 : 1;
  });
  EXPECT_EXIT_CODE(Wait(nb), 0);
  EXPECT_TRUE(GotSigio());
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_RDLCK);  // what the break asks for

  pid_t reader = Start([&] { return open(path.c_str(), O_RDONLY) >= 0 ? 0 : 1; });
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_RDLCK));
  EXPECT_EXIT_CODE(Wait(reader), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_RDLCK);

  pid_t writer = Start([&] { return open(path.c_str(), O_WRONLY) >= 0 ? 0 : 1; });
  ASSERT_TRUE(GotSigio());
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_UNLCK);
  EXPECT_ERRNO(EAGAIN, fcntl(fd.get(), F_SETLEASE, F_RDLCK));
  EXPECT_EQ(waitpid(writer, nullptr, WNOHANG), 0) << "the writer's open did not wait";
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_UNLCK));
  EXPECT_EXIT_CODE(Wait(writer), 0);
}

TEST_F(LeaseTest, TruncateBreaksALease) {
  FileDescriptor fd(open(path_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_RDLCK));
  const std::string path = path_;
  pid_t child = Start([&] { return truncate(path.c_str(), 0) == 0 ? 0 : 1; });
  ASSERT_TRUE(GotSigio());
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_UNLCK);
  EXPECT_EQ(waitpid(child, nullptr, WNOHANG), 0) << "truncate did not wait";
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_UNLCK));
  EXPECT_EXIT_CODE(Wait(child), 0);
  struct stat st;
  ASSERT_OK(stat(path_.c_str(), &st));
  EXPECT_EQ(st.st_size, 0);
}

// An open with O_TRUNC breaks the lease before it truncates: with
// O_NONBLOCK it is EWOULDBLOCK and the file keeps its bytes.
TEST_F(LeaseTest, TruncatingOpenBreaksFirst) {
  FileDescriptor fd(open(path_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_RDLCK));
  const std::string path = path_;
  pid_t nb = Start([&] {
    return open(path.c_str(), O_WRONLY | O_TRUNC | O_NONBLOCK) == -1 && errno == EWOULDBLOCK ? 0
                                                                                             : 1;
  });
  EXPECT_EXIT_CODE(Wait(nb), 0);
  EXPECT_TRUE(GotSigio());
  struct stat st;
  ASSERT_OK(stat(path_.c_str(), &st));
  EXPECT_EQ(st.st_size, 4);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_UNLCK));
  FileDescriptor wr(open(path_.c_str(), O_WRONLY | O_TRUNC | O_NONBLOCK));
  ASSERT_GE(wr.get(), 0) << ErrnoName(errno);
  ASSERT_OK(stat(path_.c_str(), &st));
  EXPECT_EQ(st.st_size, 0);
}

// open_by_handle_at(2) opens as open(2) does: it breaks leases too
// (do_dentry_open()'s break_lease()).
TEST_F(LeaseTest, OpenByHandleBreaksLeases) {
  if (!HaveCap(CAP_DAC_READ_SEARCH)) GTEST_SKIP() << "needs CAP_DAC_READ_SEARCH";
  struct {
    file_handle h;
    unsigned char bytes[MAX_HANDLE_SZ];
  } fh;
  fh.h.handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  ASSERT_OK(name_to_handle_at(AT_FDCWD, path_.c_str(), &fh.h, &mount_id, 0));
  FileDescriptor mount_fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(mount_fd.get());
  FileDescriptor fd(open(path_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_WRLCK));
  const int mfd = mount_fd.get();
  pid_t nb = Start([&] {
    int f = open_by_handle_at(mfd, &fh.h, O_RDONLY | O_NONBLOCK);
    return f == -1 && errno == EWOULDBLOCK ? 0 : 1;
  });
  EXPECT_EXIT_CODE(Wait(nb), 0);
  EXPECT_TRUE(GotSigio());
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_RDLCK);  // what a reader's break asks for
  // A truncating one breaks before it truncates: nothing is lost.
  pid_t trunc = Start([&] {
    int f = open_by_handle_at(mfd, &fh.h, O_WRONLY | O_TRUNC | O_NONBLOCK);
    return f == -1 && errno == EWOULDBLOCK ? 0 : 1;
  });
  EXPECT_EXIT_CODE(Wait(trunc), 0);
  EXPECT_TRUE(GotSigio());
  struct stat st;
  ASSERT_OK(stat(path_.c_str(), &st));
  EXPECT_EQ(st.st_size, 4);
}

// execve(2) opens the file it runs for reading: a write lease on it is
// broken, and the exec waits until the holder comes down.
TEST_F(LeaseTest, ExecBreaksAWriteLease) {
  const std::string exe = dir_.Path("true");
  ASSERT_TRUE(WriteFile(exe, ReadFile("/bin/true"), 0755)) << ErrnoName(errno);
  FileDescriptor fd(open(exe.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_WRLCK));
  pid_t runner = Start([&] {
    char* argv[] = {const_cast<char*>("true"), nullptr};
    char* envp[] = {nullptr};
    execve(exe.c_str(), argv, envp);
    return 100 + errno;
  });
  ASSERT_TRUE(GotSigio());
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_RDLCK);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_UNLCK));
  EXPECT_EXIT_CODE(Wait(runner), 0);
}

// The break's time limit is a sysctl (45 s unless changed).
TEST_F(LeaseTest, BreakTimeIsASysctl) {
  std::string v = ReadFile("/proc/sys/fs/lease-break-time");
  ASSERT_FALSE(v.empty());
  EXPECT_GE(atoi(v.c_str()), 0) << v;
  EXPECT_EQ(v.back(), '\n');
}

}  // namespace
}  // namespace syscall_test
