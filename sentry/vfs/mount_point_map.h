// MountPointMap: one mount namespace's mount points (which mount covers
// which dentry), and MountPointNames, what every namespace of a Vfs has
// mounted on, by name: the index that lets rmdir, unlink and rename skip
// the mount tables when no mount point is named like their object (the
// common case, one hash lookup).
//
//   auto names = std::make_shared<MountPointNames>();
//   MountPointMap points(names);
//   points.Set(at.get(), mount);                  // under the Vfs's mount lock
//   if (!names->HasPoint(victim.name())) { ... }  // not a mount point anywhere
#ifndef SEEDVISOR_SENTRY_VFS_MOUNT_POINT_MAP_H_
#define SEEDVISOR_SENTRY_VFS_MOUNT_POINT_MAP_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

// Counts, over every namespace of a Vfs, of the names of mount points
// (HasPoint) and of the names of mount points and their ancestors inside
// their mounts (HasAbove: a directory rename carries mounts along only if
// its name is one of these). A dentry's name and parent never change, so
// an entry is counted out exactly as it was counted in. Thread-safe (a
// namespace may end holding no lock of the Vfs's).
class MountPointNames {
 public:
  bool HasPoint(std::string_view name) const;
  bool HasAbove(std::string_view name) const;
  void Add(const Dentry& at);
  void Remove(const Dentry& at);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Counts = std::unordered_map<std::string, int, Hash, std::equal_to<>>;
  static void Count(Counts& c, const std::string& name, int delta);
  mutable std::mutex mu_;
  Counts points_;  // guarded by mu_
  Counts above_;   // guarded by mu_
};

// A namespace's mount point -> mount map (the Vfs's mount lock guards
// it), keeping MountPointNames up to date.
class MountPointMap {
 public:
  using Map = std::map<const Dentry*, Mount*>;
  explicit MountPointMap(std::shared_ptr<MountPointNames> names) : names_(std::move(names)) {}
  ~MountPointMap() { Clear(); }
  MountPointMap(const MountPointMap&) = delete;
  MountPointMap& operator=(const MountPointMap&) = delete;

  Mount* Find(const Dentry* at) const {
    auto it = map_.find(at);
    return it == map_.end() ? nullptr : it->second;
  }
  // Puts `m` on `at` (replacing what was there).
  void Set(const Dentry* at, Mount* m);
  // Takes `at` out; false if nothing was mounted there.
  bool Erase(const Dentry* at);
  Map::const_iterator Erase(Map::const_iterator it);
  void Clear();
  Map::const_iterator begin() const { return map_.begin(); }
  Map::const_iterator end() const { return map_.end(); }
  size_t size() const { return map_.size(); }

 private:
  std::shared_ptr<MountPointNames> names_;
  Map map_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_MOUNT_POINT_MAP_H_
