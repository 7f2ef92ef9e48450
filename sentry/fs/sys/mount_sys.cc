#include "sentry/fs/sys/mount_sys.h"

#include <memory>

#include "sentry/fs/sys/sys.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

absl::Status MountSysFs(Kernel& k, std::string_view path) {
  return k.vfs().MountAt(path, std::make_shared<Mount>("sysfs", "sysfs", "ro,nosuid,nodev,noexec",
                                                       NewSysFs()));
}

}  // namespace seedvisor::sentry
