// A hostile guest that tries every syscall number 0..500 with odd arguments
// (zeros, all ones, unmapped and kernel addresses, a real buffer), each in a
// child of its own so that whatever one call does (block, kill itself,
// unmap its stack) cannot stop the run. The sentry must survive all of it:
// syscall_fuzz_test.sh checks that seedsc exits with this program's status
// and that the sentry's own seccomp filter never had to deny a host call.
//
// Never run this natively as root: calls like sethostname(NULL, 0),
// kexec_load(0, ...) or vhangup() change the host. It is a sandbox test.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_NR 500
#define EXIT_OK 7  // what the test expects seedsc to exit with

static unsigned char buf[4096] __attribute__((aligned(4096)));

// Argument sets; a set of six words is passed as is.
static void fill_args(int set, uint64_t a[6]) {
  for (int i = 0; i < 6; i++) {
    switch (set) {
      case 0: a[i] = 0; break;
      case 1: a[i] = ~0ULL; break;
      case 2: a[i] = 0x10; break;                   // unmapped, near NULL
      case 3: a[i] = 0xffffffff81000000ULL; break;  // kernel address
      case 4: a[i] = (uint64_t)(uintptr_t)buf; break;  // a real buffer
      default: a[i] = i == 0 ? (uint64_t)(uintptr_t)buf : 0x7fffffff; break;  // buf, big sizes
    }
  }
}
#define NSETS 6

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(int argc, char** argv) {
  int first = 0, last = MAX_NR;
  if (argc > 2) {
    first = atoi(argv[1]);
    last = atoi(argv[2]);
  }
  memset(buf, 0xff, sizeof(buf));
  int tried = 0, signaled = 0, timeouts = 0;
  for (int nr = first; nr <= last; nr++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("syscall_fuzz: fork");
      return 2;
    }
    if (pid == 0) {
      // Keep the test's stdio out of it; a call may write anywhere.
      int devnull = open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
      }
      for (int set = 0; set < NSETS; set++) {
        uint64_t a[6];
        fill_args(set, a);
        memset(buf, 0xff, sizeof(buf));
        syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      }
      _exit(0);
    }
    tried++;
    int status = 0;
    long deadline = now_ms() + 500;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline) usleep(1000);
    if (r == 0) {  // blocked (pause, futex wait, read ...): end it
      timeouts++;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    } else if (r == pid && WIFSIGNALED(status)) {
      signaled++;
    }
    // Grandchildren (fork, clone, vfork) were reparented to us or died.
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  printf("syscall_fuzz: tried syscalls %d..%d (%d children, %d argument sets each): "
         "%d killed by a signal, %d timed out\n",
         first, last, tried, NSETS, signaled, timeouts);
  return EXIT_OK;
}
