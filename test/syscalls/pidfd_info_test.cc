// ioctl(PIDFD_GET_INFO) (Linux 6.13; PIDFD_INFO_EXIT 6.15): a pidfd's
// process ids and credentials while it has not been reaped, its wait
// status once it has (fs/pidfs.c pidfd_info()). LTP's ioctl_pidfd.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/syscalls/pidfd_info_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// A child that exits with `code` once a byte arrives on the pipe it reads.
pid_t WaitingChild(int code, int* go_write) {
  int go[2];
  if (pipe(go) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(go[1]);
    char b;
    (void)!read(go[0], &b, 1);
    _exit(code);
  }
  close(go[0]);
  *go_write = go[1];
  return pid;
}

TEST(PidfdInfoTest, IdsWhileAliveExitStatusOnceReaped) {
  int go;
  pid_t pid = WaitingChild(100, &go);
  ASSERT_GT(pid, 0);
  int pidfd = PidfdOpen(pid);
  ASSERT_GE(pidfd, 0) << ErrnoName(errno);

  // Alive: ids and credentials (always returned), no exit status even
  // when asked for it.
  PidfdInfo info = {};
  info.mask = kPidfdInfoExit;
  ASSERT_EQ(ioctl(pidfd, kPidfdGetInfo, &info), 0) << ErrnoName(errno);
  EXPECT_EQ(info.mask & (kPidfdInfoPid | kPidfdInfoCreds), kPidfdInfoPid | kPidfdInfoCreds);
  EXPECT_EQ(info.mask & kPidfdInfoExit, 0u);
  EXPECT_EQ(info.pid, static_cast<uint32_t>(pid));
  EXPECT_EQ(info.tgid, static_cast<uint32_t>(pid));
  EXPECT_EQ(info.ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(info.ruid, getuid());
  EXPECT_EQ(info.euid, geteuid());
  EXPECT_EQ(info.rgid, getgid());
  EXPECT_EQ(info.egid, getegid());
  EXPECT_EQ(info.exit_code, 0);

  ASSERT_EQ(write(go, "x", 1), 1);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  // Reaped: only the exit status, and only when asked for.
  info = {};
  info.mask = kPidfdInfoExit;
  ASSERT_EQ(ioctl(pidfd, kPidfdGetInfo, &info), 0) << ErrnoName(errno);
  // (Linux 6.18 adds PIDFD_INFO_CGROUPID, kept with the exit status.)
  EXPECT_EQ(info.mask & (kPidfdInfoPid | kPidfdInfoCreds | kPidfdInfoExit), kPidfdInfoExit);
  EXPECT_EQ(info.exit_code, status);
  EXPECT_EQ(WEXITSTATUS(info.exit_code), 100);
  info = {};
  EXPECT_ERRNO(ESRCH, ioctl(pidfd, kPidfdGetInfo, &info));
  close(go);
  close(pidfd);
}

TEST(PidfdInfoTest, KilledChildsStatus) {
  int go;
  pid_t pid = WaitingChild(1, &go);
  ASSERT_GT(pid, 0);
  int pidfd = PidfdOpen(pid);
  ASSERT_GE(pidfd, 0);
  ASSERT_OK(kill(pid, SIGKILL));
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  PidfdInfo info = {};
  info.mask = kPidfdInfoExit;
  ASSERT_EQ(ioctl(pidfd, kPidfdGetInfo, &info), 0) << ErrnoName(errno);
  EXPECT_TRUE(WIFSIGNALED(info.exit_code));
  EXPECT_EQ(WTERMSIG(info.exit_code), SIGKILL);
  EXPECT_EQ(info.exit_code, status);
  close(go);
  close(pidfd);
}

TEST(PidfdInfoTest, BadArguments) {
  int pidfd = PidfdOpen(getpid());
  ASSERT_GE(pidfd, 0);
  EXPECT_ERRNO(EINVAL, ioctl(pidfd, kPidfdGetInfo, nullptr));
  // A struct smaller than the first version: EINVAL, or ENOTTY since Linux
  // 6.18 validates the size in the request.
  struct Short {
    uint32_t dummy;
  } s = {1};
  errno = 0;
  EXPECT_EQ(ioctl(pidfd, _IOWR(0xFF, 11, Short), &s), -1);
  EXPECT_TRUE(errno == EINVAL || errno == ENOTTY) << ErrnoName(errno);
  // Not a pidfd.
  int p[2];
  ASSERT_OK(pipe(p));
  PidfdInfo info = {};
  EXPECT_ERRNO(ENOTTY, ioctl(p[0], kPidfdGetInfo, &info));
  close(p[0]);
  close(p[1]);
  close(pidfd);
}

}  // namespace
}  // namespace syscall_test
