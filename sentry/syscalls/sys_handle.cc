// name_to_handle_at(2) and open_by_handle_at(2).
//
// A handle is an opaque 64-bit id into the sandbox's table of named
// objects (one per sentry process, so a sandbox fork keeps its handles):
// the id of an object stays the same while the object lives, whichever
// path named it. Ids are random (nothing of the host's inode numbers or
// of how many objects were named shows through them), and an id is the
// object's in the mount namespace that named it only: another namespace
// gets an id of its own, and a handle from one is ESTALE in another.
// Opening a handle is an open(2) of the object through the VFS (Landlock,
// FIFO and ETXTBSY rules apply) that breaks leases as open(2) does. Opening a handle finds the object again through the
// dentry it was named by, or, once nothing holds that dentry any more, by
// walking its path from its mount's root and checking the device and inode
// number; an object removed since is ESTALE, as a handle of a deleted file
// is on Linux. Handles name objects of the filesystems Linux can export
// (tmpfs, overlay, host files, sysfs), not those of proc, devpts or
// mqueue (EOPNOTSUPP, but for AT_HANDLE_FID, which is not for opening).
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <climits>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {
namespace {

using file_internal::CopyInPath;
using file_internal::FdLimit;

// name_to_handle_at's flags beyond AT_SYMLINK_FOLLOW and AT_EMPTY_PATH
// (include/uapi/linux/fcntl.h); AT_HANDLE_MNT_ID_UNIQUE is refused (EINVAL):
// the sentry's mounts have no 64-bit unique ids (statx has no
// STATX_MNT_ID_UNIQUE either).
constexpr int kAtHandleConnectable = 0x002;
constexpr int kAtHandleFid = 0x200;
// handle_type's user flags (include/linux/exportfs.h).
constexpr int kFileIdIsConnectable = 0x10000;
constexpr int kFileIdIsDir = 0x20000;
constexpr int kFileIdUserFlags = static_cast<int>(0xffff0000u);
constexpr int kFileIdInvalid = 0xff;
// The handles this sentry makes: their fid type, and their size.
constexpr int kSentryFileIdType = 0x53;
constexpr uint32_t kHandleBytes = sizeof(uint64_t);
// What the table keeps at most: ids, and bytes of their paths (a guest
// naming many files under long paths must not grow the sentry without
// bound). The oldest goes first; its handle is then ESTALE, as an NFS
// server's evicted handle is.
constexpr size_t kMaxHandles = 1 << 16;
constexpr size_t kMaxHandleBytes = 8 << 20;
// A handle remembers the path below its mount to find its object again
// once no dentry holds it, up to this many names (a PATH_MAX path has no
// more); a deeper object's handle lasts as long as its dentry (the guest can
// make a chain of directories of any depth, one mkdir and chdir at a time).
constexpr size_t kMaxHandleDepth = PATH_MAX / 2;

struct HandleHeader {  // struct file_handle without f_handle[]
  uint32_t handle_bytes;
  int32_t handle_type;
};

// Objects of these filesystems have no handles Linux can decode (no
// export_operations).
bool Exportable(const Dentry& d) {
  const Mount* m = d.mount();
  if (m == nullptr) return false;
  const std::string& t = m->fstype();
  return t != "proc" && t != "devpts" && t != "mqueue";
}

class HandleTable {
 public:
  // The id of the object `d` names (its stat `st`), the same for every
  // path to it; the object's latest name is what a later walk follows.
  uint64_t IdFor(const DentryRef& d, const struct stat& st, const MountNamespace* ns) {
    std::vector<std::string> names;
    const Dentry* p = d.get();
    bool walkable = true;
    for (; p != nullptr && !p->IsMountRoot(); p = p->parent().get()) {
      // Deeper than any path a walk could take: kept by its dentry alone.
      if (names.size() == kMaxHandleDepth) {
        names.clear();
        walkable = false;
        break;
      }
      names.push_back(p->name());
    }
    Target target{d,
                  walkable && d->mount() ? d->mount()->root() : nullptr,
                  {names.rbegin(), names.rend()},
                  st.st_dev,
                  st.st_ino,
                  ns};
    const Key key{ns, st.st_dev, st.st_ino};
    absl::MutexLock l(&mu_);
    auto it = by_ino_.find(key);
    if (it != by_ino_.end()) {
      // A removed object's number may be a new object's now: that one
      // gets an id of its own, and the old handle stays stale.
      auto old = by_id_.find(it->second);
      DentryRef od = old != by_id_.end() ? old->second.dentry.lock() : nullptr;
      if (old == by_id_.end() || (od != nullptr && od->deleted())) {
        if (old != by_id_.end()) {
          Drop(old);
        } else {
          by_ino_.erase(it);
        }
        it = by_ino_.end();
      }
    }
    if (it == by_ino_.end()) it = by_ino_.emplace(key, NewIdLocked()).first;
    const uint64_t id = it->second;
    auto [entry, added] = by_id_.try_emplace(id);
    if (!added) bytes_ -= entry->second.Bytes();
    entry->second = std::move(target);
    bytes_ += entry->second.Bytes();
    while (by_id_.size() > kMaxHandles || bytes_ > kMaxHandleBytes) {
      auto oldest = by_id_.begin();
      if (oldest->first == id) break;  // the newest is kept whatever its size
      Drop(oldest);
    }
    return id;
  }

  // The object of handle `id` made in `ns`, if it is still there: ESTALE
  // if not.
  Result<DentryRef> Find(uint64_t id, const MountNamespace* ns) {
    Target target;
    {
      absl::MutexLock l(&mu_);
      auto it = by_id_.find(id);
      if (it == by_id_.end() || it->second.ns != ns) return Errno(ESTALE);
      target = it->second;
    }
    DentryRef d = target.dentry.lock();
    if (d == nullptr) {
      // Nothing holds the dentry it was named by: walk its path again.
      d = target.mount_root.lock();  // gone with an unmounted mount
      for (const std::string& name : target.names) {
        if (d == nullptr) break;
        auto child = d->Child(name);
        d = child.ok() ? *child : nullptr;
      }
    }
    if (d == nullptr || d->deleted()) return Errno(ESTALE);
    auto st = StatOf(d.get());
    if (!st.ok() || st->st_dev != target.dev || st->st_ino != target.ino || st->st_nlink == 0) {
      return Errno(ESTALE);
    }
    return d;
  }

 private:
  struct Target {
    std::weak_ptr<Dentry> dentry;
    // Weak: a handle keeps no unmounted mount alive (BuryMounts).
    std::weak_ptr<Dentry> mount_root;
    std::vector<std::string> names;  // the path below mount_root
    dev_t dev = 0;
    ino_t ino = 0;
    // The mount namespace whose handle it is: compared, never followed (a
    // namespace that went may leave its address to a new one, whose
    // caller then finds only objects it could reach by their dentries).
    const MountNamespace* ns = nullptr;
    // What the entry costs the table, roughly.
    size_t Bytes() const {
      size_t n = sizeof(Target) + 64;
      for (const std::string& name : names) n += sizeof(name) + name.size();
      return n;
    }
  };
  // Forgets the entry `it` (and its object's id).
  using Key = std::tuple<const MountNamespace*, dev_t, ino_t>;
  // A random id no entry has (the host's getrandom(2): after a sandbox
  // fork each sandbox draws its own).
  uint64_t NewIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (;;) {
      uint64_t id = 0;
      if (getrandom(&id, sizeof(id), 0) != static_cast<ssize_t>(sizeof(id))) continue;
      if (id != 0 && !by_id_.contains(id)) return id;
    }
  }
  void Drop(std::map<uint64_t, Target>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto o = by_ino_.find({it->second.ns, it->second.dev, it->second.ino});
    if (o != by_ino_.end() && o->second == it->first) by_ino_.erase(o);
    bytes_ -= it->second.Bytes();
    by_id_.erase(it);
  }
  absl::Mutex mu_;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Target> by_id_ ABSL_GUARDED_BY(mu_);
  std::map<Key, uint64_t> by_ino_ ABSL_GUARDED_BY(mu_);
};

HandleTable& Handles() {
  static HandleTable* table = new HandleTable;
  return *table;
}

}  // namespace

SyscallReturn SysNameToHandleAt(Task& t, const SyscallArgs& a) {
  const int dirfd = a.Int(0), flags = a.Int(4);
  const UserAddr uhandle = a.Addr(2), umnt_id = a.Addr(3);
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | kAtHandleFid | kAtHandleConnectable)) {
    return Errno(EINVAL);
  }
  // A connectable handle names the object by its path: not with
  // AT_HANDLE_FID (not for opening), nor AT_EMPTY_PATH (the fd's file may
  // have no path left).
  const bool connectable = (flags & kAtHandleConnectable) != 0;
  if (connectable && (flags & (kAtHandleFid | AT_EMPTY_PATH))) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, a.Addr(1)));
  Vfs& vfs = t.kernel().vfs();
  SV_ASSIGN_OR_RETURN(DentryRef d,
                      vfs.ResolveAt(t, dirfd, path,
                                    (flags & AT_EMPTY_PATH) |
                                        ((flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW)));
  if (!(flags & kAtHandleFid) && !Exportable(*d)) return Errno(EOPNOTSUPP);
  HandleHeader h;
  SV_TRY(t.CopyInObj(uhandle, &h));
  if (h.handle_bytes > MAX_HANDLE_SZ) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(struct stat st, StatOf(d.get()));
  // do_sys_name_to_handle(): too small a buffer is EOVERFLOW with the size
  // needed (and FILEID_INVALID); the mount id is written either way.
  const bool fits = h.handle_bytes >= kHandleBytes;
  uint64_t id = 0;
  HandleHeader out{kHandleBytes, kFileIdInvalid};
  if (fits) {
    id = Handles().IdFor(d, st, t.fs().mnt_ns().get());
    out.handle_type = kSentryFileIdType;
    if (connectable) {
      out.handle_type |= kFileIdIsConnectable;
      if (S_ISDIR(st.st_mode)) out.handle_type |= kFileIdIsDir;
    }
  }
  const int mnt_id = vfs.MountId(d->mount(), t.fs().mnt_ns().get());
  SV_TRY(t.CopyOutObj(umnt_id, mnt_id));
  SV_TRY(t.CopyOutObj(uhandle, out));
  if (!fits) return Errno(EOVERFLOW);
  SV_TRY(t.CopyOut(UserAddr(uhandle.value() + sizeof(HandleHeader)), &id, sizeof(id)));
  return 0;
}

SyscallReturn SysOpenByHandleAt(Task& t, const SyscallArgs& a) {
  const int mount_fd = a.Int(0);
  int flags = a.Int(2);
  // handle_to_path(): the mount fd (any file: its filesystem decodes the
  // handle), then CAP_DAC_READ_SEARCH, then the handle.
  DentryRef at;
  if (mount_fd == AT_FDCWD) {
    at = t.fs().cwd();
  } else {
    auto f = t.fds().Get(mount_fd);
    if (!f.ok()) return Errno(EBADF);
    at = (*f)->dentry();
  }
  if (!t.creds().HasCap(CAP_DAC_READ_SEARCH)) return Errno(EPERM);
  HandleHeader h;
  SV_TRY(t.CopyInObj(a.Addr(1), &h));
  if (h.handle_bytes > MAX_HANDLE_SZ || h.handle_bytes == 0) return Errno(EINVAL);
  if (h.handle_type < 0 ||
      (h.handle_type & kFileIdUserFlags & ~(kFileIdIsConnectable | kFileIdIsDir))) {
    return Errno(EINVAL);
  }
  std::vector<char> bytes(h.handle_bytes);
  SV_TRY(t.CopyIn(UserAddr(a.Addr(1).value() + sizeof(HandleHeader)), bytes.data(), bytes.size()));
  // Decoding: a handle this sentry made, of an object still there, on the
  // filesystem of the mount fd.
  if ((h.handle_type & ~kFileIdUserFlags) != kSentryFileIdType || h.handle_bytes != kHandleBytes ||
      at == nullptr || !Exportable(*at)) {
    return Errno(ESTALE);
  }
  uint64_t id;
  std::memcpy(&id, bytes.data(), sizeof(id));
  SV_ASSIGN_OR_RETURN(DentryRef d, Handles().Find(id, t.fs().mnt_ns().get()));
  SV_ASSIGN_OR_RETURN(struct stat st, StatOf(d.get()));
  auto at_st = StatOf(at.get());
  if (!at_st.ok() || at_st->st_dev != st.st_dev || !Exportable(*d)) return Errno(ESTALE);
  if ((h.handle_type & kFileIdIsDir) && !S_ISDIR(st.st_mode)) return Errno(ESTALE);
  // file_open_root(path, "", flags): the object itself, never a symlink's
  // target (ELOOP but with O_PATH). Opened as its name in its parent, then
  // checked to be the same object (the name may have moved on since).
  if (S_ISLNK(st.st_mode)) {
    if (!(flags & O_PATH)) return Errno(ELOOP);
    flags |= O_NOFOLLOW;
  }
  if (!(flags & O_PATH)) flags |= kKernelOLargefile;
  Vfs& vfs = t.kernel().vfs();
  SV_ASSIGN_OR_RETURN(ResolveContext c, vfs.ContextAt(t, AT_FDCWD, "/"));
  c.task = &t;
  std::string name = ".";
  if (d->IsMountRoot()) {
    if (!S_ISDIR(st.st_mode)) return Errno(ESTALE);
    c.start = d;
  } else {
    c.start = d->parent();
    name = d->name();
  }
  SV_ASSIGN_OR_RETURN(FileRef f, vfs.Open(c, name, flags & ~(O_CREAT | O_EXCL), 0));
  auto got = StatOf(f->dentry().get(), f.get());
  if (!got.ok() || got->st_dev != st.st_dev || got->st_ino != st.st_ino) return Errno(ESTALE);
  SV_ASSIGN_OR_RETURN(int fd,
                      t.fds().Install(std::move(f), (flags & O_CLOEXEC) != 0, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

}  // namespace seedvisor::sentry
