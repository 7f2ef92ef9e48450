// Landlock (landlock(7)): a task's self-imposed file-system sandbox.
//
// A LandlockRuleset is what landlock_create_ruleset(2) returns an fd for:
// the access rights it handles and path-beneath rules (a file or directory,
// and the rights allowed on it and below it), which landlock_add_rule(2)
// adds. landlock_restrict_self(2) freezes a copy of it as one more layer of
// the task's LandlockDomain (at most kLandlockMaxLayers). The domain is
// part of the task's credentials: fork, clone and execve keep it, a sandbox
// fork copies it with the rest of sentry memory, and nothing removes a
// layer.
//
// An access is allowed when every layer that handles it has a rule granting
// it on the file or on a directory above it, walking up the mounts to the
// sandbox's real root (is_access_to_paths_allowed() in
// security/landlock/fs.c); otherwise EACCES. Rules name files by their
// FileLockKey, so every path (a bind, another namespace's copy, an overlay
// object before or after its copy-up) reaches the same rule, as Linux ties
// rules to inodes.
//
//   auto rs = std::make_shared<LandlockRuleset>(kLandlockAccessFsReadFile);
//   rs->AddRule(dir_dentry, kLandlockAccessFsReadFile);
//   auto dom = LandlockDomain::Restrict(nullptr, *rs);       // one layer
//   SV_TRY(LandlockCheckPath(dom->get(), file_dentry, kLandlockAccessFsReadFile));
#ifndef SEEDVISOR_SENTRY_VFS_LANDLOCK_H_
#define SEEDVISOR_SENTRY_VFS_LANDLOCK_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "sentry/base/errno.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

// The rights of uapi/linux/landlock.h that the sentry enforces: ABI 3.
inline constexpr uint64_t kLandlockAccessFsExecute = 1ULL << 0;
inline constexpr uint64_t kLandlockAccessFsWriteFile = 1ULL << 1;
inline constexpr uint64_t kLandlockAccessFsReadFile = 1ULL << 2;
inline constexpr uint64_t kLandlockAccessFsReadDir = 1ULL << 3;
inline constexpr uint64_t kLandlockAccessFsRemoveDir = 1ULL << 4;
inline constexpr uint64_t kLandlockAccessFsRemoveFile = 1ULL << 5;
inline constexpr uint64_t kLandlockAccessFsMakeChar = 1ULL << 6;
inline constexpr uint64_t kLandlockAccessFsMakeDir = 1ULL << 7;
inline constexpr uint64_t kLandlockAccessFsMakeReg = 1ULL << 8;
inline constexpr uint64_t kLandlockAccessFsMakeSock = 1ULL << 9;
inline constexpr uint64_t kLandlockAccessFsMakeFifo = 1ULL << 10;
inline constexpr uint64_t kLandlockAccessFsMakeBlock = 1ULL << 11;
inline constexpr uint64_t kLandlockAccessFsMakeSym = 1ULL << 12;
inline constexpr uint64_t kLandlockAccessFsRefer = 1ULL << 13;
inline constexpr uint64_t kLandlockAccessFsTruncate = 1ULL << 14;
inline constexpr uint64_t kLandlockAccessFsAll = (1ULL << 15) - 1;
// What may be granted on a non-directory (ACCESS_FILE in fs.c): a rule on
// a file with any other right is EINVAL.
inline constexpr uint64_t kLandlockAccessFile = kLandlockAccessFsExecute |
                                                kLandlockAccessFsWriteFile |
                                                kLandlockAccessFsReadFile |
                                                kLandlockAccessFsTruncate;
inline constexpr int kLandlockAbiVersion = 3;
// LANDLOCK_MAX_NUM_LAYERS: landlock_restrict_self(2) is E2BIG past it.
inline constexpr size_t kLandlockMaxLayers = 16;
// Rules per ruleset. Linux's bound is U32_MAX (memory-limited); the sentry
// bounds what a guest may make it keep, with the same E2BIG.
inline constexpr size_t kLandlockMaxRules = 1 << 16;

// The MAKE_* right for creating an object of type `mode & S_IFMT`
// (get_mode_access()): anything unusual counts as a regular file.
uint64_t LandlockMakeAccess(mode_t mode);

// A ruleset being built (a landlock_create_ruleset(2) fd's).
class LandlockRuleset {
 public:
  explicit LandlockRuleset(uint64_t handled) : handled_(handled) {}
  uint64_t handled() const { return handled_; }
  // landlock_add_rule(LANDLOCK_RULE_PATH_BENEATH): `access` on `d` and
  // below, added to what an earlier rule on the same file allows. EINVAL
  // for rights outside handled() or directory rights on a file, ENOMSG
  // for none, E2BIG past kLandlockMaxRules.
  Status AddRule(const DentryRef& d, uint64_t access);

 private:
  friend class LandlockDomain;
  struct Rule {
    InodeRef keep;  // the file's key stays its own while the rule lives
    uint64_t access = 0;
  };
  const uint64_t handled_;
  std::mutex mu_;
  std::map<FileLockKey, Rule> rules_ ABSL_GUARDED_BY(mu_);
};

// A task's stack of frozen rulesets. Immutable: restricting makes a new one.
class LandlockDomain {
 public:
  struct Layer {
    uint64_t handled = 0;  // with kLandlockAccessFsRefer, always handled
    std::map<FileLockKey, uint64_t> rules;
    std::vector<InodeRef> keep;
  };
  // `prev` (may be null) with `rs` on top; E2BIG past kLandlockMaxLayers.
  static Result<std::shared_ptr<const LandlockDomain>> Restrict(
      const std::shared_ptr<const LandlockDomain>& prev, LandlockRuleset& rs);
  size_t layers() const { return layers_.size(); }
  const Layer& layer(size_t i) const { return *layers_[i]; }

 private:
  std::vector<std::shared_ptr<const Layer>> layers_;
};

// Per layer, the rights a check still lacks (bit i of entry L: layer L
// has not granted right i yet).
using LandlockMasks = std::vector<uint64_t>;

// The part of `access` that `dom` allows on what `d` names (all of it for
// a null `dom`): hook_file_open() keeps it for the optional TRUNCATE.
uint64_t LandlockAllowed(const LandlockDomain* dom, const DentryRef& d, uint64_t access);

// current_check_access_path(): `access` on what `d` names. EACCES unless
// allowed; null `dom` allows everything.
Status LandlockCheckPath(const LandlockDomain* dom, const DentryRef& d, uint64_t access);

// current_check_refer_path(): link(2) (`removable` false) or rename(2) of
// `old_child`, found in the directory `old_dir`, into the directory
// `new_dir`, where `new_child` is what the new name holds now (null:
// nothing). The directories are the walks' own dentries: "the same
// directory" is dentry identity, as d_parent == new_dir is in Linux. EACCES if a creation or removal is
// not allowed, EXDEV if the object would gain rights by moving or a side
// lacks LANDLOCK_ACCESS_FS_REFER.
Status LandlockCheckRefer(const LandlockDomain* dom, const DentryRef& old_dir,
                          const DentryRef& old_child, const DentryRef& new_dir, const DentryRef& new_child, bool removable,
                          bool exchange);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_LANDLOCK_H_
