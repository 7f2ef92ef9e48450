// sys: the sandbox's /sys (OCI mounts of type "sysfs"). A small read-only
// synthetic tree with what libc and language runtimes read, not the host's
// sysfs: /sys/devices/system/cpu/{online,possible,present} and cpuN
// directories (get_nprocs(3), get_nprocs_conf(3), os.cpu_count(), nproc),
// /sys/devices/system/node with the one node 0 that holds them and all the
// memory (libnuma, numactl),
// an empty /sys/fs/cgroup, /sys/class/net, /sys/kernel and /sys/firmware
// (so runc's default maskedPaths entry has something to mask).
//
//   vfs.MountAt("/sys", std::make_shared<Mount>("sysfs", "sysfs", "ro,nosuid,nodev,noexec",
//                                               NewSysFs()));
#ifndef SEEDVISOR_SENTRY_FS_SYS_SYS_H_
#define SEEDVISOR_SENTRY_FS_SYS_SYS_H_

#include <sched.h>

#include <string>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

// The CPUs the sandbox may run on: the sentry's affinity set, as the guest's
// sched_getaffinity(2) reports it.
InodeRef NewSysFs();

// "0-3,6\n": a cpu list in the kernel's format (bitmap_print_to_pagebuf).
std::string CpuListText(const cpu_set_t& set);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_SYS_SYS_H_
