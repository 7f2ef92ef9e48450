// System V shared memory segments (shmget(2), shmat(2), shmdt(2),
// shmctl(2)) of one IPC namespace. A segment is a shmem object (an unlinked
// tmpfs file, fs/tmpfs/shmem.h); an attach is a MAP_SHARED mapping of a
// ShmFile, a description of that object that knows its segment. So:
//   - shm_nattch counts the VMAs that map the segment in the sandbox's
//     address spaces, as Linux's shm_open/shm_close count them (a guest
//     fork copies them, exec and exit drop them with the mm);
//   - a segment removed while attached lives while a mapping holds it and
//     goes with the last one (the registry keeps only a weak reference);
//   - a sandbox fork copies attached segments like any tmpfs file mapped
//     shared (sentry/sfork), and unattached ones on their next attach.
#ifndef SEEDVISOR_SENTRY_IPC_SHM_H_
#define SEEDVISOR_SENTRY_IPC_SHM_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/ipc/ipc_object.h"

namespace seedvisor::sentry {

// Linux's defaults (/proc/sys/kernel/shm*): SHMMAX and SHMALL are
// ULONG_MAX - 2^24, SHMMNI 4096.
inline constexpr uint64_t kShmMax = ~uint64_t{0} - (uint64_t{1} << 24);
inline constexpr uint64_t kShmAll = kShmMax;
inline constexpr int kShmMni = 4096;

struct ShmSegment {
  IpcPerm perm;
  uint64_t size = 0;
  std::shared_ptr<TmpfsFile> data;  // the shmem object
  IpcPid cpid, lpid;
  int64_t atime = 0, dtime = 0, ctime = 0;
};

class ShmRegistry : public IpcFamily<ShmSegment> {
 public:
  ShmRegistry() : IpcFamily(kShmMni) {}
  Result<int> Get(Task &t, int32_t key, uint64_t size, int flags);
  Result<uint64_t> Attach(Task &t, int id, UserAddr addr, int flags);
  Status Detach(Task &t, UserAddr addr);
  Result<uint64_t> Ctl(Task &t, int id, int cmd, UserAddr buf);
  // remap_file_pages() over [start, end) of `t`'s address space, a range
  // that maps `f`: Linux's emulation (mm/mmap.c) unmaps the range first,
  // which drops those attaches (shm_close()), then maps the file again
  // through shm_mmap(). When `f` attaches a removed segment (IPC_RMID) and
  // no attach of it outlives that unmap, shm_destroy() frees its id and
  // __shm_open() fails the new mapping with EINVAL. True in that case.
  bool RemovedOnceUnmapped(Task &t, const FileRef &f, uint64_t start, uint64_t end);
  // /proc/sysvipc/shm, its pids as pid namespace `reader` (null: the
  // sandbox's) shows them.
  std::string ProcText(Kernel &k, const PidNamespace *reader);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_IPC_SHM_H_
