#include "sentry/ipc/ipc_object.h"

#include <linux/capability.h>
#include <time.h>

namespace seedvisor::sentry {

Status IpcPerm::Check(const Credentials &c, int want) const {
  // ipcperms(): the request for each class, compared with the class that
  // applies to the caller.
  const int requested = (want >> 6) | (want >> 3) | want;
  int granted = static_cast<int>(mode);
  if (c.euid == uid || c.euid == cuid) {
    granted >>= 6;
  } else if (c.InGroup(gid) || c.InGroup(cgid)) {
    granted >>= 3;
  }
  if ((requested & ~granted & 0007) && !c.HasCap(CAP_IPC_OWNER)) return Errno(EACCES);
  return {};
}

Status IpcPerm::CheckOwner(const Credentials &c) const {
  if (c.euid == uid || c.euid == cuid || c.HasCap(CAP_SYS_ADMIN)) return {};
  return Errno(EPERM);
}

void IpcPerm::Set(const GuestIpcPerm &p) {
  uid = p.uid;
  gid = p.gid;
  mode = (mode & ~0777u) | (p.mode & 0777);
}

GuestIpcPerm IpcPerm::ToGuest() const {
  GuestIpcPerm g{};
  g.key = key;
  g.uid = uid;
  g.gid = gid;
  g.cuid = cuid;
  g.cgid = cgid;
  g.mode = mode;
  g.seq = seq;
  return g;
}

int64_t IpcNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec;
}

}  // namespace seedvisor::sentry
