// The sandbox's own /sys (sys.h) mounted read-only at `path` of a kernel's
// root mount namespace: `seedsc do` runs over the host's root, whose /sys
// would be the host's sysfs.
//
//   RETURN_IF_ERROR(MountSysFs(kernel, "/sys"));
#ifndef SEEDVISOR_SENTRY_FS_SYS_MOUNT_SYS_H_
#define SEEDVISOR_SENTRY_FS_SYS_MOUNT_SYS_H_

#include <string_view>

#include "absl/status/status.h"

namespace seedvisor::sentry {

class Kernel;

absl::Status MountSysFs(Kernel& k, std::string_view path);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_SYS_MOUNT_SYS_H_
