// mount(2) and umount2(2) inside the sandbox, on the caller's mount
// namespace (MountNamespace, sentry/vfs/vfs.h; CLONE_NEWNS in sys_ns.cc).
//
// What mount(2) does here, in path_mount()'s order:
//   - MS_REMOUNT, MS_MOVE: EINVAL (not written: a remount would change the
//     Mount that namespace copies share).
//   - MS_BIND: the source's subtree on the target (the source mount's
//     filesystem, flags and read-only state, as clone_mnt()); MS_REC: EINVAL
//     (carrying the mounts below the source is not written).
//   - MS_SHARED/MS_PRIVATE/MS_SLAVE/MS_UNBINDABLE (with MS_REC): the checks
//     of do_change_type() (exactly one type, the target a mount's root in
//     the caller's namespace), and nothing else: every mount here is
//     private. A namespace made by CLONE_NEWNS starts with the same mounts
//     and sees no later mount or unmount of the other namespace, shared or
//     not (MS_SHARED peer groups and MS_SLAVE receiving are not written;
//     mountinfo shows no optional fields).
//   - a new mount of "tmpfs" (data: mode=, uid=, gid=; size=, nr_blocks=,
//     nr_inodes=, huge= are kept in the options but not enforced) or
//     "proc" (no data); another type is ENODEV.
// umount2(2): the mount whose root the target is, in the caller's
// namespace (EINVAL otherwise); EBUSY while mounts are attached below it
// unless MNT_DETACH, which takes them along. Open files and working
// directories do not make a mount busy: they keep its filesystem alive
// after the unmount, as after MNT_DETACH. MNT_EXPIRE: EAGAIN the first
// time, the unmount the second (the mark is not cleared by use).
// The namespace's root mount is not unmounted (EBUSY; EINVAL with
// MNT_DETACH).
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mount.h>

#include <charconv>
#include <string>
#include <string_view>

#include "sentry/fs/proc/proc.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

constexpr unsigned long kPropagation = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

// The mount flags a new mount's options show (show_mnt_opts() order), and
// "relatime" unless MS_NOATIME or MS_STRICTATIME say otherwise.
std::string FlagOptions(unsigned long flags) {
  std::string out = (flags & MS_RDONLY) ? "ro" : "rw";
  if (flags & MS_NOSUID) out += ",nosuid";
  if (flags & MS_NODEV) out += ",nodev";
  if (flags & MS_NOEXEC) out += ",noexec";
  if (flags & MS_NOATIME) out += ",noatime";
  if (flags & MS_NODIRATIME) out += ",nodiratime";
  if (!(flags & (MS_NOATIME | MS_STRICTATIME))) out += ",relatime";
  return out;
}

// A tmpfs root from mount(2)'s data; EINVAL for an option tmpfs does not
// know or a value it cannot parse.
Result<InodeRef> NewTmpfsFromData(std::string_view data, std::string& shown) {
  mode_t mode = 01777;
  uint32_t uid = 0, gid = 0;
  for (size_t pos = 0; pos <= data.size();) {
    size_t end = data.find(',', pos);
    if (end == std::string_view::npos) end = data.size();
    const std::string_view opt = data.substr(pos, end - pos);
    pos = end + 1;
    if (opt.empty()) continue;
    const size_t eq = opt.find('=');
    const std::string_view key = opt.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : opt.substr(eq + 1);
    if (key == "mode") {
      unsigned long m = 0;
      for (char c : value) {
        if (c < '0' || c > '7') return Errno(EINVAL);
        m = m * 8 + static_cast<unsigned long>(c - '0');
        if (m > 07777) return Errno(EINVAL);
      }
      if (value.empty()) return Errno(EINVAL);
      mode = static_cast<mode_t>(m);
    } else if (key == "uid" || key == "gid") {
      uint32_t id = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size()) {
        return Errno(EINVAL);
      }
      (key == "uid" ? uid : gid) = id;
    } else if (key != "size" && key != "nr_blocks" && key != "nr_inodes" && key != "huge") {
      return Errno(EINVAL);
    }
    shown += ',';
    shown += opt;
  }
  return InodeRef(NewTmpfs(mode, uid, gid));
}

// The root path of a bind of `d` inside its filesystem (mountinfo's fourth
// field): the path below its mount's root, after that mount's own.
std::string BindRootPath(const Dentry& d) {
  const Mount& under = *d.mount();
  const std::string rel = d.PathFrom(under.root().get());
  if (under.root_path() == "/") return rel;
  return rel == "/" ? under.root_path() : under.root_path() + rel;
}

}  // namespace

SyscallReturn SysMount(Task& t, const SyscallArgs& a) {
  unsigned long flags = a.Ulong(3);
  // The magic number old callers put in the top half.
  if ((flags & 0xffff0000UL) == MS_MGC_VAL) flags &= ~0xffff0000UL;
  SV_ASSIGN_OR_RETURN(std::string target, file_internal::CopyInPath(t, a.Addr(1)));
  Vfs& vfs = t.kernel().vfs();
  SV_ASSIGN_OR_RETURN(DentryRef at, vfs.ResolveAt(t, AT_FDCWD, target, 0));
  if (flags & MS_NOUSER) return Errno(EINVAL);
  if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  std::shared_ptr<MountNamespace> ns = t.fs().mnt_ns();
  if (ns == nullptr) ns = vfs.init_mount_ns();
  // check_mnt(): the target must be in the caller's namespace (not reached
  // through another's /proc/PID/root or a descriptor from it).
  if (at->mount() == nullptr || !vfs.HasMount(*ns, at->mount())) return Errno(EINVAL);
  if (flags & (MS_REMOUNT | MS_MOVE)) return Errno(EINVAL);
  if (flags & MS_BIND) {
    if (flags & MS_REC) return Errno(EINVAL);
    SV_ASSIGN_OR_RETURN(std::string source, file_internal::CopyInPath(t, a.Addr(0)));
    SV_ASSIGN_OR_RETURN(DentryRef from, vfs.ResolveAt(t, AT_FDCWD, source, 0));
    const Mount* under = from->mount();
    if (under == nullptr || !vfs.HasMount(*ns, under)) return Errno(EINVAL);
    auto m = std::make_shared<Mount>(under->fstype(), under->source(), under->options(),
                                     from->inode());
    m->ShareSuperblock(*under);
    m->set_root_path(BindRootPath(*from));
    if (under->read_only()) m->set_read_only();
    SV_TRY(vfs.AttachIn(*ns, at, std::move(m)));
    return 0;
  }
  if (flags & kPropagation) {
    // do_change_type(): one type, on a mount's root.
    const unsigned long type = flags & ~static_cast<unsigned long>(MS_REC | MS_SILENT);
    if (type != MS_SHARED && type != MS_PRIVATE && type != MS_SLAVE && type != MS_UNBINDABLE) {
      return Errno(EINVAL);
    }
    if (!at->IsMountRoot()) return Errno(EINVAL);
    return 0;
  }
  // do_new_mount()
  if (a.Addr(2).value() == 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::string fstype, t.CopyInString(a.Addr(2), 4096));
  std::string data;
  if (a.Addr(4).value() != 0) {
    SV_ASSIGN_OR_RETURN(data, t.CopyInString(a.Addr(4), 4096));
  }
  std::string source = "none";
  if (a.Addr(0).value() != 0) {
    SV_ASSIGN_OR_RETURN(source, t.CopyInString(a.Addr(0), 4096));
  }
  std::string options = FlagOptions(flags);
  InodeRef root;
  if (fstype == "tmpfs") {
    SV_ASSIGN_OR_RETURN(root, NewTmpfsFromData(data, options));
  } else if (fstype == "proc") {
    if (!data.empty()) return Errno(EINVAL);
    root = NewProcFs(t.kernel(), vfs);
  } else {
    return Errno(ENODEV);
  }
  SV_TRY(vfs.AttachIn(*ns, at, std::make_shared<Mount>(fstype, source, options, root)));
  return 0;
}

SyscallReturn SysUmount2(Task& t, const SyscallArgs& a) {
  const int flags = a.Int(1);
  if (flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW)) return Errno(EINVAL);
  if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  SV_ASSIGN_OR_RETURN(std::string target, file_internal::CopyInPath(t, a.Addr(0)));
  Vfs& vfs = t.kernel().vfs();
  SV_ASSIGN_OR_RETURN(
      DentryRef d,
      vfs.ResolveAt(t, AT_FDCWD, target, (flags & UMOUNT_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0));
  std::shared_ptr<MountNamespace> ns = t.fs().mnt_ns();
  if (ns == nullptr) ns = vfs.init_mount_ns();
  // can_umount()
  if (!d->IsMountRoot() || !vfs.HasMount(*ns, d->mount())) return Errno(EINVAL);
  if (flags & MNT_EXPIRE) {
    if ((flags & (MNT_FORCE | MNT_DETACH)) || d == ns->root()) return Errno(EINVAL);
    if (vfs.MarkExpired(*ns, d->mount())) return Errno(EAGAIN);
  }
  SV_TRY(vfs.DetachIn(*ns, d, (flags & MNT_DETACH) != 0));
  return 0;
}

}  // namespace seedvisor::sentry
