// Write access to a file against its execution: Linux's i_writecount
// (get_write_access()/deny_write_access() in include/linux/fs.h). A
// regular file open for writing cannot be executed, and one that a
// process runs (its mm->exe_file) or an execve(2) is loading cannot be
// opened for writing or truncated: both are ETXTBSY.
//
// Counts are kept per file (FileLockKey: one key for every Inode object
// that stands for the file, as the overlay makes several), in sentry
// memory: a sandbox fork copies them with the files and address spaces
// that hold them.
//
//   SV_ASSIGN_OR_RETURN(WriteAccess w, WriteAccess::Get(inode.LockKey()));  // ETXTBSY?
//   WriteAccess::HoldUntilRelease(*file, std::move(w));  // until its last close
//
//   SV_ASSIGN_OR_RETURN(WriteAccess deny, WriteAccess::Deny(key));  // execve
#ifndef SEEDVISOR_SENTRY_VFS_WRITE_ACCESS_H_
#define SEEDVISOR_SENTRY_VFS_WRITE_ACCESS_H_

#include "sentry/base/errno.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

// One hold on a file's write count: a writer (Get) or a denial of writers
// (Deny). Move-only; given back when it goes.
class WriteAccess {
 public:
  // get_write_access(): a writer of `key`; ETXTBSY while any denial holds.
  static Result<WriteAccess> Get(const FileLockKey& key);
  // deny_write_access(): no writer of `key` until this goes; ETXTBSY
  // while any writer holds. Denials add up (two processes run one file).
  static Result<WriteAccess> Deny(const FileLockKey& key);
  // Keeps `hold` until `f`'s last reference goes (__fput()'s
  // put_file_access(); for a denial, the last address space whose exe
  // file `f` is).
  static void HoldUntilRelease(FileDescription& f, WriteAccess hold);
  // i_writecount of `key`: writers (> 0), denials (< 0), or 0.
  static int CountOf(const FileLockKey& key);

  WriteAccess() = default;
  WriteAccess(WriteAccess&& o) noexcept : key_(o.key_), delta_(o.delta_) { o.delta_ = 0; }
  WriteAccess& operator=(WriteAccess&& o) noexcept;
  WriteAccess(const WriteAccess&) = delete;
  WriteAccess& operator=(const WriteAccess&) = delete;
  ~WriteAccess() { Release(); }

 private:
  WriteAccess(const FileLockKey& key, int delta) : key_(key), delta_(delta) {}
  static Result<WriteAccess> Take(const FileLockKey& key, int delta);
  void Release();
  FileLockKey key_;
  int delta_ = 0;  // +1 writer, -1 denial, 0 nothing
};

// Sandbox fork: the table's lock made anew in the forked sentry, on its
// only thread (a seed thread may have held it at the host fork). Does not
// allocate.
void ReinitWriteAccessLockInForkChild();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_WRITE_ACCESS_H_
