// The overlay's inode numbers. The sandbox root shows one st_dev, yet its
// lower layer (the host root) spans many host file systems (a tmpfs or
// /boot below it), whose inode numbers repeat: every ext4 root is inode 2,
// every fresh tmpfs numbers its files from the same start. Shown as they
// are, two different files could share (st_dev, st_ino), and tar, cp -a,
// find -samefile and git would take them for one. As overlayfs' xino does,
// the host device goes into st_ino's high bits: 16 bits name the device,
// 48 carry its inode number.
//
// Index 0 is the lower root's device (its numbers show unchanged), 1 the
// upper layer's objects made in the sandbox, 0xffff numbers that do not fit
// (an inode number of 2^48 or more, or no index left): those are numbered in
// order of first sight. Another device's index comes from a hash of the
// device number, probing on to the next free one on a collision, so that
// it is the same in most sandboxes over one host, not only within one.
//
//   InodeNumbers numbers(root_st.st_dev);
//   st.st_ino = numbers.Fold(host_st.st_dev, host_st.st_ino);
#ifndef SEEDVISOR_SENTRY_FS_OVERLAY_INODE_NUMBERS_H_
#define SEEDVISOR_SENTRY_FS_OVERLAY_INODE_NUMBERS_H_

#include <sys/types.h>

#include <bitset>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace seedvisor::sentry {

class InodeNumbers {
 public:
  static constexpr int kShift = 48;
  static constexpr uint64_t kLowMask = (uint64_t{1} << kShift) - 1;
  static constexpr uint64_t kUpperIndex = 1;
  static constexpr uint64_t kSpillIndex = 0xffff;

  // `root_dev`: the lower root's host device (none: no lower layer, or its
  // stat failed; every device is then hashed).
  explicit InodeNumbers(std::optional<dev_t> root_dev) : root_dev_(root_dev) {}

  // The number a lower object of host device `dev` and inode `ino` shows:
  // one per (dev, ino), the same for the overlay's life.
  ino_t Fold(dev_t dev, ino_t ino);

  // The number an object of the upper layer alone shows (its tmpfs inode
  // number `upper_ino`).
  static ino_t Upper(ino_t upper_ino) {
    return static_cast<ino_t>((kUpperIndex << kShift) | (upper_ino & kLowMask));
  }

 private:
  // The device's index (kSpillIndex once all are taken).
  uint64_t IndexLocked(dev_t dev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::optional<dev_t> root_dev_;
  absl::Mutex mu_;
  std::unordered_map<dev_t, uint64_t> index_ ABSL_GUARDED_BY(mu_);
  std::bitset<kSpillIndex + 1> taken_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<dev_t, ino_t>, ino_t> spilled_ ABSL_GUARDED_BY(mu_);
  uint64_t next_spilled_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_OVERLAY_INODE_NUMBERS_H_
