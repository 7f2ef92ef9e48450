// Runs a command under a libseccomp filter, as container tools and
// services do: every syscall allowed except the ones named, which fail
// with EPERM.
//
//   seccomp_deny mkdir,mkdirat -- /bin/mkdir /tmp/x   # "Operation not permitted"
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    fprintf(stderr, "usage: %s SYSCALL[,SYSCALL...] -- COMMAND [ARG...]\n", argv[0]);
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) return 2;
  for (char* name = strtok(argv[1], ","); name != NULL; name = strtok(NULL, ",")) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      fprintf(stderr, "seccomp_deny: unknown syscall %s\n", name);
      return 2;
    }
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) != 0) return 2;
  }
  // seccomp_load() sets no_new_privs first (SCMP_FLTATR_CTL_NNP).
  int r = seccomp_load(ctx);
  if (r != 0) {
    fprintf(stderr, "seccomp_deny: seccomp_load: %s\n", strerror(-r));
    return 2;
  }
  seccomp_release(ctx);
  execv(argv[3], argv + 3);
  fprintf(stderr, "seccomp_deny: exec %s: %s\n", argv[3], strerror(errno));
  return 127;
}
