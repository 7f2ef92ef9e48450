// /proc/PID/fdinfo/N (fs/proc/fd.c, seq_show()).
#include <fcntl.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/inode.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// pidfd_show_fdinfo(): the process's (a thread pidfd's: the thread's) id
// in /proc's pid namespace, 0 if it has none there, -1 once no task holds
// that id (pid_has_task()); then NSpid: that id and those in the namespaces
// below, down to its own. The leader holds the process's id until the
// process is reaped, a zombie too, also when it exited before its other
// threads (delay_group_leader()); any other thread lets go of its id as it
// exits (exit_notify() releases it at once).
std::string PidfdFdInfo(Kernel& k, PidfdFile& f, const PidNamespace* ns) {
  absl::MutexLock l(&k.mu());
  const std::shared_ptr<ThreadGroup>& tg = f.thread_group();
  if (tg == nullptr) return "";
  int global = -1;
  if (f.is_thread() && f.thread_tid() != tg->tgid()) {
    if (std::shared_ptr<Task> t = f.LiveThread()) global = t->tid();
  } else if (tg->state != ThreadGroup::State::kReaped) {
    global = tg->tgid();
  }
  if (global < 0) return "Pid:\t-1\nNSpid:\t-1\n";
  const int nr = Kernel::IdIn(ns, global);
  std::string ids = absl::StrCat(nr);
  if (nr > 0) {
    std::vector<const PidNamespace*> below;  // the process's own first
    for (const PidNamespace* n = tg->pid_ns.get(); n != ns && n != nullptr;
         n = n->parent().get()) {
      below.push_back(n);
    }
    for (auto it = below.rbegin(); it != below.rend(); ++it) {
      absl::StrAppend(&ids, "\t", Kernel::IdIn(*it, global));
    }
  }
  return absl::StrCat("Pid:\t", nr, "\nNSpid:\t", ids, "\n");
}

// "pos:\t%lli\nflags:\t0%o\nmnt_id:\t%i\nino:\t%lu\n" and the file type's
// own lines. The flags are the file's with the fd's O_CLOEXEC. `ns`: the
// pid namespace of /proc (a pidfd's ids are shown there).
Result<std::string> FdInfoText(Kernel& k, Vfs& vfs, int tid, int fd, const PidNamespace* ns) {
  auto t = FindTask(k, tid);
  std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
  if (!fds) return Errno(ENOENT);
  // Closed meanwhile, or by the task's exit (seq_show(): ENOENT).
  Result<FdTable::Entry> entry = fds->GetEntry(fd);
  if (!entry.ok()) return Errno(ENOENT);
  FdTable::Entry e = std::move(*entry);
  FileDescription& f = *e.file;
  // A stream (pipe, socket) has no position: 0, as f_pos stays there.
  Result<int64_t> pos = f.Seek(0, SEEK_CUR);
  unsigned flags = static_cast<unsigned>(f.flags()) | (e.cloexec ? O_CLOEXEC : 0);
  std::shared_ptr<FsContext> fs = t->shared_fs();
  int mnt_id =
      f.dentry() ? vfs.MountId(f.dentry()->mount(), fs ? fs->mnt_ns().get() : nullptr) : 0;
  Result<struct stat> st = f.Stat();
  auto* pidfd = dynamic_cast<PidfdFile*>(&f);
  return absl::StrFormat("pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t%u\n%s",
                         pos.ok() ? *pos : 0, flags, mnt_id, st.ok() ? st->st_ino : 0,
                         pidfd != nullptr ? PidfdFdInfo(k, *pidfd, ns) : f.FdInfo());
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
  for (int fd : fds->Numbers()) {
    out.push_back({absl::StrCat(fd), ino_base + static_cast<uint64_t>(fd), type});
  }
  return out;
}

InodeRef NewFdInfoDir(Kernel& k, Vfs& vfs, int tid, std::shared_ptr<PidNamespace> ns) {
  auto dir = std::make_shared<SynthDir>(0500);
  dir->SetDynamic(
      [&k, &vfs, tid, ns](std::string_view name) -> Result<InodeRef> {
        SV_ASSIGN_OR_RETURN(int fd, OpenFdNamed(k, tid, name));
        return InodeRef(std::make_shared<SynthFile>(
            [&k, &vfs, tid, fd, ns] { return FdInfoText(k, vfs, tid, fd, ns.get()); }, 0444));
      },
      [&k, tid]() { return FdDirEntries(k, tid, 0x50000000, DT_REG); });
  return dir;
}

}  // namespace seedvisor::sentry
