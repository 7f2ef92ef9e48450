// The ids a terminal's ioctls give and take are the caller's pid
// namespace's (tiocgsid(), tiocgpgrp(), tiocspgrp(): pid_vnr(),
// find_vpid()), also for the terminal the sandbox was started on (the
// sentry's host stdio passthrough). Run with its stdin on a terminal whose
// session it is in (host_tty_test.sh runs it under script(1)); as root (it
// makes a pid namespace). Prints "ok" and exits 0, or names the first
// check that failed and exits 1 (2: not runnable here). In its own
// namespace too, TIOCSPGRP takes only a group of the caller's session.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int Fail(const char* what, long got) {
  printf("FAIL: %s (got %ld, errno %s)\n", what, got, strerror(errno));
  return 1;
}

static pid_t Get(unsigned long cmd) {
  pid_t v = -1;
  return ioctl(0, cmd, &v) == 0 ? v : -1;
}

// The child: pid 1 of a new pid namespace, in the terminal's session,
// whose leader and foreground group are outside it.
static int Inside(void) {
  if (getpid() != 1) return Fail("the child is not pid 1 of its namespace", getpid());
  pid_t v = Get(TIOCGSID);
  if (v != 0) return Fail("TIOCGSID inside, session outside: 0", v);
  v = Get(TIOCGPGRP);
  if (v != 0) return Fail("TIOCGPGRP inside, foreground outside: 0", v);
  // An id the namespace does not have.
  const pid_t none = 9;
  if (ioctl(0, TIOCSPGRP, &none) != -1 || errno != ESRCH) {
    return Fail("TIOCSPGRP of an id not in the namespace: ESRCH", errno);
  }
  if (setpgid(0, 0) != 0) return Fail("setpgid(0, 0)", errno);
  const pid_t me = 1;
  if (ioctl(0, TIOCSPGRP, &me) != 0) return Fail("TIOCSPGRP of its own group 1", errno);
  v = Get(TIOCGPGRP);
  if (v != 1) return Fail("TIOCGPGRP after TIOCSPGRP(1) inside: 1", v);
  return 0;
}

// In the caller's own namespace: TIOCSPGRP takes a group of the caller's
// session only (tiocspgrp(): ESRCH for an id no one has, EPERM for
// another session's group), a group whose only member is a zombie too.
static int OwnNamespace(void) {
  const pid_t mine = getpgrp();
  // An id no one has: a child's, reaped.
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  if (gone < 0 || waitpid(gone, NULL, 0) != gone) return Fail("fork and reap a child", errno);
  if (ioctl(0, TIOCSPGRP, &gone) != -1 || errno != ESRCH) {
    return Fail("TIOCSPGRP of an id no one has: ESRCH", errno);
  }
  int p[2];
  if (pipe(p) != 0) return Fail("pipe", errno);
  pid_t other = fork();
  if (other == 0) {
    close(p[1]);
    char c;
    _exit(setsid() > 0 && read(p[0], &c, 1) == 0 ? 0 : 1);
  }
  for (int i = 0; i < 2000 && getsid(other) != other; ++i) usleep(1000);
  if (ioctl(0, TIOCSPGRP, &other) != -1 || errno != EPERM) {
    return Fail("TIOCSPGRP of another session's group: EPERM", errno);
  }
  pid_t z = fork();
  if (z == 0) _exit(setpgid(0, 0) == 0 ? 0 : 1);
  siginfo_t si;
  if (z < 0 || waitid(P_PID, z, &si, WEXITED | WNOWAIT) != 0) return Fail("a zombie", errno);
  if (ioctl(0, TIOCSPGRP, &z) != 0) return Fail("TIOCSPGRP of a zombie's group of ours", errno);
  if (Get(TIOCGPGRP) != z) return Fail("TIOCGPGRP after TIOCSPGRP of a zombie's group", z);
  if (ioctl(0, TIOCSPGRP, &mine) != 0) return Fail("TIOCSPGRP back to our group", errno);
  close(p[1]);
  int status = 0;
  if (waitpid(other, &status, 0) != other || status != 0) return Fail("the other's end", status);
  if (waitpid(z, &status, 0) != z || status != 0) return Fail("the zombie's end", status);
  return 0;
}

int main(void) {
  if (!isatty(0)) {
    printf("host_tty_ids: stdin is not a terminal\n");
    return 2;
  }
  // Changing the foreground group from the background.
  signal(SIGTTOU, SIG_IGN);
  pid_t v = Get(TIOCGSID);
  if (v != getsid(0)) return Fail("TIOCGSID is getsid(0)", v);
  v = Get(TIOCGPGRP);
  if (v != getpgrp()) return Fail("TIOCGPGRP is our group", v);
  if (OwnNamespace() != 0) return 1;
  int ready[2], done[2];
  if (pipe(ready) != 0 || pipe(done) != 0) return Fail("pipe", errno);
  const pid_t c = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
  if (c < 0) {
    printf("host_tty_ids: clone(CLONE_NEWPID): %s\n", strerror(errno));
    return 2;
  }
  if (c == 0) {
    close(ready[0]);
    close(done[1]);
    const char r = (char)Inside();
    if (write(ready[1], &r, 1) != 1) _exit(1);
    // Stays (in the foreground) until the parent has looked.
    char b;
    if (read(done[0], &b, 1) != 0) _exit(1);
    _exit(r);
  }
  close(ready[1]);
  close(done[0]);
  char r = 1;
  int status = 0;
  if (read(ready[0], &r, 1) != 1 || r != 0) {
    close(done[1]);
    waitpid(c, &status, 0);
    return 1;
  }
  // The child's group, as this namespace names it.
  v = Get(TIOCGPGRP);
  const pid_t mine = getpgrp();
  if (ioctl(0, TIOCSPGRP, &mine) != 0) return Fail("TIOCSPGRP back to our group", errno);
  close(done[1]);
  waitpid(c, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Fail("the child's end", status);
  if (v != c) return Fail("TIOCGPGRP outside, the child's group: the child's pid", v);
  if (Get(TIOCGPGRP) != getpgrp()) return Fail("TIOCGPGRP after restoring", Get(TIOCGPGRP));
  printf("ok\n");
  return 0;
}
