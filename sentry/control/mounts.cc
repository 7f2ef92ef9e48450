#include "sentry/control/mounts.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "seccomp/sentry_filter.h"
#include "sentry/base/log.h"
#include "sentry/fs/host/host.h"
#include "sentry/fs/host/host_rw.h"
#include "sentry/fs/mqueue/mqueue.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/fs/sys/sys.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::control {
namespace {

bool Has(const std::vector<std::string>& opts, const std::string& o) {
  for (const auto& x : opts) {
    if (x == o) return true;
  }
  return false;
}

// The root of a bind mount of the host path `source` (a directory, or a
// regular file such as the /etc/resolv.conf, /etc/hosts, /etc/hostname and
// /dev/termination-log containerd's CRI binds): read-only, the host's
// files (host.h); writable, the host's files written through
// (host_rw.h), as runc and runsc give them.
absl::StatusOr<sentry::InodeRef> BindRoot(const std::string& source, bool ro) {
  struct stat st;
  bool file = stat(source.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
  if (ro) {
    auto root = file ? sentry::NewHostFile(source) : sentry::NewHostFs(source);
    if (!root.ok()) return root.status();
    return sentry::InodeRef(*root);
  }
  // The sentry's seccomp filter must let it make and change host files.
  if (!seccomp::RequestHostWrites()) {
    return absl::FailedPreconditionError(
        "a writable bind mount in a sandbox whose filter was installed without host writes "
        "(its first container had no writable bind and was no pod sandbox); mount it \"ro\"");
  }
  auto root = file ? sentry::NewHostRwFile(source) : sentry::NewHostRwFs(source);
  if (!root.ok()) return root.status();
  return sentry::InodeRef(*root);
}

}  // namespace

bool IsBindMount(const MountSpec& m) {
  return m.type == "bind" || Has(m.options, "bind") || Has(m.options, "rbind");
}

absl::Status ApplyMounts(sentry::Vfs& vfs, const std::vector<MountSpec>& mounts,
                         const std::string& under) {
  for (const MountSpec& m : mounts) {
    const std::string at = under + m.destination;
    bool bind = IsBindMount(m);
    bool ro = Has(m.options, "ro");
    std::string opts = ro ? "ro" : "rw";
    if (bind) {
      auto root = BindRoot(m.source, ro);
      if (!root.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("mount ", m.destination, ": bind source ",
                                                       m.source, ": ", root.status().message()));
      }
      absl::Status s = vfs.MountAt(at, std::make_shared<sentry::Mount>(
                                                      "bind", m.source, opts, *root));
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("mount ", m.destination, ": ", s.message()));
      continue;
    }
    if (m.type == "tmpfs" && m.destination != "/dev" && m.destination != "/dev/shm") {
      mode_t mode = 01777;
      for (const auto& o : m.options) {
        if (o.rfind("mode=", 0) == 0) mode = static_cast<mode_t>(std::strtoul(o.c_str() + 5, nullptr, 8));
      }
      absl::Status s = vfs.MountAt(
          at, std::make_shared<sentry::Mount>("tmpfs", m.source.empty() ? "tmpfs" : m.source,
                                                         absl::StrCat(opts, ",", absl::StrJoin(m.options, ",")),
                                                         sentry::NewTmpfs(mode)));
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("mount ", m.destination, ": ", s.message()));
      continue;
    }
    // /proc, /dev, /dev/shm and the devpts on /dev/pts exist already (the
    // sandbox has one devpts instance, so a "newinstance" is that one).
    if (m.type == "devpts" && m.destination == "/dev/pts") continue;
    if (m.type == "sysfs") {
      // Always read-only: the sentry's /sys is synthetic (sys.h).
      absl::Status s = vfs.MountAt(at, std::make_shared<sentry::Mount>(
                                                      "sysfs", "sysfs", "ro,nosuid,nodev,noexec",
                                                      sentry::NewSysFs()));
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("mount ", m.destination, ": ", s.message()));
      continue;
    }
    if (m.type == "mqueue") {
      // The sandbox's POSIX message queues, as every mqueue mount of one
      // IPC namespace shows them.
      sentry::Kernel* k = vfs.kernel();
      if (k == nullptr) return absl::InternalError("mount mqueue: no kernel");
      absl::Status s = vfs.MountAt(at, k->mqueue().NewMount());
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("mount ", m.destination, ": ", s.message()));
      continue;
    }
    // cgroup filesystems are not implemented by the sentry.
    Log::Debug("mount %s (%s): not applied in the sandbox", m.destination, m.type);
  }
  return absl::OkStatus();
}

absl::Status ApplyPathRules(sentry::Vfs& vfs, const std::vector<std::string>& readonly_paths,
                            const std::vector<std::string>& masked_paths, const std::string& under) {
  for (const std::string& p : readonly_paths) {
    if (absl::Status s = vfs.ReadOnlyPath(under + p); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("linux.readonlyPaths: ", s.message()));
    }
  }
  for (const std::string& p : masked_paths) {
    if (absl::Status s = vfs.MaskPath(under + p); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("linux.maskedPaths: ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::control
