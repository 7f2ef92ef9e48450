// Small syscalls Linux keeps for old programs and test suites: sysfs(2),
// ustat(2), vhangup(2) and readahead(2) (issue 13).
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <string_view>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// The file system types sysfs(2) indexes, in /proc/filesystems' order
// (sentry/fs/proc/proc.cc): both read Linux's one list of registered types.
constexpr std::string_view kFsTypes[] = {"sysfs",   "tmpfs",  "proc",  "devtmpfs",
                                         "overlay", "pipefs", "mqueue"};
constexpr int kFsTypeCount = sizeof(kFsTypes) / sizeof(kFsTypes[0]);

}  // namespace

// sysfs(2) (fs/filesystems.c): 1 name -> index, 2 index -> name, 3 count.
SyscallReturn SysSysfs(Task& t, const SyscallArgs& a) {
  switch (a.Int(0)) {
    case 1: {
      if (a.Addr(1).IsNull()) return Errno(EFAULT);
      SV_ASSIGN_OR_RETURN(std::string name, t.CopyInString(a.Addr(1), 4096));
      for (int i = 0; i < kFsTypeCount; ++i) {
        if (kFsTypes[i] == name) return i;
      }
      return Errno(EINVAL);
    }
    case 2: {
      const uint64_t index = a.raw[1];
      if (index >= static_cast<uint64_t>(kFsTypeCount)) return Errno(EINVAL);
      const std::string_view name = kFsTypes[index];
      std::string out(name);
      SV_TRY(t.CopyOut(a.Addr(2), out.c_str(), out.size() + 1));
      return 0;
    }
    case 3:
      return kFsTypeCount;
    default:
      return Errno(EINVAL);
  }
}

// ustat(2) (fs/statfs.c): free blocks and inodes of the mounted file
// system on `dev` (new_encode_dev() form); EINVAL if none is mounted.
SyscallReturn SysUstat(Task& t, const SyscallArgs& a) {
  const unsigned enc = a.Uint(0);
  const dev_t dev = makedev((enc & 0xfff00) >> 8, (enc & 0xff) | ((enc >> 12) & 0xfff00));
  std::shared_ptr<FsContext> fs = t.shared_fs();
  DentryRef root = t.kernel().vfs().MountRootWithDev(dev, fs ? fs->mnt_ns().get() : nullptr);
  if (!root) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(struct statfs s, root->inode()->StatFs());
  struct {
    int32_t f_tfree;
    uint64_t f_tinode;
    char f_fname[6];
    char f_fpack[6];
  } u{};
  static_assert(sizeof(u) == 32);  // struct ustat on x86-64
  u.f_tfree = static_cast<int32_t>(s.f_bfree);
  u.f_tinode = s.f_ffree;
  SV_TRY(t.CopyOutObj(a.Addr(1), u));
  return 0;
}

// vhangup(2): CAP_SYS_TTY_CONFIG; the sandbox's terminals are not hung up
// (no controlling-terminal hangup is modelled), so a capable caller succeeds.
SyscallReturn SysVhangup(Task& t, const SyscallArgs&) {
  if (!t.creds().HasCap(CAP_SYS_TTY_CONFIG)) return Errno(EPERM);
  return 0;
}

// readahead(2) (ksys_readahead()): a file open for reading, regular or a
// block device; the sentry has no page cache to fill, so success is a no-op.
SyscallReturn SysReadahead(Task& t, const SyscallArgs& a) {
  auto f = t.fds().Get(a.Int(0));
  if (!f.ok()) return Errno(EBADF);
  const int mode = (*f)->flags() & (O_ACCMODE | O_PATH);
  if (mode == O_WRONLY || ((*f)->flags() & O_PATH) != 0) return Errno(EBADF);
  auto st = (*f)->Stat();
  if (!st.ok() || (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))) return Errno(EINVAL);
  return 0;
}

}  // namespace seedvisor::sentry
