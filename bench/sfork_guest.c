// The static guest of bench/sfork_bench.sh: touches MIB MiB of heap (every
// page written, so a fork has that much private memory to share
// copy-on-write), then echoes stdin to stdout one byte at a time. As a seed
// it is paused blocked in read(2); in a fork that read restarts on the
// fork's own stdin, which the bench has already filled, so the byte that
// comes back on the fork's stdout is the first thing the forked guest does.
//
//   sfork_guest MIB            the seed (and the cold-start program)
//   sfork_guest MIBs           the same with the MiB in shared anonymous
//                              memory (MAP_SHARED: a sandbox fork copies it)
//   sfork_guest MIBt           the same, and before each echo it reads one
//                              byte of every page of the MiB (a request
//                              whose working set is the seed's heap: in a
//                              kvm fork each page is a fault of the new
//                              VM's, what EPT prefill would save)
//   sfork_guest MIB --fork     the native floor: for each byte read, fork();
//                              the child writes the byte and exits, the
//                              parent reaps it and reads on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
  int fork_mode = argc > 2 && strcmp(argv[2], "--fork") == 0;
  const char suffix = argc > 1 && argv[1][0] != '\0' ? argv[1][strlen(argv[1]) - 1] : '\0';
  volatile char* p = NULL;
  size_t len = mib << 20;
  if (mib > 0) {
    p = suffix == 's' ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                      : malloc(len);
    if (p == NULL || p == MAP_FAILED) return 2;
    for (size_t i = 0; i < len; i += 4096) p[i] = (char)(i >> 12 | 1);
  }
  char c;
  for (;;) {
    ssize_t n = read(0, &c, 1);
    if (n <= 0) return n == 0 ? 0 : 3;
    if (suffix == 't') {
      char sum = 0;
      for (size_t i = 0; i < len; i += 4096) sum ^= p[i];
      if (sum == (char)0xff) c = '?';  // keeps the reads; never true for MiB > 0
    }
    if (!fork_mode) {
      if (write(1, &c, 1) != 1) return 4;
      continue;
    }
    pid_t pid = fork();
    if (pid < 0) return 5;
    if (pid == 0) _exit(write(1, &c, 1) == 1 ? 0 : 4);
    if (waitpid(pid, NULL, 0) != pid) return 6;
  }
}
