// /proc/sys/fs/lease-break-time: how long open(2) or truncate(2) waits for
// the holder of a file lease to give it up before the lease is taken away
// (fcntl(2), "Leases"; fs/locks.c's lease_break_time), 45 s by default.
//
//   timespec wait = {LeaseBreakSeconds(), 0};
#ifndef SEEDVISOR_SENTRY_VFS_LEASE_TIME_H_
#define SEEDVISOR_SENTRY_VFS_LEASE_TIME_H_

#include <string>
#include <string_view>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class FileDescription;
class Task;

int LeaseBreakSeconds();

// do_dentry_open()'s break_lease(): what an open of `f` (open(2),
// open_by_handle_at(2), execve(2)'s) does to the file leases others hold
// on it, before it truncates (`truncate`: as a writer). The syscall
// layer's lease table (sys_file_lease.cc) installs it; without one, opens
// break nothing.
using LeaseBreakOnOpen = Status (*)(Task& t, FileDescription& f, int flags, bool truncate);
void SetLeaseBreakOnOpen(LeaseBreakOnOpen fn);
Status BreakLeasesForOpen(Task& t, FileDescription& f, int flags, bool truncate);
// The file's text ("45\n") and a write of it: an integer (proc_dointvec()),
// else EINVAL.
std::string LeaseBreakText();
Status SetLeaseBreakSeconds(std::string_view text);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_LEASE_TIME_H_
