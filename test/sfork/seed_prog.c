// A guest for the sandbox-fork tests: reads one command per line on stdin
// (blocked in read(2) while its sandbox is paused and forked) and answers on
// stdout:
//   write S    keep S in a heap buffer          -> ok
//   read       the buffer                       -> S
//   rand       16 getrandom() bytes, hex        -> 32 hex digits
//   urandom    16 bytes of /dev/urandom, hex    -> 32 hex digits
//   mxcsr      the SSE control register (set to 0x7f80 at start)
//   pid        getpid() and getppid()
//   gen        /proc/seedvisor/fork_generation (opened at start), from offset 0
//   genpoll    1 if that fd polls readable now, else 0
//   exit N     _exit(N)
//   wfile P S  write S into file P (created, truncated)   -> ok | err ERRNO
//   rfile P    the content of file P                     -> S | err ERRNO
//   mfile P S  write S at the start of P through a MAP_SHARED mapping -> ok
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

static char* buf;

static void reply(const char* s) {
  char line[512];
  int n = snprintf(line, sizeof(line), "%s\n", s);
  if (write(1, line, (size_t)n) != n) _exit(99);
}

static void reply_err(void) {
  char out[32];
  snprintf(out, sizeof(out), "err %d", errno);
  reply(out);
}

// "P S" -> P (NUL-terminated in place) and S.
static char* split(char* arg) {
  char* sp = strchr(arg, ' ');
  if (sp == NULL) return arg + strlen(arg);
  *sp = 0;
  return sp + 1;
}

static void wfile(char* arg) {
  char* text = split(arg);
  int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return reply_err();
  ssize_t n = write(fd, text, strlen(text));
  if (n != (ssize_t)strlen(text)) return reply_err();
  close(fd);
  reply("ok");
}

static void rfile(const char* path) {
  char data[400];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return reply_err();
  ssize_t n = read(fd, data, sizeof(data) - 1);
  close(fd);
  if (n < 0) return reply_err();
  data[n] = 0;
  reply(data);
}

static void mfile(char* arg) {
  char* text = split(arg);
  int fd = open(arg, O_RDWR);
  if (fd < 0) return reply_err();
  char* m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return reply_err();
  memcpy(m, text, strlen(text));
  munmap(m, 4096);
  reply("ok");
}

static void hex(const unsigned char* b, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i) sprintf(out + 2 * i, "%02x", b[i]);
}

int main(void) {
  buf = malloc(4096);
  strcpy(buf, "initial");
  unsigned int mx = 0x7f80;
  __asm__ volatile("ldmxcsr %0" : : "m"(mx));
  int gen_fd = open("/proc/seedvisor/fork_generation", O_RDONLY);
  char line[512];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(0, line + len, 1);
    if (n <= 0) return 3;
    if (line[len] != '\n' && len < sizeof(line) - 2) {
      ++len;
      continue;
    }
    line[len] = 0;
    len = 0;
    char out[256];
    if (strncmp(line, "write ", 6) == 0) {
      snprintf(buf, 4096, "%s", line + 6);
      reply("ok");
    } else if (strcmp(line, "read") == 0) {
      reply(buf);
    } else if (strcmp(line, "rand") == 0) {
      unsigned char r[16];
      if (getrandom(r, sizeof(r), 0) != sizeof(r)) _exit(98);
      hex(r, sizeof(r), out);
      reply(out);
    } else if (strcmp(line, "urandom") == 0) {
      unsigned char r[16];
      int fd = open("/dev/urandom", O_RDONLY);
      if (fd < 0 || read(fd, r, sizeof(r)) != sizeof(r)) _exit(97);
      close(fd);
      hex(r, sizeof(r), out);
      reply(out);
    } else if (strcmp(line, "mxcsr") == 0) {
      unsigned int v = 0;
      __asm__ volatile("stmxcsr %0" : "=m"(v));
      snprintf(out, sizeof(out), "%#x", v);
      reply(out);
    } else if (strcmp(line, "pid") == 0) {
      snprintf(out, sizeof(out), "%d %d", (int)getpid(), (int)getppid());
      reply(out);
    } else if (strncmp(line, "wfile ", 6) == 0) {
      wfile(line + 6);
    } else if (strncmp(line, "rfile ", 6) == 0) {
      rfile(line + 6);
    } else if (strncmp(line, "mfile ", 6) == 0) {
      mfile(line + 6);
    } else if (strcmp(line, "gen") == 0) {
      char g[32] = {0};
      ssize_t k = pread(gen_fd, g, sizeof(g) - 1, 0);
      if (k > 0 && g[k - 1] == '\n') g[k - 1] = 0;
      reply(k > 0 ? g : "none");
    } else if (strcmp(line, "genpoll") == 0) {
      struct pollfd p = {gen_fd, POLLIN, 0};
      reply(poll(&p, 1, 0) == 1 && (p.revents & POLLIN) ? "1" : "0");
    } else if (strncmp(line, "exit ", 5) == 0) {
      _exit(atoi(line + 5));
    } else {
      reply("?");
    }
  }
}
