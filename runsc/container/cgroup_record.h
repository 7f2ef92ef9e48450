// Which cgroup directories seedsc made, so that it removes those and no
// other (review 35): with Kubernetes' cgroupsPath the parents are the
// kubelet's pod and QoS cgroups, with a user's path a slice of theirs;
// runc leaves them, and so must seedsc, even once they are empty.
//
// A parent seedsc made is shared: containerd's namespace cgroup
// (/sys/fs/cgroup/<controller>/<ns>) is made by the first container's
// sandbox and outlives it while others live in it; the last one to go
// removes it. So the record belongs to no container: it is one file under
// seedsc's --root (shared by every container of that root), read and
// written under an exclusive flock of the --root directory itself (no lock
// file is left behind; the same lock Lock::CreateDir's rename fallback
// takes for a moment). A record names a directory by its path and its
// inode: a directory removed by someone else and made again (by the
// kubelet) is not the one seedsc made.
//
//   absl::StatusOr<CgroupRecord> r = CgroupRecord::Open(root);  // locked
//   r->Intend(d);
//   RETURN_IF_ERROR(r->Save());
//   if (mkdir(d, 0755) == 0) r->Add(d); else r->Drop(d);  // made, or not
//   RETURN_IF_ERROR(r->Save());
//   ...
//   if (r->Made(d) && rmdir(d) == 0) r->Drop(d);
//   RETURN_IF_ERROR(r->Save());          // the lock goes with r
#ifndef SEEDVISOR_RUNSC_CONTAINER_CGROUP_RECORD_H_
#define SEEDVISOR_RUNSC_CONTAINER_CGROUP_RECORD_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace seedvisor::container {

class CgroupRecord {
 public:
  // The file under --root that holds the record ('@' is not in any
  // container id, so it is never a state dir); absent while empty.
  static constexpr const char* kFileName = "cgroups@made";

  // Locks `root` (made if missing: the shim forks sandboxes before any
  // seedsc create made it) and reads the record. Errors name the file.
  static absl::StatusOr<CgroupRecord> Open(const std::string& root);

  CgroupRecord(CgroupRecord&& o) noexcept;
  CgroupRecord& operator=(CgroupRecord&&) = delete;
  ~CgroupRecord();  // unlocks (what was not saved is lost)

  // Whether seedsc made `dir`: it is recorded and is still the directory
  // it made (same inode), or it is pending (Intend) and exists. False for a
  // directory that does not exist.
  bool Made(const std::string& dir) const;
  // The inode `dir` was recorded with: kPending for one that is pending,
  // nullopt if it is not recorded.
  static constexpr ino_t kPending = 0;
  std::optional<ino_t> Recorded(const std::string& dir) const;
  // Records `dir` as pending: about to be made by this seedsc. Saved
  // before the mkdir, so that a seedsc killed right after it (a sandbox's
  // boot ended by create's --boot-timeout) leaves no directory that no
  // record names.
  void Intend(const std::string& dir);
  // Records `dir` (just made by this seedsc) with its inode now.
  void Add(const std::string& dir);
  // Forgets `dir` if it is recorded with inode `ino` (nullopt: any).
  void Drop(const std::string& dir, std::optional<ino_t> ino = std::nullopt);

  // Forgets every directory that is gone, or is not the one seedsc made
  // (someone else removed it, maybe made it anew), pending ones included:
  // for a caller that made none pending (a removal), so that entries for
  // directories others removed do not pile up.
  void ForgetStale();

  // Writes the record (a new file renamed over the old one; the file is
  // removed when nothing is recorded). The lock stays until destruction.
  absl::Status Save();

 private:
  CgroupRecord(std::string root, int lock_fd) : root_(std::move(root)), lock_fd_(lock_fd) {}
  std::string root_;
  int lock_fd_;
  std::map<std::string, ino_t> dirs_;  // path -> inode when made
};

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_CGROUP_RECORD_H_
