// What a host process pays for the state of the kernel's cgroup migration
// lock (cgroup_threadgroup_rwsem): the driver, cgroup_warmth_bench.py, runs
// it with seedd's migration warmth on and off, and with favordynmods.
//
//   host_cgroup_cost FORKS ATTACHES GAP_MS CGROUP_A CGROUP_B
//
// forks: FORKS times fork() + the child's _exit(0) + waitpid(), each timed
// (every fork and exit takes the rwsem as a reader). attach: a child of its
// own that sleeps is moved ATTACHES times between the v1 cgroup directories
// CGROUP_A and CGROUP_B (a cgroup.procs write, the rwsem as a writer), each
// GAP_MS after the last, as an unrelated container runtime would. Prints
// one line per measurement, microseconds:
//   fork_exit_wait n=3000 mean=120.1 p50=110.2 p90=150.3 p99=400.0
//   attach n=100 mean=8000.0 p50=9000.0 p90=12000.0 p99=20000.0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long parse(const char* s, const char* what) {
  char* end = NULL;
  long n = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || n < 0) {
    fprintf(stderr, "host_cgroup_cost: %s: not a count: '%s'\n", what, s);
    exit(2);
  }
  return n;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void report(const char* name, double* v, long n) {
  if (n == 0) return;
  double sum = 0;
  for (long i = 0; i < n; i++) sum += v[i];
  qsort(v, (size_t)n, sizeof *v, cmp);
  printf("%s n=%ld mean=%.1f p50=%.1f p90=%.1f p99=%.1f\n", name, n, sum / (double)n,
         v[n * 50 / 100], v[n * 90 / 100], v[n * 99 / 100]);
}

static void forks(long n) {
  double* v = calloc((size_t)n + 1, sizeof *v);
  for (long i = 0; i < n; i++) {
    double t0 = now_us();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
      fprintf(stderr, "host_cgroup_cost: fork/waitpid: %s\n", strerror(errno));
      exit(1);
    }
    v[i] = now_us() - t0;
  }
  report("fork_exit_wait", v, n);
  free(v);
}

static void attaches(long n, long gap_ms, const char* a, const char* b) {
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  char pid[32], path[2][4096];
  int len = snprintf(pid, sizeof pid, "%d", child);
  snprintf(path[0], sizeof path[0], "%s/cgroup.procs", a);
  snprintf(path[1], sizeof path[1], "%s/cgroup.procs", b);
  int fd[2];
  for (int i = 0; i < 2; i++) {
    fd[i] = open(path[i], O_WRONLY | O_CLOEXEC);
    if (fd[i] < 0) {
      fprintf(stderr, "host_cgroup_cost: %s: %s\n", path[i], strerror(errno));
      kill(child, SIGKILL);
      exit(1);
    }
  }
  double* v = calloc((size_t)n + 1, sizeof *v);
  for (long i = 0; i < n; i++) {
    struct timespec gap = {gap_ms / 1000, (gap_ms % 1000) * 1000000};
    nanosleep(&gap, NULL);
    double t0 = now_us();
    if (write(fd[i % 2], pid, (size_t)len) != len) {
      fprintf(stderr, "host_cgroup_cost: moving %d into %s: %s\n", child, path[i % 2],
              strerror(errno));
      kill(child, SIGKILL);
      exit(1);
    }
    v[i] = now_us() - t0;
  }
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  report("attach", v, n);
  free(v);
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: host_cgroup_cost FORKS ATTACHES GAP_MS CGROUP_A CGROUP_B\n");
    return 2;
  }
  forks(parse(argv[1], "FORKS"));
  attaches(parse(argv[2], "ATTACHES"), parse(argv[3], "GAP_MS"), argv[4], argv[5]);
  return 0;
}
