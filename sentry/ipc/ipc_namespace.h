// IpcNamespace: the sandbox's System V IPC objects — semaphore sets, shared
// memory segments and message queues — with their keys and ids. One per
// kernel (each sandbox has its own IPC namespace, as a container does):
// made on first use, sentry memory only, so a sandbox fork copies it whole
// (the shm segments' data follows the tmpfs rules, sentry/sfork).
//
//   IpcNamespace& ns = t.kernel().ipc();
//   SV_ASSIGN_OR_RETURN(int id, ns.sems().Get(t, key, nsems, flags));
#ifndef SEEDVISOR_SENTRY_IPC_IPC_NAMESPACE_H_
#define SEEDVISOR_SENTRY_IPC_IPC_NAMESPACE_H_

#include <string>

#include "sentry/ipc/msg.h"
#include "sentry/ipc/sem.h"
#include "sentry/ipc/shm.h"

namespace seedvisor::sentry {

class IpcNamespace {
 public:
  SemRegistry &sems() { return sems_; }
  ShmRegistry &shms() { return shms_; }
  MsgRegistry &msgs() { return msgs_; }

 private:
  SemRegistry sems_;
  ShmRegistry shms_;
  MsgRegistry msgs_;
};

// The limits /proc/sys/kernel shows (Linux's defaults; fixed here).
std::string IpcLimitText(const std::string &name);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_IPC_IPC_NAMESPACE_H_
