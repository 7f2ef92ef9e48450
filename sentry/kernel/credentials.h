// Credentials: a task's user and group ids (credentials(7)).
#ifndef SEEDVISOR_SENTRY_KERNEL_CREDENTIALS_H_
#define SEEDVISOR_SENTRY_KERNEL_CREDENTIALS_H_

#include <sys/types.h>

#include <vector>

namespace seedvisor::sentry {

struct Credentials {
  uid_t ruid = 0, euid = 0, suid = 0, fsuid = 0;
  gid_t rgid = 0, egid = 0, sgid = 0, fsgid = 0;
  std::vector<gid_t> groups;
  // Root in the sandbox has every capability; others none (no file caps).
  bool privileged() const { return euid == 0; }
  bool InGroup(gid_t g) const;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_CREDENTIALS_H_
