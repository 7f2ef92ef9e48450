// Inside a container with linux.resources.pids.limit: how many tasks it
// may make and how it is told no (Linux's pids cgroup: fork, clone and
// pthread_create fail with EAGAIN at the limit; a zombie counts until it
// is reaped; threads count). Prints one line per finding, the same under
// runc and under seedsc; exits 0.
//
//   pids_probe          the findings above
//   pids_probe hold     waits for a signal (a container's init, while the
//                       test execs `count` beside it and updates the limit)
//   pids_probe count    forks (children that wait) until refused, at most
//                       64; prints how many and why it stopped
//   pids_probe timers   a container's init that arms timers at each
//                       SIGUSR1 (the test fills the host cgroup before the
//                       first): setitimer (real and prof), alarm,
//                       timer_settime and a finite RLIMIT_CPU, each ok or
//                       refused; then whether a SIGALRM arrives
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int gate[2];  // children block reading it until it is closed

static const char* Name(int e) {
  return e == 0 ? "ok" : e == EAGAIN ? "EAGAIN" : strerror(e);
}

// A child that waits at the gate; 0 or the fork's errno.
static int Spawn(pid_t* pid) {
  *pid = fork();
  if (*pid == 0) {
    close(gate[1]);
    char c;
    (void)!read(gate[0], &c, 1);
    _exit(0);
  }
  return *pid < 0 ? errno : 0;
}

static void* Idle(void* arg) {
  (void)arg;
  return NULL;
}

// `count`: see the top.
static int Count(void) {
  enum { kMax = 64 };
  pid_t kids[kMax];
  int n = 0, err = 0;
  while (n < kMax && (err = Spawn(&kids[n])) == 0) ++n;
  printf("forks: %d, then %s\n", n, n == kMax ? "stopped" : Name(err));
  close(gate[1]);
  while (wait(NULL) > 0) {
  }
  return 0;
}

static volatile sig_atomic_t usr1s, alarms;
static void OnUsr1(int sig) { (void)sig; ++usr1s; }
static void OnAlarm(int sig) { (void)sig; ++alarms; }

static const char* Err(int rc) { return Name(rc == 0 ? 0 : errno); }

// `timers`: see the top. Each round prints one line.
__attribute__((noreturn)) static void Timers(void) {
  signal(SIGUSR1, OnUsr1);
  signal(SIGALRM, OnAlarm);
  printf("timers: ready\n");
  for (int round = 1; round <= 2; ++round) {
    while (usr1s < round) pause();
    alarms = 0;
    struct itimerval real = {{0, 0}, {0, 20000}};  // 20 ms, once
    const char* setitimer_real = Err(setitimer(ITIMER_REAL, &real, NULL));
    struct itimerval prof = {{0, 0}, {100, 0}};
    const char* setitimer_prof = Err(setitimer(ITIMER_PROF, &prof, NULL));
    const char* alarm_rc = Err(alarm(100) == (unsigned)-1 ? -1 : 0);
    timer_t id;
    const char* timer = Err(timer_create(CLOCK_MONOTONIC, NULL, &id));
    if (timer == Name(0)) {
      struct itimerspec its = {{0, 0}, {0, 30000000}};  // 30 ms, once
      timer = Err(timer_settime(id, 0, &its, NULL));
    }
    struct rlimit cpu = {1000, 1000};
    const char* rlimit_cpu = Err(setrlimit(RLIMIT_CPU, &cpu));
    usleep(200000);  // SIGALRM would interrupt it; the count is what matters
    usleep(200000);
    printf("round %d: setitimer real %s, setitimer prof %s, alarm %s, timer_settime %s, "
           "RLIMIT_CPU %s, SIGALRM %s\n",
           round, setitimer_real, setitimer_prof, alarm_rc, timer, rlimit_cpu,
           alarms > 0 ? "arrived" : "none");
    alarm(0);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    setitimer(ITIMER_PROF, &off, NULL);
    if (timer == Name(0)) timer_delete(id);
  }
  for (;;) pause();
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (pipe(gate) != 0) return 1;
  if (argc > 1 && strcmp(argv[1], "hold") == 0) {
    for (;;) pause();
  }
  if (argc > 1 && strcmp(argv[1], "count") == 0) return Count();
  if (argc > 1 && strcmp(argv[1], "timers") == 0) Timers();
  pid_t kids[512];
  int n = 0, err = 0;
  while (n < 512 && (err = Spawn(&kids[n])) == 0) ++n;
  printf("forks before the limit: %d, then %s\n", n, Name(err));
  pthread_t th;
  int e = pthread_create(&th, NULL, Idle, NULL);
  printf("pthread_create at the limit: %s\n", Name(e));
  if (e == 0) pthread_join(th, NULL);
  // One child exits; unreaped, it still counts.
  (void)!write(gate[1], "x", 1);
  siginfo_t si = {0};
  if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) != 0) return 2;
  pid_t p;
  e = Spawn(&p);
  printf("fork beside a zombie: %s\n", Name(e));
  if (e == 0) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
  }
  waitpid(si.si_pid, NULL, 0);
  e = Spawn(&p);
  printf("fork after reaping it: %s\n", Name(e));
  if (e == 0) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
  }
  close(gate[1]);
  while (wait(NULL) > 0) {
  }
  n = 0;
  while (n < 4 && (err = Spawn(&kids[n])) == 0) ++n;
  printf("after all exited, forks: %d\n", n);
  return 0;
}
