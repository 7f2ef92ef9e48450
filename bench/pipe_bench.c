// Pipe micro-benchmark, with a unix stream socketpair as the control: the
// same two workloads over both, between two processes.
//
//   pipe_bench [MIB [ROUNDTRIPS]]
//
// Prints one "name value" line per measurement:
//   pipe_mbps 1234.5        (MIB MiB written in 64 KiB writes, read in 64 KiB reads)
//   pipe_rtt_p50 12.3       (1-byte ping-pong over two pipes: round trip, us)
//   pipe_rtt_p90 ...  pipe_rtt_p99 ...
//   unix_mbps ...  unix_rtt_p50 ...  unix_rtt_p90 ...  unix_rtt_p99 ...
// Fully static so native, seedsc and runsc run the same bytes.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kChunk = 64 * 1024 };

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long parse(const char* s) {
  char* end = NULL;
  long n = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || n <= 0) {
    fprintf(stderr, "pipe_bench: bad count '%s'\n", s);
    exit(2);
  }
  return n;
}

static void die(const char* what) {
  fprintf(stderr, "pipe_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

static void read_exact(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die("read");
    p += r;
    n -= (size_t)r;
  }
}

static void reap(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "pipe_bench: child failed (status %d)\n", st);
    exit(1);
  }
}

// A channel: the fds each side writes to and reads from.
struct chan {
  int a_rd, a_wr;  // the parent's
  int b_rd, b_wr;  // the child's
};

static struct chan make_chan(int unix_sock) {
  struct chan c;
  if (unix_sock) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
    c.a_rd = c.a_wr = sv[0];
    c.b_rd = c.b_wr = sv[1];
  } else {
    int down[2], up[2];  // parent -> child, child -> parent
    if (pipe(down) != 0 || pipe(up) != 0) die("pipe");
    c.a_wr = down[1];
    c.b_rd = down[0];
    c.b_wr = up[1];
    c.a_rd = up[0];
  }
  return c;
}

static void close_chan(struct chan* c, int child_side) {
  if (child_side) {
    close(c->a_rd);
    if (c->a_wr != c->a_rd) close(c->a_wr);
  } else {
    close(c->b_rd);
    if (c->b_wr != c->b_rd) close(c->b_wr);
  }
}

// MB/s (1e6 bytes) from the first write to the reader's last byte.
static double throughput(int unix_sock, long mib) {
  static char buf[kChunk];
  memset(buf, 'x', sizeof(buf));
  struct chan c = make_chan(unix_sock);
  long chunks = mib * 16;
  double t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close_chan(&c, 1);
    char rbuf[kChunk];
    long total = chunks * (long)kChunk;
    while (total > 0) {
      ssize_t r = read(c.b_rd, rbuf, sizeof(rbuf));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) _exit(1);
      total -= r;
    }
    char ok = 'k';
    write_all(c.b_wr, &ok, 1);
    _exit(0);
  }
  close_chan(&c, 0);
  for (long i = 0; i < chunks; i++) write_all(c.a_wr, buf, sizeof(buf));
  char ok;
  read_exact(c.a_rd, &ok, 1);
  double secs = (now_ns() - t0) / 1e9;
  reap(pid);
  close(c.a_rd);
  if (c.a_wr != c.a_rd) close(c.a_wr);
  return (double)chunks * kChunk / 1e6 / secs;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// 1-byte round trips; fills p50/p90/p99 in microseconds.
static void latency(int unix_sock, long n, double out[3]) {
  struct chan c = make_chan(unix_sock);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close_chan(&c, 1);
    char b;
    for (long i = 0; i < n + 100; i++) {
      read_exact(c.b_rd, &b, 1);
      write_all(c.b_wr, &b, 1);
    }
    _exit(0);
  }
  close_chan(&c, 0);
  double* us = malloc(sizeof(double) * (size_t)n);
  if (!us) die("malloc");
  char b = 'p';
  for (long i = 0; i < n + 100; i++) {  // the first 100 warm up
    double t0 = now_ns();
    write_all(c.a_wr, &b, 1);
    read_exact(c.a_rd, &b, 1);
    if (i >= 100) us[i - 100] = (now_ns() - t0) / 1e3;
  }
  reap(pid);
  close(c.a_rd);
  if (c.a_wr != c.a_rd) close(c.a_wr);
  qsort(us, (size_t)n, sizeof(double), cmp_double);
  out[0] = us[n * 50 / 100];
  out[1] = us[n * 90 / 100];
  out[2] = us[n * 99 / 100];
  free(us);
}

int main(int argc, char** argv) {
  long mib = argc > 1 ? parse(argv[1]) : 256;
  long trips = argc > 2 ? parse(argv[2]) : 20000;
  const char* names[2] = {"pipe", "unix"};
  for (int u = 0; u < 2; u++) {
    printf("%s_mbps %.1f\n", names[u], throughput(u, mib));
    double q[3];
    latency(u, trips, q);
    printf("%s_rtt_p50 %.2f\n%s_rtt_p90 %.2f\n%s_rtt_p99 %.2f\n", names[u], q[0], names[u], q[1],
           names[u], q[2]);
    fflush(stdout);
  }
  return 0;
}
