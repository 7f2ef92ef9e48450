// TCP bulk throughput and request/response latency between a client and a
// server, for bench/netstack_bench.sh (which runs the client natively and
// in the sandboxes, the server outside them).
//
//   net_bench server PORT                  serves until killed
//   net_bench tput HOST PORT MIB           sends MIB MiB; prints tput_mibps
//   net_bench rtput HOST PORT MIB          receives MIB MiB from the server;
//                                          prints rtput_mibps
//   net_bench rr HOST PORT TRIPS SIZE      TRIPS round trips of SIZE bytes;
//                                          prints rr_p50_us, rr_p99_us, rr_mean_us
//   net_bench loop MIB                     tput to a server it forks on
//                                          127.0.0.1; prints lo_tput_mibps
//
// The server forks a child per connection; the first byte says what the
// connection is for ('T': count bytes to end of stream and answer the
// count; 'S': send the MiB count that follows and close; 'R': echo
// SIZE-byte messages until end of stream).
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char* what) {
  fprintf(stderr, "net_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int read_full(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void serve(int c) {
  char kind;
  if (read_full(c, &kind, 1) != 0) return;
  int one = 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  static char buf[1 << 16];
  if (kind == 'T') {
    uint64_t total = 0;
    ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0) total += (uint64_t)r;
    write_full(c, (char*)&total, sizeof total);
  } else if (kind == 'S') {
    uint64_t mib;
    if (read_full(c, (char*)&mib, sizeof mib) != 0 || mib > (1 << 20)) return;
    memset(buf, 's', sizeof buf);
    for (uint64_t i = 0; i < mib * 16; ++i) {
      if (write_full(c, buf, sizeof buf) != 0) return;
    }
  } else if (kind == 'R') {
    uint32_t size;
    if (read_full(c, (char*)&size, sizeof size) != 0 || size == 0 || size > sizeof buf) return;
    while (read_full(c, buf, size) == 0) {
      if (write_full(c, buf, size) != 0) return;
    }
  }
}

static int run_server(int port) {
  signal(SIGCHLD, SIG_IGN);  // children reaped by the kernel
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) die("socket");
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (bind(l, (struct sockaddr*)&a, sizeof a) != 0) die("bind");
  if (listen(l, 64) != 0) die("listen");
  printf("listening %d\n", port);
  fflush(stdout);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR) continue;
      die("accept");
    }
    pid_t p = fork();
    if (p == 0) {
      close(l);
      serve(c);
      _exit(0);
    }
    close(c);
  }
}

static int dial(const char* host, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    fprintf(stderr, "net_bench: '%s' is not an IPv4 address\n", host);
    exit(2);
  }
  for (int i = 0;; ++i) {  // the server may still be starting
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (struct sockaddr*)&a, sizeof a) == 0) return s;
    close(s);
    if (i == 50) die("connect");
    usleep(100000);
  }
}

static int cmp_i64(const void* x, const void* y) {
  int64_t a = *(const int64_t*)x, b = *(const int64_t*)y;
  return a < b ? -1 : a > b;
}

// Sends `mib` MiB on `s` to a 'T' server; prints `metric` in MiB/s.
static int send_and_count(int s, long mib, const char* metric) {
  static char buf[1 << 16];
  memset(buf, 'x', sizeof buf);
  if (write_full(s, "T", 1) != 0) die("write");
  int64_t t0 = now_ns();
  for (long i = 0; i < mib * 16; ++i) {
    if (write_full(s, buf, sizeof buf) != 0) die("write");
  }
  shutdown(s, SHUT_WR);
  uint64_t got = 0;
  if (read_full(s, (char*)&got, sizeof got) != 0) die("read the count");
  double secs = (double)(now_ns() - t0) / 1e9;
  if (got != (uint64_t)mib << 20) {
    fprintf(stderr, "net_bench: the server counted %llu bytes of %ld MiB\n",
            (unsigned long long)got, mib);
    return 1;
  }
  printf("%s %.1f\n", metric, (double)mib / secs);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "server") == 0) return run_server(atoi(argv[2]));
  if (argc == 5 && strcmp(argv[1], "tput") == 0) {
    return send_and_count(dial(argv[2], atoi(argv[3])), atol(argv[4]), "tput_mibps");
  }
  if (argc == 5 && strcmp(argv[1], "rtput") == 0) {
    int s = dial(argv[2], atoi(argv[3]));
    uint64_t mib = (uint64_t)atol(argv[4]);
    static char buf[1 << 16];
    int64_t t0 = now_ns();
    if (write_full(s, "S", 1) != 0 || write_full(s, (char*)&mib, sizeof mib) != 0) die("write");
    uint64_t got = 0;
    ssize_t r;
    while ((r = read(s, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR)) {
      if (r > 0) got += (uint64_t)r;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    if (got != mib << 20) {
      fprintf(stderr, "net_bench: received %llu bytes of %llu MiB\n", (unsigned long long)got,
              (unsigned long long)mib);
      return 1;
    }
    printf("rtput_mibps %.1f\n", (double)mib / secs);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "loop") == 0) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr*)&a, &len) != 0) {
      die("listen on 127.0.0.1");
    }
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
      int c = accept(l, NULL, NULL);
      if (c < 0) _exit(1);
      serve(c);
      _exit(0);
    }
    close(l);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
    int rc = send_and_count(dial(host, ntohs(a.sin_port)), atol(argv[2]), "lo_tput_mibps");
    waitpid(p, NULL, 0);
    return rc;
  }
  if (argc == 6 && strcmp(argv[1], "rr") == 0) {
    int s = dial(argv[2], atoi(argv[3]));
    int trips = atoi(argv[4]);
    uint32_t size = (uint32_t)atoi(argv[5]);
    if (trips < 1 || size < 1 || size > (1 << 16)) {
      fprintf(stderr, "net_bench: rr wants TRIPS >= 1 and 1 <= SIZE <= 65536\n");
      return 2;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char buf[1 << 16];
    memset(buf, 'r', size);
    if (write_full(s, "R", 1) != 0 || write_full(s, (char*)&size, sizeof size) != 0) die("write");
    int64_t* rtt = calloc((size_t)trips, sizeof *rtt);
    for (int i = 0; i < trips; ++i) {
      int64_t t0 = now_ns();
      if (write_full(s, buf, size) != 0 || read_full(s, buf, size) != 0) die("round trip");
      rtt[i] = now_ns() - t0;
    }
    double sum = 0;
    for (int i = 0; i < trips; ++i) sum += (double)rtt[i];
    qsort(rtt, (size_t)trips, sizeof *rtt, cmp_i64);
    printf("rr_p50_us %.1f\n", (double)rtt[trips / 2] / 1e3);
    printf("rr_p99_us %.1f\n", (double)rtt[(trips * 99) / 100 < trips ? (trips * 99) / 100 : trips - 1] / 1e3);
    printf("rr_mean_us %.1f\n", sum / trips / 1e3);
    return 0;
  }
  fprintf(stderr,
          "usage: net_bench server PORT | tput HOST PORT MIB | rtput HOST PORT MIB |\n"
          "       rr HOST PORT TRIPS SIZE | loop MIB\n");
  return 2;
}
