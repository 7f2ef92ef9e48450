// overlay_fs: the state one overlay's inodes share (private to
// sentry/fs/overlay: overlay.cc and copy_up.cc).
#ifndef SEEDVISOR_SENTRY_FS_OVERLAY_OVERLAY_FS_H_
#define SEEDVISOR_SENTRY_FS_OVERLAY_OVERLAY_FS_H_

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "sentry/fs/overlay/inode_numbers.h"

namespace seedvisor::sentry {

struct OverlayFs {
  explicit OverlayFs(std::optional<dev_t> lower_root_dev) : numbers(lower_root_dev) {}

  dev_t dev = 0;
  // What lower objects and copy-ups show as st_ino and d_ino: one st_dev
  // for the whole overlay, so the host device goes into the number.
  InodeNumbers numbers;
  // Copied-up objects: the upper node's inode number -> the lower object's
  // host device and inode number. A lookup after the copy-up makes an
  // OverlayInode without lower_; this keeps its LockKey the one the object
  // had before (and has in OverlayInodes made before).
  std::mutex origins_mu;
  std::map<ino_t, std::pair<dev_t, ino_t>> origins;

  // The lower object (host device, inode number) the upper node numbered
  // `upper_ino` was copied up from, if it was.
  std::optional<std::pair<dev_t, ino_t>> Origin(ino_t upper_ino) {
    std::lock_guard l(origins_mu);
    auto it = origins.find(upper_ino);
    if (it == origins.end()) return std::nullopt;
    return it->second;
  }
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_OVERLAY_OVERLAY_FS_H_
