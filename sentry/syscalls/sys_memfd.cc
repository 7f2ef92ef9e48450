// memfd_create: an unlinked file of a private tmpfs (whose data is a host
// memfd), so read/write/mmap/ftruncate work as on any tmpfs file; and its
// seals (fcntl F_ADD_SEALS/F_GET_SEALS), which are the host memfd's own
// (see TmpfsInode::MakeMemfd).
#include <fcntl.h>
#include <linux/memfd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

class MemfdFile : public TmpfsFile {
 public:
  MemfdFile(int flags, DentryRef d, std::shared_ptr<TmpfsInode> inode, std::string name)
      : TmpfsFile(flags, std::move(d), std::move(inode)), name_(std::move(name)) {}
  // As /proc/PID/fd shows a memfd (memfd_create(2)).
  std::string DisplayPath() const override { return absl::StrCat("/memfd:", name_, " (deleted)"); }

 private:
  const std::string name_;
};

// 249 = NAME_MAX minus the "memfd:" prefix (memfd_create(2): EINVAL beyond).
constexpr size_t kMaxName = 249;

}  // namespace

SyscallReturn SysMemfdCreate(Task& t, const SyscallArgs& a) {
  unsigned flags = a.Uint(1);
  if (flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB)) return Errno(EINVAL);
  if (flags & MFD_HUGETLB) return Errno(EINVAL);  // no hugetlbfs in the sandbox
  auto name = t.CopyInString(a.Addr(0), kMaxName + 1);
  if (!name.ok()) return name.error() == Errno(ENAMETOOLONG) ? Errno(EINVAL) : name.error();
  if (name->size() > kMaxName) return Errno(EINVAL);

  static std::atomic<uint64_t> next{0};
  static const std::shared_ptr<TmpfsInode> root = NewTmpfs(01777);
  std::string slot = absl::StrCat(next.fetch_add(1));
  FsCreds c;
  c.uid = t.creds().fsuid;
  c.gid = t.creds().fsgid;
  auto created = root->Create(slot, S_IFREG | 0777, c);
  // A full tmpfs fd budget (TmpfsMemfdLimit): ENFILE, the error of a host
  // out of files (alloc_file_pseudo()), not ENOSPC, which memfd_create
  // never returns.
  if (!created.ok()) return created.error() == Errno(ENOSPC) ? Errno(ENFILE) : created.error();
  std::shared_ptr<Inode> inode = *created;
  (void)root->Unlink(slot);
  auto node = std::static_pointer_cast<TmpfsInode>(inode);
  SV_TRY(node->MakeMemfd((flags & MFD_ALLOW_SEALING) != 0));
  auto d = std::make_shared<Dentry>(absl::StrCat("memfd:", *name), nullptr, inode, nullptr);
  d->MarkDeleted();
  auto f = std::make_shared<MemfdFile>(O_RDWR | kKernelOLargefile, d, node, *name);
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, flags & MFD_CLOEXEC, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn MemfdSeals(FileDescription& f, int cmd, unsigned seals) {
  auto* tf = dynamic_cast<TmpfsFile*>(&f);
  // Only memfds have seals here (Linux: shmem files; EINVAL for others).
  if (!tf || !tf->inode()->is_memfd()) return Errno(EINVAL);
  int hfd = tf->inode()->memfd();
  if (cmd == F_GET_SEALS) {
    int r = fcntl(hfd, F_GET_SEALS);
    if (r < 0) return Errno(errno);
    return static_cast<uint64_t>(r);
  }
  // memfd_add_seals(): the file must be open for writing.
  if (!f.writable()) return Errno(EPERM);
  SV_ASSIGN_OR_RETURN(hfd, tf->inode()->WritableMemfd());  // seals are per host memfd
  if (fcntl(hfd, F_ADD_SEALS, seals) != 0) return Errno(errno);
  return 0;
}

}  // namespace seedvisor::sentry
