// A /proc/PID file over the process's address space (mem, pagemap): owned by
// the process's effective ids (task_dump_owner()); opening it needs ptrace
// access with the caller's fs credentials (proc_mem_open() -> mm_access()),
// and the open `File` holds the address space it had at open weakly.
//
//   dir.Add("mem", std::make_shared<TaskMmInode<MemFile>>(k, tid, 0600));
#ifndef SEEDVISOR_SENTRY_FS_PROC_TASK_MM_INODE_H_
#define SEEDVISOR_SENTRY_FS_PROC_TASK_MM_INODE_H_

#include <sys/stat.h>

#include <memory>

#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

// `File` is made as File(flags, dentry, std::weak_ptr<MM>).
template <typename File>
class TaskMmInode : public SynthInode {
 public:
  TaskMmInode(Kernel& k, int tid, mode_t perm) : SynthInode(S_IFREG | perm), k_(k), tid_(tid) {}

  Result<struct stat> Stat() override {
    SV_ASSIGN_OR_RETURN(struct stat st, SynthInode::Stat());
    if (auto t = FindTask(k_, tid_)) {
      st.st_uid = t->creds().euid;
      st.st_gid = t->creds().egid;
    }
    return st;
  }

  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override {
    auto t = FindTask(k_, tid_);
    if (!t) return Errno(ESRCH);
    Task* caller = CurrentTask();
    std::shared_ptr<MM> mm;
    {
      absl::MutexLock l(&k_.mu());
      if (caller && !MayPtraceAccess(*caller, t->tg(), t->creds(), PtraceCreds::kFs)) {
        return Errno(EACCES);
      }
      mm = t->shared_mm();
    }
    return FileRef(std::make_shared<File>(flags, d, mm));
  }

 private:
  Kernel& k_;
  const int tid_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PROC_TASK_MM_INODE_H_
