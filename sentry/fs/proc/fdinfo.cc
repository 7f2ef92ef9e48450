// /proc/PID/fdinfo/N (fs/proc/fd.c, seq_show()).
#include <fcntl.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/inode.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// "pos:\t%lli\nflags:\t0%o\nmnt_id:\t%i\nino:\t%lu\n" and the file type's
// own lines. The flags are the file's with the fd's O_CLOEXEC.
Result<std::string> FdInfoText(Kernel& k, Vfs& vfs, int tid, int fd) {
  auto t = FindTask(k, tid);
  std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
  if (!fds) return Errno(ENOENT);
  SV_ASSIGN_OR_RETURN(FdTable::Entry e, fds->GetEntry(fd));
  FileDescription& f = *e.file;
  // A stream (pipe, socket) has no position: 0, as f_pos stays there.
  Result<int64_t> pos = f.Seek(0, SEEK_CUR);
  unsigned flags = static_cast<unsigned>(f.flags()) | (e.cloexec ? O_CLOEXEC : 0);
  std::shared_ptr<FsContext> fs = t->shared_fs();
  int mnt_id =
      f.dentry() ? vfs.MountId(f.dentry()->mount(), fs ? fs->mnt_ns().get() : nullptr) : 0;
  Result<struct stat> st = f.Stat();
  return absl::StrFormat("pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t%u\n%s",
                         pos.ok() ? *pos : 0, flags, mnt_id, st.ok() ? st->st_ino : 0,
                         f.FdInfo());
}

}  // namespace

Result<int> OpenFdNamed(Kernel& k, int tid, std::string_view name) {
  int fd;
  if (!absl::SimpleAtoi(absl::string_view(name.data(), name.size()), &fd)) return Errno(ENOENT);
  auto t = FindTask(k, tid);
  std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
  if (!fds || !fds->Get(fd).ok()) return Errno(ENOENT);
  return fd;
}

std::vector<DirEntry> FdDirEntries(Kernel& k, int tid, uint64_t ino_base, unsigned char type) {
  std::vector<DirEntry> out;
  auto t = FindTask(k, tid);
  std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
  if (!fds) return out;
  for (const auto& [fd, e] : fds->Snapshot()) {
    out.push_back({absl::StrCat(fd), ino_base + static_cast<uint64_t>(fd), type});
  }
  return out;
}

InodeRef NewFdInfoDir(Kernel& k, Vfs& vfs, int tid) {
  auto dir = std::make_shared<SynthDir>(0500);
  dir->SetDynamic(
      [&k, &vfs, tid](std::string_view name) -> Result<InodeRef> {
        SV_ASSIGN_OR_RETURN(int fd, OpenFdNamed(k, tid, name));
        return InodeRef(std::make_shared<SynthFile>(
            [&k, &vfs, tid, fd] { return FdInfoText(k, vfs, tid, fd); }, 0444));
      },
      [&k, tid]() { return FdDirEntries(k, tid, 0x50000000, DT_REG); });
  return dir;
}

}  // namespace seedvisor::sentry
