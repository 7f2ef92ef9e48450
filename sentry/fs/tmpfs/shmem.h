// Shmem: the object behind shared anonymous memory and System V shared
// memory segments, as Linux's shmem_file_setup(): an unlinked file of an
// internal tmpfs, sized once, whose data is a host memfd the platform maps.
// Being a tmpfs file gives it everything a sandbox fork needs (tmpfs.h):
// copy-on-fork of its data, and a stable host fd number.
//
//   SV_ASSIGN_OR_RETURN(auto f, NewShmemFile(len, "/dev/zero (deleted)",
//   O_RDWR, uid, gid)); req.file = f;  // mm.Mmap a MAP_SHARED mapping of it
#ifndef SEEDVISOR_SENTRY_FS_TMPFS_SHMEM_H_
#define SEEDVISOR_SENTRY_FS_TMPFS_SHMEM_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sentry/fs/tmpfs/tmpfs.h"

namespace seedvisor::sentry {

// A new shmem object of `size` bytes (a hole: no memory until touched),
// opened with `flags` (O_RDWR or O_RDONLY); /proc/PID/maps shows it as
// `display_path`. ENOMEM if the host refuses the size.
Result<std::shared_ptr<TmpfsFile>> NewShmemFile(uint64_t size, std::string display_path, int flags,
                                                uid_t uid, gid_t gid);

// Linux's overcommit heuristic for shmem that reserves memory (shmget
// without SHM_NORESERVE, a shared anonymous mmap without MAP_NORESERVE;
// __vm_enough_memory() in OVERCOMMIT_GUESS mode): ENOMEM if one object is
// larger than the host's RAM and swap together. Pages are only ever
// allocated when touched, so this refuses only the absurd.
Status CheckShmemReserve(uint64_t size);

// Another open description of the same object (a second shmat of a
// segment, with its own access mode).
std::shared_ptr<TmpfsFile> ReopenShmemFile(const TmpfsFile &f, int flags);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_TMPFS_SHMEM_H_
