// Syscall round-trip micro-benchmark: the cost a sandbox adds to the cheapest
// system calls. Runs natively, under seedsc and under gVisor's runsc (see
// run_syscall_bench.sh), fully static so every runtime runs the same bytes.
//
//   syscall_bench [GETPPID_ITERS [PREAD_ITERS]]
//
// Prints one "name ns_per_call" line per measurement:
//   getppid 123.4
//   getppid_p50 130.0            (getppid timed one call at a time: the median
//   getppid_p99 900.0             and 99th percentile of min(GETPPID_ITERS, 20000) calls)
//   pipe_pingpong 9000.0         (one byte to a child and back over two pipes,
//                                 per round trip; GETPPID_ITERS/10 of them)
//   pread4096 456.7
//   fork_exit_wait 150000.0      (fork + child _exit + waitpid; GETPPID_ITERS/100 of them)
//   touch64m_per_page 2800.0     (first touch of each page of a fresh 64 MiB mapping)
// getppid is made as glibc's getppid() makes it, `mov $110,%eax; syscall`
// (the site form systrap --systrap-patch patches), inline here so that no
// libc cache can answer it and every runtime runs the same bytes; pread
// reads the same 4096 bytes of a temp file in $TMPDIR (or /tmp) every time.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long parse_iters(const char* s) {
  char* end = NULL;
  long n = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || n <= 0) {
    fprintf(stderr, "syscall_bench: bad iteration count '%s'\n", s);
    exit(2);
  }
  return n;
}

// One call site per caller (inlined): each gets hot on its own.
static inline __attribute__((always_inline)) long raw_getppid(void) {
  long r;
  __asm__ volatile("mov $110, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
  return r;
}

static double bench_getppid(long iters) {
  for (int i = 0; i < 100; i++) raw_getppid();  // warm up
  double t0 = now_ns();
  for (long i = 0; i < iters; i++) raw_getppid();
  return (now_ns() - t0) / (double)iters;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// Each call timed alone: the tail shows the handoffs that needed a sleep
// or a preemption. *p50 and *p99 in ns (the clock read is included).
static void bench_getppid_percentiles(long iters, double* p50, double* p99) {
  long n = iters < 20000 ? iters : 20000;
  double* v = malloc(sizeof(double) * (size_t)n);
  if (v == NULL) {
    fprintf(stderr, "syscall_bench: out of memory\n");
    exit(1);
  }
  for (long i = 0; i < n; i++) {
    double t0 = now_ns();
    raw_getppid();
    v[i] = now_ns() - t0;
  }
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  *p50 = v[n / 2];
  *p99 = v[(n * 99) / 100];
  free(v);
}

// The latency of a wakeup across processes: one byte to a child and back.
static double bench_pipe_pingpong(long iters) {
  int to_child[2], to_parent[2];
  if (pipe(to_child) != 0 || pipe(to_parent) != 0) {
    fprintf(stderr, "syscall_bench: pipe: %s\n", strerror(errno));
    exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "syscall_bench: fork: %s\n", strerror(errno));
    exit(1);
  }
  char c = 'x';
  if (pid == 0) {
    close(to_child[1]);  // else our own copy keeps the pipe from ending
    close(to_parent[0]);
    while (read(to_child[0], &c, 1) == 1) {
      if (write(to_parent[1], &c, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  close(to_child[0]);
  close(to_parent[1]);
  for (int i = 0; i < 100; i++) {  // warm up
    if (write(to_child[1], &c, 1) != 1 || read(to_parent[0], &c, 1) != 1) goto fail;
  }
  double t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    if (write(to_child[1], &c, 1) != 1 || read(to_parent[0], &c, 1) != 1) goto fail;
  }
  double ns = (now_ns() - t0) / (double)iters;
  close(to_child[1]);
  close(to_parent[0]);
  waitpid(pid, NULL, 0);
  return ns;
fail:
  fprintf(stderr, "syscall_bench: pipe ping-pong: %s\n", strerror(errno));
  exit(1);
}

static double bench_pread(long iters) {
  const char* dir = getenv("TMPDIR");
  if (dir == NULL || dir[0] == '\0') dir = "/tmp";
  char path[4096];
  snprintf(path, sizeof(path), "%s/syscall_bench.XXXXXX", dir);
  int fd = mkstemp(path);
  if (fd < 0) {
    fprintf(stderr, "syscall_bench: mkstemp %s: %s\n", path, strerror(errno));
    exit(1);
  }
  unlink(path);
  static char buf[4096];
  memset(buf, 'x', sizeof(buf));
  if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
    fprintf(stderr, "syscall_bench: write: %s\n", strerror(errno));
    exit(1);
  }
  for (int i = 0; i < 100; i++) pread(fd, buf, sizeof(buf), 0);  // warm up
  double t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    if (pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
      fprintf(stderr, "syscall_bench: pread: %s\n", strerror(errno));
      exit(1);
    }
  }
  double ns = (now_ns() - t0) / (double)iters;
  close(fd);
  return ns;
}

// A guest process's life: fork, _exit in the child, waitpid in the parent.
static double bench_fork(long iters) {
  double t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
      fprintf(stderr, "syscall_bench: fork/waitpid: %s\n", strerror(errno));
      exit(1);
    }
  }
  return (now_ns() - t0) / (double)iters;
}

// Page-fault cost: touch every page of a fresh 64 MiB anonymous mapping.
static double bench_touch(void) {
  const size_t len = 64u << 20, page = 4096;
  double t0 = now_ns();
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "syscall_bench: mmap: %s\n", strerror(errno));
    exit(1);
  }
  for (size_t off = 0; off < len; off += page) p[off] = 1;
  munmap(p, len);
  return (now_ns() - t0) / (double)(len / page);
}

int main(int argc, char** argv) {
  long getppid_iters = argc > 1 ? parse_iters(argv[1]) : 100000;
  long pread_iters = argc > 2 ? parse_iters(argv[2]) : getppid_iters;
  printf("getppid %.1f\n", bench_getppid(getppid_iters));
  double p50, p99;
  bench_getppid_percentiles(getppid_iters, &p50, &p99);
  printf("getppid_p50 %.1f\ngetppid_p99 %.1f\n", p50, p99);
  long pingpong_iters = getppid_iters / 10 < 10 ? 10 : getppid_iters / 10;
  printf("pipe_pingpong %.1f\n", bench_pipe_pingpong(pingpong_iters));
  printf("pread4096 %.1f\n", bench_pread(pread_iters));
  long fork_iters = getppid_iters / 100 < 10 ? 10 : getppid_iters / 100;
  if (fork_iters > 2000) fork_iters = 2000;
  printf("fork_exit_wait %.1f\n", bench_fork(fork_iters));
  printf("touch64m_per_page %.1f\n", bench_touch());
  return 0;
}
