// /proc/seedvisor/fork_generation: how a guest learns that its sandbox was
// forked (sentry/sfork), so that a language runtime can re-seed its own
// random generators, rotate per-instance secrets, and so on.
//
// Reading gives the sandbox's fork generation in decimal ("0\n" if it was
// never forked; the seed and the fork both count one up at every fork). The
// file polls readable (POLLIN, and POLLPRI) once the generation differs
// from the one the file last read from offset 0 (or saw at open): poll or
// epoll on it, then lseek(fd, 0, SEEK_SET) and read again.
//
//   int fd = open("/proc/seedvisor/fork_generation", O_RDONLY);
//   poll(&(pollfd){fd, POLLIN}, 1, -1);   // returns after a fork
//   pread(fd, buf, sizeof buf, 0);        // the new generation; quiet again
#ifndef SEEDVISOR_SENTRY_FS_PROC_FORK_GENERATION_H_
#define SEEDVISOR_SENTRY_FS_PROC_FORK_GENERATION_H_

#include <atomic>
#include <memory>

#include "sentry/fs/synth/synth.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

// The /proc inode: each open makes a ForkGenerationFile watched by `k`.
std::shared_ptr<SynthInode> NewForkGenerationInode(Kernel& k);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PROC_FORK_GENERATION_H_
