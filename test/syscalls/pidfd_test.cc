// pidfd_open, pidfd_send_signal, pidfd_getfd, waitid(P_PIDFD) and
// clone(CLONE_PIDFD); a pidfd polls readable (poll and epoll) once its
// process has exited.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int PidfdOpen(pid_t pid, unsigned flags) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, flags));
}
int PidfdSendSignal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}
int PidfdGetfd(int pidfd, int fd, unsigned flags) {
  return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, flags));
}

// A child that blocks until `release` is written to (or it is killed).
struct Child {
  pid_t pid = -1;
  int release = -1;  // write end: a byte lets the child exit with 3
};

Child SpawnWaitingChild() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(p[1]);
    char c;
    _exit(read(p[0], &c, 1) == 1 ? 3 : 4);
  }
  close(p[0]);
  return {pid, p[1]};
}

TEST(PidfdTest, OpenArgs) {
  EXPECT_ERRNO(EINVAL, PidfdOpen(getpid(), 1));
  EXPECT_ERRNO(EINVAL, PidfdOpen(0, 0));
  EXPECT_ERRNO(EINVAL, PidfdOpen(-1, 0));
  EXPECT_ERRNO(ESRCH, PidfdOpen(4000000, 0));
  FileDescriptor fd(PidfdOpen(getpid(), 0));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR);
  char c;
  EXPECT_ERRNO(EINVAL, read(fd.get(), &c, 1));
  FileDescriptor nb(PidfdOpen(getpid(), O_NONBLOCK));
  ASSERT_GE(nb.get(), 0);
  EXPECT_EQ(fcntl(nb.get(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  // Our own process is alive: not readable.
  pollfd p{fd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
}

TEST(PidfdTest, PollAndEpollReadableOnExit) {
  Child c = SpawnWaitingChild();
  ASSERT_GT(c.pid, 0);
  FileDescriptor fd(PidfdOpen(c.pid, 0));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  FileDescriptor ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 77;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd.get(), &ev));
  pollfd p{fd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_EQ(epoll_wait(ep.get(), &ev, 1, 0), 0);

  ASSERT_EQ(write(c.release, "x", 1), 1);
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_TRUE(p.revents & POLLIN);
  ASSERT_EQ(epoll_wait(ep.get(), &ev, 1, 10000), 1);
  EXPECT_EQ(ev.data.u64, 77u);
  EXPECT_TRUE(ev.events & EPOLLIN);
  // A zombie can still be signalled (nothing happens) and opened.
  EXPECT_OK(PidfdSendSignal(fd.get(), SIGTERM, nullptr, 0));
  FileDescriptor again(PidfdOpen(c.pid, 0));
  EXPECT_GE(again.get(), 0);

  siginfo_t info{};
  ASSERT_OK(waitid(P_PIDFD, fd.get(), &info, WEXITED));
  EXPECT_EQ(info.si_pid, c.pid);
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_status, 3);
  // Reaped: the process is gone for good.
  EXPECT_ERRNO(ESRCH, PidfdSendSignal(fd.get(), 0, nullptr, 0));
  EXPECT_ERRNO(ESRCH, PidfdOpen(c.pid, 0));
  EXPECT_ERRNO(ECHILD, waitid(P_PIDFD, fd.get(), &info, WEXITED));
  close(c.release);
}

TEST(PidfdTest, SendSignal) {
  Child c = SpawnWaitingChild();
  ASSERT_GT(c.pid, 0);
  FileDescriptor fd(PidfdOpen(c.pid, 0));
  ASSERT_GE(fd.get(), 0);
  // Unknown flags, and more than one of PIDFD_SIGNAL_THREAD (1),
  // PIDFD_SIGNAL_THREAD_GROUP (2) and PIDFD_SIGNAL_PROCESS_GROUP (4).
  EXPECT_ERRNO(EINVAL, PidfdSendSignal(fd.get(), SIGTERM, nullptr, 1 << 5));
  EXPECT_ERRNO(EINVAL, PidfdSendSignal(fd.get(), SIGTERM, nullptr, 3));
  EXPECT_ERRNO(EINVAL, PidfdSendSignal(fd.get(), 1000, nullptr, 0));
  EXPECT_ERRNO(EBADF, PidfdSendSignal(c.release, SIGTERM, nullptr, 0));
  EXPECT_ERRNO(EBADF, PidfdSendSignal(-1, SIGTERM, nullptr, 0));
  EXPECT_OK(PidfdSendSignal(fd.get(), 0, nullptr, 0));
  siginfo_t si{};
  si.si_signo = SIGUSR1;  // not the signal sent
  si.si_code = SI_QUEUE;
  EXPECT_ERRNO(EINVAL, PidfdSendSignal(fd.get(), SIGTERM, &si, 0));
  si.si_signo = SIGTERM;
  si.si_code = SI_USER;  // only the kernel may claim that for another process
  EXPECT_ERRNO(EPERM, PidfdSendSignal(fd.get(), SIGTERM, &si, 0));

  ASSERT_OK(PidfdSendSignal(fd.get(), SIGTERM, nullptr, 0));
  siginfo_t info{};
  ASSERT_OK(waitid(P_PIDFD, fd.get(), &info, WEXITED));
  EXPECT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(info.si_status, SIGTERM);
  close(c.release);
}

TEST(PidfdTest, SendSignalToTheLeaderThread) {
  Child c = SpawnWaitingChild();
  ASSERT_GT(c.pid, 0);
  FileDescriptor fd(PidfdOpen(c.pid, 0));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(PidfdSendSignal(fd.get(), SIGKILL, nullptr, 1));  // PIDFD_SIGNAL_THREAD
  siginfo_t info{};
  ASSERT_OK(waitid(P_PIDFD, fd.get(), &info, WEXITED));
  EXPECT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(info.si_status, SIGKILL);
  close(c.release);
}

TEST(PidfdTest, SendQueuedSignalToSelf) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &set, &old));
  FileDescriptor fd(PidfdOpen(getpid(), 0));
  siginfo_t si{};
  si.si_signo = SIGUSR2;
  si.si_code = SI_QUEUE;
  si.si_value.sival_int = 4242;
  EXPECT_OK(PidfdSendSignal(fd.get(), SIGUSR2, &si, 0));
  timespec zero{0, 0};
  siginfo_t got{};
  EXPECT_EQ(sigtimedwait(&set, &got, &zero), SIGUSR2);
  EXPECT_EQ(got.si_code, SI_QUEUE);
  EXPECT_EQ(got.si_value.sival_int, 4242);
  // Without info: SI_USER from us.
  EXPECT_OK(PidfdSendSignal(fd.get(), SIGUSR2, nullptr, 0));
  EXPECT_EQ(sigtimedwait(&set, &got, &zero), SIGUSR2);
  EXPECT_EQ(got.si_code, SI_USER);
  EXPECT_EQ(got.si_pid, getpid());
  sigprocmask(SIG_SETMASK, &old, nullptr);
}

// A /proc/PID directory fd works as a pidfd for pidfd_send_signal (but is
// not one for waitid).
TEST(PidfdTest, SendSignalThroughProcDir) {
  Child c = SpawnWaitingChild();
  ASSERT_GT(c.pid, 0);
  std::string path = "/proc/" + std::to_string(c.pid);
  FileDescriptor dir(open(path.c_str(), O_DIRECTORY | O_RDONLY));
  ASSERT_GE(dir.get(), 0) << ErrnoName(errno);
  FileDescriptor proc(open("/proc", O_DIRECTORY | O_RDONLY));
  EXPECT_ERRNO(EBADF, PidfdSendSignal(proc.get(), 0, nullptr, 0));
  ASSERT_OK(PidfdSendSignal(dir.get(), SIGKILL, nullptr, 0));
  int st;
  ASSERT_EQ(waitpid(c.pid, &st, 0), c.pid);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  close(c.release);
}

TEST(PidfdTest, WaitidNonblockingAndNotAChild) {
  Child c = SpawnWaitingChild();
  ASSERT_GT(c.pid, 0);
  FileDescriptor fd(PidfdOpen(c.pid, O_NONBLOCK));
  ASSERT_GE(fd.get(), 0);
  siginfo_t info{};
  // waitid(2): a non-blocking pidfd fails with EAGAIN instead of blocking.
  EXPECT_ERRNO(EAGAIN, waitid(P_PIDFD, fd.get(), &info, WEXITED));
  info.si_pid = 99;
  EXPECT_OK(waitid(P_PIDFD, fd.get(), &info, WEXITED | WNOHANG));
  EXPECT_EQ(info.si_pid, 0);
  ASSERT_EQ(write(c.release, "x", 1), 1);
  pollfd p{fd.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  ASSERT_OK(waitid(P_PIDFD, fd.get(), &info, WEXITED));
  EXPECT_EQ(info.si_status, 3);
  close(c.release);

  FileDescriptor self(PidfdOpen(getpid(), 0));
  EXPECT_ERRNO(ECHILD, waitid(P_PIDFD, self.get(), &info, WEXITED | WNOHANG));
  int pipefd[2];
  ASSERT_OK(pipe(pipefd));
  EXPECT_ERRNO(EBADF, waitid(P_PIDFD, pipefd[0], &info, WEXITED | WNOHANG));
  close(pipefd[0]);
  close(pipefd[1]);
}

TEST(PidfdTest, GetfdDuplicatesATargetFile) {
  int report[2], hold[2];
  ASSERT_OK(pipe(report));
  ASSERT_OK(pipe(hold));
  pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    close(hold[1]);
    int p[2];
    if (pipe(p) != 0 || write(p[1], "hi", 2) != 2) _exit(1);
    if (write(report[1], &p[0], sizeof(int)) != sizeof(int)) _exit(2);
    char c;
    (void)!read(hold[0], &c, 1);  // until the parent is done
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  close(report[1]);
  close(hold[0]);
  int target = -1;
  ASSERT_EQ(read(report[0], &target, sizeof(target)), static_cast<ssize_t>(sizeof(target)));
  FileDescriptor pfd(PidfdOpen(pid, 0));
  ASSERT_GE(pfd.get(), 0);
  EXPECT_ERRNO(EINVAL, PidfdGetfd(pfd.get(), target, 1));
  EXPECT_ERRNO(EBADF, PidfdGetfd(pfd.get(), 999, 0));
  EXPECT_ERRNO(EBADF, PidfdGetfd(report[0], target, 0));
  FileDescriptor got(PidfdGetfd(pfd.get(), target, 0));
  ASSERT_GE(got.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(fcntl(got.get(), F_GETFD), FD_CLOEXEC);
  char buf[4] = {};
  EXPECT_EQ(read(got.get(), buf, sizeof(buf)), 2);
  EXPECT_STREQ(buf, "hi");
  // Our own fds, through a pidfd of ourselves.
  FileDescriptor self(PidfdOpen(getpid(), 0));
  FileDescriptor mine(PidfdGetfd(self.get(), report[0], 0));
  EXPECT_GE(mine.get(), 0);

  close(hold[1]);
  siginfo_t info{};
  ASSERT_OK(waitid(P_PIDFD, pfd.get(), &info, WEXITED));
  EXPECT_EQ(info.si_status, 0);
  EXPECT_ERRNO(ESRCH, PidfdGetfd(pfd.get(), target, 0));
  close(report[0]);
}

TEST(PidfdTest, CloneWithPidfd) {
  int pidfd = -1;
  EXPECT_ERRNO(EINVAL, syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, nullptr,
                               &pidfd, nullptr, 0));
  long r = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, nullptr, &pidfd, nullptr, 0);
  if (r == 0) syscall(SYS_exit_group, 7);
  ASSERT_GT(r, 0) << ErrnoName(errno);
  ASSERT_GE(pidfd, 0);
  EXPECT_EQ(fcntl(pidfd, F_GETFD), FD_CLOEXEC);
  siginfo_t info{};
  ASSERT_OK(waitid(P_PIDFD, pidfd, &info, WEXITED));
  EXPECT_EQ(info.si_pid, r);
  EXPECT_EQ(info.si_status, 7);
  close(pidfd);
}

}  // namespace
}  // namespace syscall_test
