// fcntl(2) beyond dup and FD_CLOEXEC: the status flags F_GETFL reports and
// F_SETFL accepts (setfl() in fs/fcntl.c), file owners and SIGIO
// (F_SETOWN, F_SETOWN_EX, F_SETSIG; kill_fasync() from pipe_read() and
// pipe_write()), and what an O_PATH descriptor refuses.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// The kernel's kLargefile on x86-64 (glibc defines kLargefile as 0 there).
constexpr int kLargefile = 0100000;

class FcntlTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

// ---------------------------------------------------------------- F_GETFL / F_SETFL

// do_dentry_open() drops O_CREAT, O_EXCL, O_NOCTTY and O_TRUNC; O_CLOEXEC
// belongs to the fd; open(2) adds O_LARGEFILE on 64-bit (force_o_largefile()).
TEST_F(FcntlTest, GetFlOfAnOpenedFileIsExactlyLinuxs) {
  FileDescriptor fd(open(dir_.Path("f").c_str(),
                         O_RDWR | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC, 0600));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL), O_RDWR | kLargefile);
  FileDescriptor ro(open(dir_.Path("f").c_str(), O_RDONLY | O_APPEND | O_NONBLOCK));
  ASSERT_GE(ro.get(), 0);
  EXPECT_EQ(fcntl(ro.get(), F_GETFL), O_RDONLY | kLargefile | O_APPEND | O_NONBLOCK);
}

// Files that open(2) did not make have no O_LARGEFILE (create_pipe_files(),
// sock_alloc_file(), eventfd_file_create()).
TEST_F(FcntlTest, GetFlOfPipesSocketsAndEventfds) {
  int p[2];
  ASSERT_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_EQ(fcntl(r.get(), F_GETFL), O_RDONLY | O_NONBLOCK);
  EXPECT_EQ(fcntl(w.get(), F_GETFL), O_WRONLY | O_NONBLOCK);
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_GE(s.get(), 0);
  EXPECT_EQ(fcntl(s.get(), F_GETFL), O_RDWR);
  FileDescriptor e(eventfd(0, EFD_NONBLOCK));
  ASSERT_GE(e.get(), 0);
  EXPECT_EQ(fcntl(e.get(), F_GETFL), O_RDWR | O_NONBLOCK);
}

// Only O_APPEND, O_NONBLOCK, O_NOATIME and O_DIRECT change; the access mode
// and the creation flags are ignored, not an error.
TEST_F(FcntlTest, SetFlIgnoresAccessModeAndCreationFlags) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fcntl(fd.get(), F_SETFL,
                  O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_APPEND | O_NONBLOCK));
  EXPECT_EQ(fcntl(fd.get(), F_GETFL), O_RDONLY | kLargefile | O_APPEND | O_NONBLOCK);
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_NOATIME));
  EXPECT_EQ(fcntl(fd.get(), F_GETFL), O_RDONLY | kLargefile | O_NOATIME);
  ASSERT_OK(fcntl(fd.get(), F_SETFL, 0));
  EXPECT_EQ(fcntl(fd.get(), F_GETFL), O_RDONLY | kLargefile);
}

// O_ASYNC sticks only where the file has a ->fasync (pipes, sockets): setfl()
// leaves FASYNC to it, so a regular file or an eventfd never shows it.
TEST_F(FcntlTest, SetFlAsyncOnlyOnFilesThatSignal) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_ASYNC));
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_ASYNC, 0);
  FileDescriptor e(eventfd(0, 0));
  ASSERT_OK(fcntl(e.get(), F_SETFL, O_ASYNC));
  EXPECT_EQ(fcntl(e.get(), F_GETFL) & O_ASYNC, 0);
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  ASSERT_OK(fcntl(r.get(), F_SETFL, O_ASYNC));
  EXPECT_EQ(fcntl(r.get(), F_GETFL), O_RDONLY | O_ASYNC);
  ASSERT_OK(fcntl(r.get(), F_SETFL, 0));
  EXPECT_EQ(fcntl(r.get(), F_GETFL), O_RDONLY);
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_OK(fcntl(s.get(), F_SETFL, O_ASYNC | O_NONBLOCK));
  EXPECT_EQ(fcntl(s.get(), F_GETFL), O_RDWR | O_ASYNC | O_NONBLOCK);
  // Terminals keep it too (tty_fasync), master and replica.
  FileDescriptor m(posix_openpt(O_RDWR | O_NOCTTY));
  ASSERT_GE(m.get(), 0);
  ASSERT_OK(grantpt(m.get()));
  ASSERT_OK(unlockpt(m.get()));
  FileDescriptor rep(open(ptsname(m.get()), O_RDWR | O_NOCTTY));
  ASSERT_GE(rep.get(), 0);
  for (int f : {m.get(), rep.get()}) {
    ASSERT_OK(fcntl(f, F_SETFL, O_ASYNC));
    EXPECT_NE(fcntl(f, F_GETFL) & O_ASYNC, 0);
    ASSERT_OK(fcntl(f, F_SETFL, 0));
    EXPECT_EQ(fcntl(f, F_GETFL) & O_ASYNC, 0);
  }
}

// ---------------------------------------------------------------- owners

TEST_F(FcntlTest, OwnerDefaultsToNone) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_EQ(fcntl(r.get(), F_GETOWN), 0);
  f_owner_ex ex{F_OWNER_PGRP, 77};
  ASSERT_OK(fcntl(r.get(), F_GETOWN_EX, &ex));
  EXPECT_EQ(ex.type, F_OWNER_TID);  // PIDTYPE_PID, the zero value
  EXPECT_EQ(ex.pid, 0);
  EXPECT_EQ(fcntl(r.get(), F_GETSIG), 0);
}

TEST_F(FcntlTest, SetOwnProcessAndGroup) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  ASSERT_OK(fcntl(r.get(), F_SETOWN, getpid()));
  EXPECT_EQ(fcntl(r.get(), F_GETOWN), getpid());
  f_owner_ex ex{};
  ASSERT_OK(fcntl(r.get(), F_GETOWN_EX, &ex));
  EXPECT_EQ(ex.type, F_OWNER_PID);
  EXPECT_EQ(ex.pid, getpid());
  // A negative owner is a process group.
  ASSERT_OK(fcntl(r.get(), F_SETOWN, -getpgrp()));
  EXPECT_EQ(fcntl(r.get(), F_GETOWN), -getpgrp());
  ASSERT_OK(fcntl(r.get(), F_GETOWN_EX, &ex));
  EXPECT_EQ(ex.type, F_OWNER_PGRP);
  EXPECT_EQ(ex.pid, getpgrp());
  // The owner is the open file description's: a dup sees it.
  FileDescriptor d(dup(r.get()));
  EXPECT_EQ(fcntl(d.get(), F_GETOWN), -getpgrp());
  ASSERT_OK(fcntl(r.get(), F_SETOWN, 0));
  EXPECT_EQ(fcntl(r.get(), F_GETOWN), 0);
}

TEST_F(FcntlTest, SetOwnExThread) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  f_owner_ex ex{F_OWNER_TID, tid};
  ASSERT_OK(fcntl(r.get(), F_SETOWN_EX, &ex));
  EXPECT_EQ(fcntl(r.get(), F_GETOWN), tid);
  f_owner_ex got{};
  ASSERT_OK(fcntl(r.get(), F_GETOWN_EX, &got));
  EXPECT_EQ(got.type, F_OWNER_TID);
  EXPECT_EQ(got.pid, tid);
  ex = f_owner_ex{F_OWNER_PGRP, getpgrp()};
  ASSERT_OK(fcntl(r.get(), F_SETOWN_EX, &ex));
  EXPECT_EQ(fcntl(r.get(), F_GETOWN), -getpgrp());
}

// f_setown(), f_setown_ex(): a pid nobody has is ESRCH; a bad type EINVAL.
TEST_F(FcntlTest, SetOwnRejectsUnknownPidsAndTypes) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  constexpr pid_t kNobody = 4000000;  // above pid_max's ceiling
  EXPECT_ERRNO(ESRCH, fcntl(r.get(), F_SETOWN, kNobody));
  EXPECT_ERRNO(ESRCH, fcntl(r.get(), F_SETOWN, -kNobody));
  f_owner_ex ex{F_OWNER_TID, kNobody};
  EXPECT_ERRNO(ESRCH, fcntl(r.get(), F_SETOWN_EX, &ex));
  ex = f_owner_ex{F_OWNER_PID, -1};
  EXPECT_ERRNO(ESRCH, fcntl(r.get(), F_SETOWN_EX, &ex));
  ex = f_owner_ex{static_cast<__pid_type>(7), getpid()};
  EXPECT_ERRNO(EINVAL, fcntl(r.get(), F_SETOWN_EX, &ex));
  EXPECT_ERRNO(EFAULT, fcntl(r.get(), F_SETOWN_EX, reinterpret_cast<void*>(8)));
  EXPECT_ERRNO(EFAULT, fcntl(r.get(), F_GETOWN_EX, reinterpret_cast<void*>(8)));
  EXPECT_EQ(fcntl(r.get(), F_GETOWN), 0);  // unchanged by the failures
}

TEST_F(FcntlTest, SetSigTakesValidSignalsOnly) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  ASSERT_OK(fcntl(r.get(), F_SETSIG, SIGRTMIN + 2));
  EXPECT_EQ(fcntl(r.get(), F_GETSIG), SIGRTMIN + 2);
  ASSERT_OK(fcntl(r.get(), F_SETSIG, 64));
  EXPECT_EQ(fcntl(r.get(), F_GETSIG), 64);
  EXPECT_ERRNO(EINVAL, fcntl(r.get(), F_SETSIG, 65));
  EXPECT_ERRNO(EINVAL, fcntl(r.get(), F_SETSIG, -1));
  ASSERT_OK(fcntl(r.get(), F_SETSIG, 0));
  EXPECT_EQ(fcntl(r.get(), F_GETSIG), 0);
}

// ---------------------------------------------------------------- SIGIO

// Blocks `sigs` for the test's duration; the signals are taken with
// sigtimedwait.
class BlockedSignals {
 public:
  explicit BlockedSignals(std::initializer_list<int> sigs) {
    sigemptyset(&set_);
    for (int s : sigs) sigaddset(&set_, s);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~BlockedSignals() {
    // Drain what is left before unblocking (SIGIO would kill us).
    timespec zero{};
    while (sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  // The next signal of the set within `ms`, or -1.
  int Take(siginfo_t* info, int ms = 2000) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    return sigtimedwait(&set_, info, &ts);
  }

 private:
  sigset_t set_, old_;
};

void MakeAsync(int fd, int sig) {
  ASSERT_OK(fcntl(fd, F_SETOWN, getpid()));
  if (sig != 0) ASSERT_OK(fcntl(fd, F_SETSIG, sig));
  ASSERT_OK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC));
}

// Without F_SETSIG: plain SIGIO, sent as by the kernel (SEND_SIG_PRIV).
TEST_F(FcntlTest, PipeWriteSendsSigioToTheReadersOwner) {
  BlockedSignals sigs({SIGIO});
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  MakeAsync(r.get(), 0);
  siginfo_t info{};
  EXPECT_EQ(sigs.Take(&info, 100), -1);  // nothing yet
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  ASSERT_EQ(sigs.Take(&info), SIGIO);
  EXPECT_EQ(info.si_code, SI_KERNEL);
  // Each write is a new event.
  ASSERT_EQ(write(w.get(), "y", 1), 1);
  EXPECT_EQ(sigs.Take(&info), SIGIO);
}

// With F_SETSIG: that signal, with si_fd, si_band and si_code POLL_IN/OUT.
TEST_F(FcntlTest, SetSigGivesFdAndBand) {
  const int sig = SIGRTMIN + 1;
  BlockedSignals sigs({SIGIO, sig});
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  MakeAsync(r.get(), sig);
  MakeAsync(w.get(), sig);
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  siginfo_t info{};
  ASSERT_EQ(sigs.Take(&info), sig);
  EXPECT_EQ(info.si_code, POLL_IN);
  EXPECT_EQ(info.si_fd, r.get());
  EXPECT_EQ(info.si_band, POLLIN | POLLRDNORM);
  EXPECT_EQ(sigs.Take(&info, 100), -1);  // the writer's owner hears reads only
  char c;
  ASSERT_EQ(read(r.get(), &c, 1), 1);
  ASSERT_EQ(sigs.Take(&info), sig);
  EXPECT_EQ(info.si_code, POLL_OUT);
  EXPECT_EQ(info.si_fd, w.get());
  EXPECT_EQ(info.si_band, POLLOUT | POLLWRNORM | POLLWRBAND);
}

// Clearing O_ASYNC stops the signals; the owner alone sends none.
TEST_F(FcntlTest, NoSigioWithoutAsync) {
  BlockedSignals sigs({SIGIO});
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  ASSERT_OK(fcntl(r.get(), F_SETOWN, getpid()));
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  siginfo_t info{};
  EXPECT_EQ(sigs.Take(&info, 100), -1);
  MakeAsync(r.get(), 0);
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  EXPECT_EQ(sigs.Take(&info), SIGIO);
  ASSERT_OK(fcntl(r.get(), F_SETFL, 0));
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  EXPECT_EQ(sigs.Take(&info, 100), -1);
}

// eventfd has no ->fasync: O_ASYNC on it never signals.
TEST_F(FcntlTest, EventfdSendsNoSigio) {
  BlockedSignals sigs({SIGIO});
  FileDescriptor e(eventfd(0, 0));
  ASSERT_GE(e.get(), 0);
  MakeAsync(e.get(), 0);
  uint64_t one = 1;
  ASSERT_EQ(write(e.get(), &one, 8), 8);
  siginfo_t info{};
  EXPECT_EQ(sigs.Take(&info, 100), -1);
}

TEST_F(FcntlTest, FifoWriteSendsSigio) {
  BlockedSignals sigs({SIGIO});
  std::string path = dir_.Path("fifo");
  ASSERT_OK(mkfifo(path.c_str(), 0600));
  FileDescriptor r(open(path.c_str(), O_RDONLY | O_NONBLOCK));
  ASSERT_GE(r.get(), 0);
  FileDescriptor w(open(path.c_str(), O_WRONLY));
  ASSERT_GE(w.get(), 0);
  MakeAsync(r.get(), 0);
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  siginfo_t info{};
  EXPECT_EQ(sigs.Take(&info), SIGIO);
}

// A process-group owner: every process of the group gets the signal.
TEST_F(FcntlTest, SigioToAProcessGroup) {
  BlockedSignals sigs({SIGIO});
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  int status = RunInChild([&] {
    if (setpgid(0, 0) != 0) return 1;
    if (fcntl(r.get(), F_SETOWN, -getpgrp()) != 0) return 2;
    if (fcntl(r.get(), F_SETFL, O_ASYNC) != 0) return 3;
    if (write(w.get(), "x", 1) != 1) return 4;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    timespec ts{2, 0};
    if (sigtimedwait(&set, nullptr, &ts) != SIGIO) return 5;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  siginfo_t info{};
  EXPECT_EQ(sigs.Take(&info, 100), -1);  // the parent is in another group
}

// A thread owner (F_OWNER_TID): that thread gets it, not the process.
TEST_F(FcntlTest, SigioToAThread) {
  BlockedSignals sigs({SIGIO});
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  struct Arg {
    int fd;
    pid_t tid = 0;
    int got = 0;
    int ready[2];
  } arg;
  arg.fd = r.get();
  ASSERT_OK(pipe(arg.ready));
  pthread_t th;
  ASSERT_EQ(pthread_create(
                &th, nullptr,
                [](void* v) -> void* {
                  auto* a = static_cast<Arg*>(v);
                  a->tid = static_cast<pid_t>(syscall(SYS_gettid));
                  if (write(a->ready[1], "r", 1) != 1) return nullptr;
                  sigset_t set;
                  sigemptyset(&set);
                  sigaddset(&set, SIGIO);
                  timespec ts{3, 0};
                  a->got = sigtimedwait(&set, nullptr, &ts);
                  return nullptr;
                },
                &arg),
            0);
  char c;
  ASSERT_EQ(read(arg.ready[0], &c, 1), 1);
  f_owner_ex ex{F_OWNER_TID, arg.tid};
  ASSERT_OK(fcntl(r.get(), F_SETOWN_EX, &ex));
  ASSERT_OK(fcntl(r.get(), F_SETFL, O_ASYNC));
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  pthread_join(th, nullptr);
  EXPECT_EQ(arg.got, SIGIO);
  siginfo_t info{};
  EXPECT_EQ(sigs.Take(&info, 100), -1);  // not pending for the process
  close(arg.ready[0]);
  close(arg.ready[1]);
}

// ---------------------------------------------------------------- O_PATH

// O_PATH: the fd names the file; I/O and changes through it are EBADF,
// looking at it (fstat, fstatfs, fchdir), dup and close work (open(2)).
TEST_F(FcntlTest, OPathRefusesIoAndChanges) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "data"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_PATH | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  char buf[8];
  EXPECT_ERRNO(EBADF, read(fd.get(), buf, sizeof(buf)));
  EXPECT_ERRNO(EBADF, write(fd.get(), "x", 1));
  EXPECT_ERRNO(EBADF, pread(fd.get(), buf, sizeof(buf), 0));
  EXPECT_ERRNO(EBADF, pwrite(fd.get(), "x", 1, 0));
  EXPECT_ERRNO(EBADF, lseek(fd.get(), 0, SEEK_SET));
  EXPECT_ERRNO(EBADF, fchmod(fd.get(), 0600));
  EXPECT_ERRNO(EBADF, fchown(fd.get(), getuid(), getgid()));
  EXPECT_ERRNO(EBADF, ftruncate(fd.get(), 0));
  EXPECT_ERRNO(EBADF, fsync(fd.get()));
  EXPECT_ERRNO(EBADF, fdatasync(fd.get()));
  EXPECT_ERRNO(EBADF, flock(fd.get(), LOCK_SH));
  int n;
  EXPECT_ERRNO(EBADF, ioctl(fd.get(), FIONREAD, &n));
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EBADF);
  EXPECT_ERRNO(EBADF, fcntl(fd.get(), F_SETFL, O_NONBLOCK));
  EXPECT_ERRNO(EBADF, fcntl(fd.get(), F_SETOWN, getpid()));
  EXPECT_ERRNO(EBADF, fcntl(fd.get(), F_GETOWN));
  EXPECT_ERRNO(EBADF, fcntl(fd.get(), F_SETSIG, SIGIO));
  struct flock fl{};
  fl.l_type = F_RDLCK;
  EXPECT_ERRNO(EBADF, fcntl(fd.get(), F_GETLK, &fl));
  // What works.
  struct stat st;
  EXPECT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 4);
  struct statfs sfs;
  EXPECT_OK(fstatfs(fd.get(), &sfs));
  EXPECT_EQ(fcntl(fd.get(), F_GETFL), O_PATH);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_OK(fcntl(fd.get(), F_SETFD, 0));
  FileDescriptor d(dup(fd.get()));
  ASSERT_GE(d.get(), 0);
  FileDescriptor d2(fcntl(fd.get(), F_DUPFD_CLOEXEC, 10));
  ASSERT_GE(d2.get(), 10);
  EXPECT_OK(close(d.release()));
}

TEST_F(FcntlTest, OPathDirectory) {
  FileDescriptor fd(open(dir_.path().c_str(), O_PATH | O_DIRECTORY));
  ASSERT_GE(fd.get(), 0);
  char buf[256];
  EXPECT_ERRNO(EBADF, syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)));
  EXPECT_ERRNO(EBADF, fchmod(fd.get(), 0700));
  // openat relative to it works, fchdir too.
  ASSERT_TRUE(WriteFile(dir_.Path("in"), "x"));
  FileDescriptor in(openat(fd.get(), "in", O_RDONLY));
  EXPECT_GE(in.get(), 0);
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  EXPECT_OK(fchdir(fd.get()));
  EXPECT_OK(chdir(cwd));
}

}  // namespace
}  // namespace syscall_test
