// Per-operation cost of big tables: opening N fds (the lowest free fd each
// time) and making M mappings (each a new VMA: alternating protections).
// Linux is O(log n) per operation in both; a quadratic table shows up as a
// tail (the last 10% of operations) much slower than the head (the first 10%).
//
//   table_bench [FDS [MAPPINGS]]     defaults 32768 65000
//
// Prints "<metric> <value>" lines: fd_total_ms, fd_p50_us, fd_p99_us,
// fd_tail_head (tail/head mean ratio), and the same for map_.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double NowUs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int Cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void Report(const char* name, double* us, int n, double total_us) {
  double head = 0, tail = 0;
  int k = n / 10 > 0 ? n / 10 : 1;
  for (int i = 0; i < k; ++i) head += us[i];
  for (int i = n - k; i < n; ++i) tail += us[i];
  qsort(us, (size_t)n, sizeof(double), Cmp);
  printf("%s_total_ms %.1f\n", name, total_us / 1e3);
  printf("%s_p50_us %.2f\n", name, us[n / 2]);
  printf("%s_p99_us %.2f\n", name, us[(int)(n * 0.99)]);
  printf("%s_tail_head %.2f\n", name, head > 0 ? tail / head : 0);
}

int main(int argc, char** argv) {
  int fds = argc > 1 ? atoi(argv[1]) : 32768;
  const int maps = argc > 2 ? atoi(argv[2]) : 65000;
  struct rlimit lim = {(rlim_t)fds + 64, (rlim_t)fds + 64};
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
    // No CAP_SYS_RESOURCE to raise the hard limit: as many as it allows.
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_max < 128) return 1;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return 1;
    fds = (int)lim.rlim_max - 64;
  }
  printf("fds %d\nmappings %d\n", fds, maps);
  double* us = calloc((size_t)(fds > maps ? fds : maps), sizeof(double));
  double start = NowUs();
  for (int i = 0; i < fds; ++i) {
    double t = NowUs();
    if (open("/dev/null", O_RDONLY) < 0) {
      perror("open");
      return 1;
    }
    us[i] = NowUs() - t;
  }
  Report("fd", us, fds, NowUs() - start);
  const long page = sysconf(_SC_PAGESIZE);
  start = NowUs();
  for (int i = 0; i < maps; ++i) {
    double t = NowUs();
    int prot = i % 2 ? PROT_READ | PROT_WRITE : PROT_READ;
    if (mmap(NULL, (size_t)page, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    us[i] = NowUs() - t;
  }
  Report("map", us, maps, NowUs() - start);
  return 0;
}
