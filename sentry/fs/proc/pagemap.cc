// /proc/PID/pagemap (fs/proc/task_mmu.c: pagemap_read(), and
// Documentation/admin-guide/mm/pagemap.rst): one 64-bit entry per virtual
// page, at file offset page number * 8, saying whether the page is present
// or swapped, file-backed or shared, mapped only here, soft-dirty. The
// entries are the host's for the same addresses (MM::PagemapEntries) with
// the frame number 0, as Linux shows it to a reader without CAP_SYS_ADMIN:
// the guest never learns a host frame.
//
//   int fd = open("/proc/self/pagemap", O_RDONLY);
//   pread(fd, &entry, 8, (uintptr_t)addr / 4096 * 8);  // bit 63: present
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/proc/task_mm_inode.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

constexpr size_t kEntry = 8;

// An open pagemap: the address space the process had at open (mm_access());
// once it is gone, end of file.
class PagemapFile : public FileDescription {
 public:
  PagemapFile(int flags, DentryRef d, std::weak_ptr<MM> mm)
      : FileDescription(flags, std::move(d)), mm_(std::move(mm)) {}

  // pagemap_read(): position and count in whole entries (EINVAL), entries
  // up to the end of the user address space.
  // A large read goes in pieces of kChunk entries (one host read each),
  // and stops early for a kill.
  Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset) override {
    if (offset % kEntry != 0 || len % kEntry != 0) return Errno(EINVAL);
    std::shared_ptr<MM> mm = mm_.lock();
    if (!mm || len == 0 || offset < 0) return size_t{0};
    const uint64_t vpn = static_cast<uint64_t>(offset) / kEntry;
    constexpr size_t kChunk = 64 << 10;  // 256 MiB of address space
    std::vector<uint64_t> entries(std::min(kChunk, len / kEntry));
    size_t done = 0;
    while (done < len) {
      if (done > 0 && t.FatalSignalPending()) break;
      const size_t want = std::min(entries.size(), (len - done) / kEntry);
      SV_ASSIGN_OR_RETURN(size_t got,
                          mm->PagemapEntries(vpn + done / kEntry, entries.data(), want));
      if (got == 0) break;
      std::memcpy(buf + done, entries.data(), got * kEntry);
      done += got * kEntry;
    }
    return done;
  }
  Result<size_t> Read(Task& t, char* buf, size_t len) override {
    return ReadAtOffset(t, buf, len);
  }
  // mem_lseek(), which pagemap shares: SEEK_SET and SEEK_CUR.
  Result<int64_t> Seek(int64_t offset, int whence) override {
    std::lock_guard l(offset_mu_);
    switch (whence) {
      case SEEK_SET: offset_ = offset; break;
      case SEEK_CUR: offset_ = static_cast<int64_t>(static_cast<uint64_t>(offset_) + offset); break;
      default: return Errno(EINVAL);
    }
    return offset_;
  }

 private:
  const std::weak_ptr<MM> mm_;
};

}  // namespace

// 0400 (Linux opens it with PTRACE_MODE_READ; the sentry checks the same
// ptrace access as for mem).
InodeRef NewPagemapInode(Kernel& k, int tid) {
  return std::make_shared<TaskMmInode<PagemapFile>>(k, tid, 0400);
}

}  // namespace seedvisor::sentry
