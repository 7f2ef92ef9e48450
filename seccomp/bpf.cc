#include "seccomp/bpf.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace seedvisor::seccomp {
std::string Dump(const std::vector<sock_filter>& prog) {
  std::string s;
  char line[64];
  for (const sock_filter& in : prog) {
    std::snprintf(line, sizeof(line), "%04x %02x %02x %08x\n", in.code, in.jt, in.jf, in.k);
    s += line;
  }
  return s;
}

int Install(const std::vector<sock_filter>& prog, bool tsync) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  sock_fprog fprog{static_cast<unsigned short>(prog.size()),
                   const_cast<sock_filter*>(prog.data())};
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                   tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0, &fprog);
  return r == 0 ? 0 : (r > 0 ? -ESRCH : -errno);
}

}  // namespace seedvisor::seccomp
