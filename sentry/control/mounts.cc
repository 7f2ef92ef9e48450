#include "sentry/control/mounts.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sentry/base/log.h"
#include "sentry/fs/host/host.h"
#include "sentry/fs/mqueue/mqueue.h"
#include "sentry/fs/overlay/overlay.h"
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

// The root of a bind mount of the host path `source`. A directory: the
// host's, read-only, under an in-sandbox overlay when writable (writes stay
// in the sandbox, as with the root). A regular file (containerd's CRI binds
// /etc/resolv.conf, /etc/hosts, /etc/hostname, /dev/termination-log):
// read-only, the host's file; writable, a sandbox copy of it (a tmpfs file:
// again, writes never reach the host).
absl::StatusOr<sentry::InodeRef> BindRoot(const std::string& source, bool ro) {
  struct stat st;
  if (stat(source.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    auto file = sentry::NewHostFile(source);
    if (!file.ok() || ro) return file;
    auto dir = sentry::NewTmpfs(0755);
    sentry::FsCreds c;
    c.uid = st.st_uid;
    c.gid = st.st_gid;
    auto copy = dir->Create("copy", st.st_mode & 07777, c);
    auto src = (*file)->OpenForRead();
    if (!copy.ok() || !src.ok()) {
      return absl::InternalError(absl::StrCat("a sandbox copy of host file ", source, ": ",
                                              strerror((copy.ok() ? src.error() : copy.error()).value())));
    }
    auto writable = std::static_pointer_cast<sentry::TmpfsInode>(*copy)->WritableMemfd();
    if (!writable.ok()) {
      close(*src);
      return absl::InternalError(absl::StrCat("a sandbox copy of host file ", source, ": ",
                                              strerror(writable.error().value())));
    }
    int dst = *writable;
    char buf[65536];
    for (off_t off = 0;;) {
      ssize_t n = read(*src, buf, sizeof(buf));
      if (n <= 0 || pwrite(dst, buf, n, off) != n) {
        int e = errno;
        close(*src);
        if (n == 0) return *copy;
        return absl::InternalError(absl::StrCat("a sandbox copy of host file ", source, ": ", strerror(e)));
      }
      off += n;
    }
  }
  auto host = sentry::NewHostFs(source);
  if (!host.ok()) return host.status();
  if (ro) return sentry::InodeRef(*host);
  return sentry::InodeRef(sentry::NewOverlay(sentry::NewTmpfs(0755), *host));
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
