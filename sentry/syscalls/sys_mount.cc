// mount(2), umount2(2) and pivot_root(2) inside the sandbox, on the
// caller's mount namespace (MountNamespace, sentry/vfs/vfs.h; CLONE_NEWNS
// in sys_ns.cc). A namespace's mounts are its own (a copy's are copies),
// so every change of the tree here is seen in the caller's namespace
// only (a remount without MS_BIND changes the filesystem, which is shared).
//
// What mount(2) does here, in path_mount()'s order:
//   - MS_REMOUNT (with MS_BIND: do_reconfigure_mnt(); without: do_remount())
//     of a mount's root: the mount's flags become the call's (MS_RDONLY,
//     MS_NOSUID, MS_NODEV, MS_NOEXEC, the atime flags, kept if none is
//     given); without MS_BIND the filesystem's read-only state too, which
//     every mount of it (binds, other namespaces' copies) shares: writes
//     through any of them are EROFS while it is read-only, whatever their
//     own flag says. `data` is not looked at. MS_RDONLY is EBUSY
//     while files are open for writing on the mount (without MS_BIND: on
//     any mount of the filesystem); unlinked files still open do not
//     count (Linux's s_remove_count does).
//   - MS_BIND: the source's subtree on the target (the source mount's
//     filesystem, flags and read-only state, as clone_mnt()); with MS_REC
//     copies of the mounts below the source come along at their places.
//   - MS_SHARED/MS_PRIVATE/MS_SLAVE/MS_UNBINDABLE (with MS_REC): the checks
//     of do_change_type() (exactly one type, the target a mount's root in
//     the caller's namespace), and nothing else: every mount here is
//     private (MS_SHARED peer groups and MS_SLAVE receiving are not
//     written; mountinfo shows no optional fields).
//   - MS_MOVE (do_move_mount()): the source mount, with what is mounted
//     below it, onto the target (Vfs::MoveIn for the errors).
//   - a new mount of "tmpfs" (data: mode=, uid=, gid=; size=, nr_blocks=,
//     nr_inodes=, huge= are kept in the options but not enforced) or
//     "proc" (no data); another type is ENODEV.
// umount2(2): the topmost mount on the target (LOOKUP_MOUNTPOINT: "." after
// pivot_root(".", ".") is the old root), which must be the root of a
// mount of the caller's namespace (EINVAL otherwise); EBUSY while mounts
// are attached below it, or while an open file (in an fd table, a
// mapping, in flight) or an fs context's root or working directory is on
// it (propagate_mount_busy(): Mount::busy()), unless MNT_DETACH,
// which takes them along and leaves the files working. MNT_EXPIRE: EBUSY
// if busy, else EAGAIN the first time, the unmount the second (the mark
// is not cleared by use). The namespace's root mount is not unmounted (EBUSY; EINVAL
// with MNT_DETACH).
// pivot_root(2): Vfs::PivotRoot's checks; then every task whose root or
// working directory was the caller's root has new_root instead
// (chroot_fs_refs()).
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mount.h>

#include <charconv>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// The flags of a remount of `m`: the call's, and m's atime flags if the
// call gives none ("the default atime for remount is preservation":
// path_mount()).
std::string RemountOptions(unsigned long flags, const Mount& m) {
  constexpr unsigned long kAtime = MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
  if (flags & kAtime) return FlagOptions(flags);
  const std::string now = "," + m.MountOptionsText() + ",";
  unsigned long keep = 0;
  if (now.find(",noatime,") != std::string::npos) keep |= MS_NOATIME;
  if (now.find(",nodiratime,") != std::string::npos) keep |= MS_NODIRATIME;
  if (!(keep & MS_NOATIME) && now.find(",relatime,") == std::string::npos) keep |= MS_STRICTATIME;
  return FlagOptions(flags | keep);
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

}  // namespace

SyscallReturn SysMount(Task& t, const SyscallArgs& a) {
  unsigned long flags = a.Ulong(3);
  // The magic number old callers put in the top half.
  if ((flags & 0xffff0000UL) == MS_MGC_VAL) flags &= ~0xffff0000UL;
  SV_ASSIGN_OR_RETURN(std::string target, file_internal::CopyInPath(t, a.Addr(1)));
  Vfs& vfs = t.kernel().vfs();
  SV_ASSIGN_OR_RETURN(DentryRef at, vfs.ResolveAt(t, AT_FDCWD, target, 0));
  if (flags & MS_NOUSER) return Errno(EINVAL);
  // Landlock's hook_sb_mount(): a landlocked task changes no mount (a new
  // mount, bind, move or remount could uncover what its rules deny).
  if (t.creds().landlock) return Errno(EPERM);
  if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  std::shared_ptr<MountNamespace> ns = t.fs().mnt_ns();
  if (ns == nullptr) ns = vfs.init_mount_ns();
  // check_mnt(): the target must be in the caller's namespace (not reached
  // through another's /proc/PID/root or a descriptor from it).
  if (at->mount() == nullptr || !vfs.HasMount(*ns, at->mount())) return Errno(EINVAL);
  if (flags & MS_REMOUNT) {
    if (!at->IsMountRoot()) return Errno(EINVAL);
    SV_TRY(vfs.Remount(*at->mount(), [flags](const Mount& m) { return RemountOptions(flags, m); },
                       !(flags & MS_BIND), (flags & MS_RDONLY) != 0));
    return 0;
  }
  if (flags & MS_BIND) {
    SV_ASSIGN_OR_RETURN(std::string source, file_internal::CopyInPath(t, a.Addr(0)));
    SV_ASSIGN_OR_RETURN(DentryRef from, vfs.ResolveAt(t, AT_FDCWD, source, 0));
    if (from->mount() == nullptr || !vfs.HasMount(*ns, from->mount())) return Errno(EINVAL);
    SV_TRY(vfs.BindIn(*ns, from, at, (flags & MS_REC) != 0));
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
  if (flags & MS_MOVE) {
    // do_move_mount_old(): a source is needed.
    if (a.Addr(0).value() == 0) return Errno(EINVAL);
    SV_ASSIGN_OR_RETURN(std::string source, file_internal::CopyInPath(t, a.Addr(0)));
    SV_ASSIGN_OR_RETURN(DentryRef from, vfs.ResolveAt(t, AT_FDCWD, source, 0));
    if (from->mount() == nullptr || !vfs.HasMount(*ns, from->mount())) return Errno(EINVAL);
    SV_TRY(vfs.MoveIn(*ns, from, at));
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
    // proc_fill_super(): the mounter's active pid namespace.
    root = NewProcFs(t.kernel(), vfs, t.tg().pid_ns);
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
  d = vfs.TopMountOn(*ns, std::move(d));
  // can_umount()
  if (!d->IsMountRoot() || !vfs.HasMount(*ns, d->mount())) return Errno(EINVAL);
  if (t.creds().landlock) return Errno(EPERM);  // hook_sb_umount()
  if (flags & MNT_EXPIRE) {
    if ((flags & (MNT_FORCE | MNT_DETACH)) || d == ns->root()) return Errno(EINVAL);
    if (d->mount()->busy()) return Errno(EBUSY);
    if (vfs.MarkExpired(*ns, d->mount())) return Errno(EAGAIN);
  }
  // Busy or not is decided under the mount lock (DetachIn), so that an
  // open or chdir finishing meanwhile is seen or sees the unmount.
  SV_TRY(vfs.DetachIn(*ns, d, (flags & MNT_DETACH) != 0));
  return 0;
}

SyscallReturn SysPivotRoot(Task& t, const SyscallArgs& a) {
  if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  if (t.creds().landlock) return Errno(EPERM);  // hook_sb_pivotroot()
  Vfs& vfs = t.kernel().vfs();
  // Both paths followed, both directories (LOOKUP_DIRECTORY).
  DentryRef paths[2];
  for (int i = 0; i < 2; ++i) {
    SV_ASSIGN_OR_RETURN(std::string p, file_internal::CopyInPath(t, a.Addr(i)));
    SV_ASSIGN_OR_RETURN(paths[i], vfs.ResolveAt(t, AT_FDCWD, p, 0));
    if (paths[i]->inode()->Type() != S_IFDIR) return Errno(ENOTDIR);
  }
  std::shared_ptr<MountNamespace> ns = t.fs().mnt_ns();
  if (ns == nullptr) ns = vfs.init_mount_ns();
  const DentryRef root = t.fs().root();
  SV_TRY(vfs.PivotRoot(*ns, root, paths[0], paths[1]));
  // chroot_fs_refs(): whoever had the old root as root or working
  // directory has the new one.
  std::vector<std::shared_ptr<Task>> tasks;
  {
    absl::MutexLock l(&t.kernel().mu());
    tasks = t.kernel().Tasks();
  }
  for (const auto& task : tasks) {
    std::shared_ptr<FsContext> fs = task->shared_fs();
    if (!fs) continue;
    if (fs->root() == root) fs->SetRoot(paths[0]);
    if (fs->cwd() == root) fs->SetCwd(paths[0]);
  }
  return 0;
}

}  // namespace seedvisor::sentry
