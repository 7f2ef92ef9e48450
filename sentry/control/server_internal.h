// What the control server's files share (server.cc: the server and the
// sandbox-wide calls; server_process.cc: a container's processes;
// server_container.cc: a pod's containers made and removed). Private to
// sentry/control.
#ifndef SEEDVISOR_SENTRY_CONTROL_SERVER_INTERNAL_H_
#define SEEDVISOR_SENTRY_CONTROL_SERVER_INTERNAL_H_

#include <cstdint>

#include "sentry/control/control.pb.h"
#include "sentry/kernel/credentials.h"

namespace seedvisor::control {

// CLOCK_REALTIME in ns: when a process exited, as the caller is told.
int64_t RealtimeNs();

// A process's credentials from a request's user.
sentry::Credentials CredsOf(const v1::User& u);

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_SERVER_INTERNAL_H_
