// Process groups and sessions with zombies in them: a process group's id
// stays taken while any thread group in it is unreaped (Linux finds a
// zombie leader through PIDTYPE_PGID until release_task()), so setsid(2)
// refuses it, setpgid(2) may join it and TIOCSPGRP may make it the
// foreground group. setpgid's other errors (ksys_setpgid()): EINVAL for a
// thread's id, EACCES for a child that has exec'd. TIOCSPGRP's checks
// (tiocspgrp(), session_of_pgrp()): ESRCH for an id no one has, EPERM for a
// group of another session, and an id that is only a process's is taken
// as that process's session's.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Forks a child that runs `fn` and _exits with its result, and waits until
// it is a zombie, leaving it unreaped (WNOWAIT). Returns its pid, or -1.
template <typename F>
pid_t Zombie(F fn) {
  const pid_t pid = fork();
  if (pid == 0) _exit(fn());
  if (pid < 0) return -1;
  siginfo_t info{};
  if (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) != 0) return -1;
  return pid;
}

// Reaps `pid`; its exit code, or -1.
int Reap(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(PgrpTest, SetsidFailsWhileAZombieHoldsOurPidAsItsGroup) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     const pid_t me = getpid(), old_group = getpgrp();
                     if (setpgid(0, 0) != 0) return 1;
                     // A member of our group that stays a zombie.
                     const pid_t z = Zombie([] { return 0; });
                     if (z < 0) return 2;
                     // We leave the group: only the zombie is in it now.
                     if (setpgid(0, old_group) != 0) return 3;
                     if (setsid() != -1 || errno != EPERM) return 4;
                     if (Reap(z) != 0) return 5;
                     // Reaped: the group is gone.
                     if (setsid() != me) return 6;
                     return 0;
                   }),
                   0);
}

TEST(PgrpTest, SetpgidJoinsAGroupWhoseOnlyMemberIsAZombie) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     const pid_t z = Zombie([] { return setpgid(0, 0) == 0 ? 0 : 1; });
                     if (z < 0) return 1;
                     if (setpgid(0, z) != 0) return 2;
                     if (getpgrp() != z) return 3;
                     if (Reap(z) != 0) return 4;
                     // We are in it still: the group lives on.
                     if (getpgid(0) != z) return 5;
                     return 0;
                   }),
                   0);
}

TEST(PgrpTest, SetpgidOfAThreadIsEinval) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     int p[2];
                     if (pipe(p) != 0) return 1;
                     static int fds[2];
                     fds[0] = p[0];
                     fds[1] = p[1];
                     pthread_t th;
                     auto body = [](void*) -> void* {
                       pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
                       (void)!write(fds[1], &tid, sizeof(tid));
                       for (;;) pause();
                       return nullptr;
                     };
                     if (pthread_create(&th, nullptr, body, nullptr) != 0) return 2;
                     pid_t tid = 0;
                     if (read(p[0], &tid, sizeof(tid)) != sizeof(tid)) return 3;
                     if (setpgid(tid, 0) != -1 || errno != EINVAL) return 4;
                     if (setpgid(tid, getpid()) != -1 || errno != EINVAL) return 5;
                     return 0;
                   }),
                   0);
}

TEST(PgrpTest, SetpgidOfAChildThatHasExecdIsEacces) {
  int in[2], cloexec[2];
  ASSERT_OK(pipe(in));
  ASSERT_OK(pipe2(cloexec, O_CLOEXEC));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(in[0], 0);
    close(in[1]);
    close(cloexec[0]);
    execl("/bin/sh", "sh", "-c", "read x", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(cloexec[1]);
  char c;
  // EOF once the exec has closed the child's end.
  ASSERT_EQ(read(cloexec[0], &c, 1), 0);
  close(cloexec[0]);
  EXPECT_ERRNO(EACCES, setpgid(pid, pid));
  EXPECT_ERRNO(EACCES, setpgid(pid, 0));
  EXPECT_EQ(getpgid(pid), getpgrp());
  close(in[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 1);  // read(1) at EOF
}

// Opens a pty and makes its replica the controlling terminal of the
// caller, which must be a session leader; the replica's fd, or -1.
int ControllingPty() {
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return -1;
  const int replica = open(ptsname(master), O_RDWR | O_NOCTTY);
  if (replica < 0 || ioctl(replica, TIOCSCTTY, 0) != 0) return -1;
  return replica;  // the master stays open for as long as the process
}

int SetForeground(int tty, pid_t pgrp) { return ioctl(tty, TIOCSPGRP, &pgrp); }

pid_t Foreground(int tty) {
  pid_t v = -1;
  return ioctl(tty, TIOCGPGRP, &v) == 0 ? v : -1;
}

TEST(PgrpTest, TiocspgrpChecksTheGroupAndItsSession) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (setsid() < 0) return 1;
                     const int tty = ControllingPty();
                     if (tty < 0) return 2;
                     // From the background we would get SIGTTOU.
                     signal(SIGTTOU, SIG_IGN);
                     // An id no one has: a child's, reaped.
                     const pid_t gone = Zombie([] { return 0; });
                     if (gone < 0 || Reap(gone) != 0) return 3;
                     if (SetForeground(tty, gone) != -1 || errno != ESRCH) return 4;
                     // A group of another session.
                     int p[2];
                     if (pipe(p) != 0) return 5;
                     const pid_t other = fork();
                     if (other == 0) {
                       close(p[1]);
                       char c;
                       _exit(setsid() > 0 && read(p[0], &c, 1) == 0 ? 0 : 1);
                     }
                     // Until it is in its session (getsid() says so).
                     for (int i = 0; i < 2000 && getsid(other) != other; ++i) usleep(1000);
                     if (SetForeground(tty, other) != -1 || errno != EPERM) return 6;
                     // A group of ours whose only member is a zombie.
                     const pid_t z = Zombie([] { return setpgid(0, 0) == 0 ? 0 : 1; });
                     if (z < 0) return 7;
                     if (SetForeground(tty, z) != 0) return 8;
                     if (Foreground(tty) != z) return 9;
                     // A process of our session that leads no group.
                     if (SetForeground(tty, other) != -1 || errno != EPERM) return 10;
                     const pid_t member = fork();
                     if (member == 0) {
                       close(p[1]);
                       char c;
                       _exit(read(p[0], &c, 1) == 0 ? 0 : 1);
                     }
                     if (SetForeground(tty, member) != 0) return 11;
                     if (Foreground(tty) != member) return 12;
                     if (SetForeground(tty, getpgrp()) != 0) return 13;
                     close(p[1]);
                     if (Reap(other) != 0 || Reap(member) != 0 || Reap(z) != 0) return 14;
                     return 0;
                   }),
                   0);
}

}  // namespace
}  // namespace syscall_test
