// /proc/PID/mem (fs/proc/base.c: proc_mem_open(), mem_rw(), mem_lseek()):
// the process's memory, the file offset being the address.
//
//   int fd = open("/proc/123/mem", O_RDWR);
//   pread(fd, buf, n, (off_t)addr);   // EIO if nothing at addr is mapped
#include <fcntl.h>

#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/proc/task_mm_inode.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// An open mem file: the address space the process had at open. Once that
// is gone (exec, exit) reads and writes see end of file.
class MemFile : public FileDescription {
 public:
  MemFile(int flags, DentryRef d, std::weak_ptr<MM> mm)
      : FileDescription(flags, std::move(d)), mm_(std::move(mm)) {}

  Result<size_t> PRead(Task&, char* buf, size_t len, int64_t offset) override {
    return Access(buf, len, offset, false);
  }
  Result<size_t> PWrite(Task&, const char* buf, size_t len, int64_t offset) override {
    return Access(const_cast<char*>(buf), len, offset, true);
  }
  Result<size_t> Read(Task& t, char* buf, size_t len) override {
    return ReadAtOffset(t, buf, len);
  }
  Result<size_t> Write(Task& t, const char* buf, size_t len) override {
    std::lock_guard l(offset_mu_);
    SV_ASSIGN_OR_RETURN(size_t n, PWrite(t, buf, len, offset_));
    offset_ += static_cast<int64_t>(n);
    return n;
  }
  // mem_lseek(): SEEK_SET and SEEK_CUR only; any address is a position.
  Result<int64_t> Seek(int64_t offset, int whence) override {
    std::lock_guard l(offset_mu_);
    switch (whence) {
      case SEEK_SET: offset_ = offset; break;
      case SEEK_CUR: offset_ = static_cast<int64_t>(static_cast<uint64_t>(offset_) + offset); break;
      default: return Errno(EINVAL);
    }
    return offset_;
  }
  Status Sync() override { return {}; }

 private:
  Result<size_t> Access(char* buf, size_t len, int64_t offset, bool write) {
    std::shared_ptr<MM> mm = mm_.lock();
    if (!mm || len == 0) return size_t{0};
    return mm->AccessForced(UserAddr(static_cast<uint64_t>(offset)), buf, len, write);
  }

  const std::weak_ptr<MM> mm_;
};

}  // namespace

InodeRef NewMemInode(Kernel& k, int tid) {
  return std::make_shared<TaskMmInode<MemFile>>(k, tid, 0600);
}

}  // namespace seedvisor::sentry
