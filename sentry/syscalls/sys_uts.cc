// The system's identity and entropy: uname, the host and domain names, getrandom.
#include <linux/capability.h>
#include <sys/random.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {

SyscallReturn SysUname(Task& t, const SyscallArgs& a) {
  struct utsname u {};
  std::strncpy(u.sysname, "Linux", sizeof(u.sysname) - 1);
  std::strncpy(u.nodename, t.uts().hostname().c_str(), sizeof(u.nodename) - 1);
  std::strncpy(u.release, Kernel::kRelease, sizeof(u.release) - 1);
  std::strncpy(u.version, Kernel::kVersion, sizeof(u.version) - 1);
  std::strncpy(u.machine, "x86_64", sizeof(u.machine) - 1);
  std::strncpy(u.domainname, t.uts().domainname().c_str(), sizeof(u.domainname) - 1);
  SV_TRY(t.CopyOutObj(a.Addr(0), u));
  return 0;
}

namespace {

// sethostname(2)/setdomainname(2): CAP_SYS_ADMIN (of the sandbox's user
// namespace), in the caller's UTS namespace, at most __NEW_UTS_LEN (64) bytes, not NUL-terminated.
Result<std::string> CopyInUtsName(Task& t, const SyscallArgs& a) {
  if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  size_t len = a.Size(1);
  if (len > 64) return Errno(EINVAL);
  std::string name(len, '\0');
  SV_TRY(t.CopyIn(a.Addr(0), name.data(), len));
  return name;
}

}  // namespace

SyscallReturn SysSethostname(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::string name, CopyInUtsName(t, a));
  t.uts().set_hostname(std::move(name));
  return 0;
}

SyscallReturn SysSetdomainname(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::string name, CopyInUtsName(t, a));
  t.uts().set_domainname(std::move(name));
  return 0;
}

SyscallReturn SysGetrandom(Task& t, const SyscallArgs& a) {
  unsigned flags = a.Uint(2);
  if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return Errno(EINVAL);
  size_t len = std::min<size_t>(a.Size(1), 32 * 1024 * 1024);
  std::vector<char> buf(std::min<size_t>(len, 1 << 20));
  size_t done = 0;
  while (done < len) {
    size_t chunk = std::min(buf.size(), len - done);
    ssize_t n = getrandom(buf.data(), chunk, 0);
    if (n <= 0) return done > 0 ? Result<uint64_t>(done) : Result<uint64_t>(Errno(EIO));
    SV_TRY(t.CopyOut(a.Addr(0) + done, buf.data(), static_cast<size_t>(n)));
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace seedvisor::sentry
