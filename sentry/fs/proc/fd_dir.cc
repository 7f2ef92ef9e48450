// /proc/PID/fd (fs/proc/fd.c): one magic link per open fd.
#include <dirent.h>
#include <sys/stat.h>

#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// What /proc/PID/fd/N leads to when the file has no path (a pipe, the
// sandbox's stdio): opening it reopens the same object (FileDescription::
// Reopen), stat shows the file itself.
class ReopenInode : public SynthInode {
 public:
  explicit ReopenInode(FileRef f) : SynthInode(S_IFIFO | 0600), file_(std::move(f)) {
    if (auto st = file_->Stat(); st.ok()) st_ = *st;
  }
  Result<struct stat> Stat() override { return file_->Stat(); }
  Result<FileRef> Open(const std::shared_ptr<Dentry>&, int flags) override {
    return file_->Reopen(flags);
  }
  bool ReopensFile() const override { return true; }

 private:
  FileRef file_;
};

// /proc/PID/fd: its own process may always read and search it, whoever
// owns it (proc_fd_permission()).
class FdDirInode : public SynthDir {
 public:
  FdDirInode(Kernel& k, int tid) : SynthDir(0500), k_(k), tid_(tid) {}
  bool ExtraAccess(int) override {
    Task* c = CurrentTask();
    auto t = FindTask(k_, tid_);
    return c != nullptr && t != nullptr && c->tgid() == t->tgid();
  }

 private:
  Kernel& k_;
  const int tid_;
};

}  // namespace

InodeRef NewFdDir(Kernel& k, int tid) {
  auto dir = std::make_shared<FdDirInode>(k, tid);
  dir->SetDynamic(
      [&k, tid](std::string_view name) -> Result<InodeRef> {
        SV_ASSIGN_OR_RETURN(int fd, OpenFdNamed(k, tid, name));
        auto link = std::make_shared<SynthSymlink>([&k, tid, fd]() -> Result<std::string> {
          auto t = FindTask(k, tid);
          std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
          Result<FileRef> f = fds ? fds->Get(fd) : Result<FileRef>(Errno(ENOENT));
          if (!f.ok()) return Errno(ENOENT);  // closed, or the task exited
          return (*f)->DisplayPath();
        });
        link->set_magic([&k, tid, fd]() -> std::shared_ptr<Dentry> {
          auto t = FindTask(k, tid);
          std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
          if (!fds) return nullptr;
          Result<FileRef> f = fds->Get(fd);
          if (!f.ok()) return nullptr;
          if ((*f)->dentry()) return (*f)->dentry();
          return std::make_shared<Dentry>((*f)->DisplayPath(), nullptr,
                                          std::make_shared<ReopenInode>(*f), nullptr);
        });
        return InodeRef(std::move(link));
      },
      [&k, tid]() { return FdDirEntries(k, tid, 0x40000000, DT_LNK); });
  return dir;
}

}  // namespace seedvisor::sentry
