// Installs the sentry's own host-syscall filter: the program compiled at
// build time from SentryPolicy() (sentry_policy.h), and the SIGSYS handler
// that logs a denied call and fails it with EPERM.
//
//   if (int r = seccomp::InstallSentryFilter(); r != 0) ...  // all threads (TSYNC)
#ifndef SEEDVISOR_SECCOMP_SENTRY_FILTER_H_
#define SEEDVISOR_SECCOMP_SENTRY_FILTER_H_

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace seedvisor::seccomp {

// The compiled program (from the build; nothing is compiled at run time):
// SentryPolicy(host_writes).
const std::vector<sock_filter>& SentryProgram(bool host_writes = false);
// This sandbox has a writable bind mount: the filter that
// InstallSentryFilter installs is SentryProgram(true). True if it will be
// or is; false if the narrower filter is in place already (a filter can
// only be narrowed once installed), and the caller must refuse the mount.
bool RequestHostWrites();
// Installs the SIGSYS handler and SentryProgram(RequestHostWrites() was
// granted) on all threads: 0 or -errno. Once per process: a later call
// does nothing and returns 0.
int InstallSentryFilter();
// How many host syscalls the filter has denied so far in this process.
uint64_t SentryFilterViolations();

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_SENTRY_FILTER_H_
