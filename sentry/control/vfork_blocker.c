// A guest for server_test's pause of a vfork parent: vforks a child that
// says so on stdout, then blocks reading a byte of stdin (until the test
// writes it) before it execs /bin/true. Meanwhile the parent waits for the
// child's exec (vfork(2)); it prints "parent resumed" and the child's
// status after.
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  pid_t child = vfork();
  if (child == 0) {
    // Only system calls in the child: it shares the parent's memory.
    static const char kSaid[] = "child blocks\n";
    char byte;
    syscall(SYS_write, 1, kSaid, sizeof(kSaid) - 1);
    if (syscall(SYS_read, 0, &byte, 1) != 1) _exit(3);
    execl("/bin/true", "true", (char*)NULL);
    _exit(4);
  }
  if (child < 0) return 5;
  int status = 0;
  if (waitpid(child, &status, 0) != child) return 6;
  printf("parent resumed %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
  return 0;
}
