// FdTable: a task's file descriptors (shared by CLONE_FILES).
//
//   SV_ASSIGN_OR_RETURN(int fd, task.fds().Install(file, /*cloexec=*/true));
//   SV_ASSIGN_OR_RETURN(FileRef f, task.fds().Get(fd));
//
// Every operation is O(log n) in the number of open fds: the entries live
// in an ordered map and a bitmap of the used numbers finds the lowest free
// one (open(2), dup(2), F_DUPFD) without walking the table.
#ifndef SEEDVISOR_SENTRY_VFS_FD_TABLE_H_
#define SEEDVISOR_SENTRY_VFS_FD_TABLE_H_

#include <atomic>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/id_bitmap.h"
#include "sentry/base/errno.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class FdTable {
 public:
  struct Entry {
    FileRef file;
    bool cloexec = false;
  };

  // Lowest free fd >= min_fd below `limit` (RLIMIT_NOFILE); EMFILE if none.
  Result<int> Install(FileRef file, bool cloexec, int min_fd = 0, int limit = 1024);
  // dup2/dup3: replaces whatever is at `fd`.
  Status InstallAt(int fd, FileRef file, bool cloexec, int limit = 1024);
  Result<FileRef> Get(int fd) const;
  Result<Entry> GetEntry(int fd) const;
  Status SetCloexec(int fd, bool cloexec);
  // Removes and returns the file so the caller drops the last reference
  // outside the table's lock.
  Result<FileRef> Remove(int fd);
  // execve: drops every close-on-exec fd.
  void CloseOnExec();
  std::shared_ptr<FdTable> Fork() const;
  // A snapshot (its files held while it lives).
  std::map<int, Entry> Snapshot() const;
  // The open fd numbers, in order, holding no file (a /proc/PID/fd
  // listing: proc_readfd_common() takes no file reference).
  std::vector<int> Numbers() const;
  void Clear();

  // The tasks whose table this is (Linux's files->count): Task::set_fds
  // raises it for the new table and lowers it for the old one. A reader's
  // copy of the pointer (Task::shared_fds(), /proc/PID/fd, pidfd_getfd)
  // is no user: this, not use_count, says whether the table is shared
  // (unshare(CLONE_FILES), execve). When the last user lets go (exit,
  // unshare, execve) the files are closed at once, as put_files_struct()
  // closes them, whoever still holds a pointer to the table: a reader
  // then finds it empty. Call DropUser holding no lock a file's release
  // may take.
  int users() const { return users_.load(std::memory_order_acquire); }
  void AddUser() { users_.fetch_add(1, std::memory_order_acq_rel); }
  void DropUser() {
    if (users_.fetch_sub(1, std::memory_order_acq_rel) == 1) Clear();
  }

 private:
  std::atomic<int> users_{0};
  mutable absl::Mutex mu_;
  std::map<int, Entry> fds_ ABSL_GUARDED_BY(mu_);
  IdBitmap used_ ABSL_GUARDED_BY(mu_);  // the keys of fds_
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_FD_TABLE_H_
