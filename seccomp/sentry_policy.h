// The sentry's own host-syscall allowlist, installed on every sentry thread
// once the sandbox is set up and before guest code runs (like runsc's boot
// filter). A call the table does not allow traps (SECCOMP_RET_TRAP) to a
// SIGSYS handler that logs it on stderr and fails it with EPERM: a missing
// entry shows up as a clear message, never as the sentry killed by SIGSYS.
//
// The table was derived from what the sentry actually calls while running
// the syscall conformance suites (both platforms), busybox and python3:
// `perf trace -s -- seedsc do ...` (strace -f cannot be used: it would trace
// the stubs the sentry itself must ptrace), then widened by hand for whole
// families (read/write variants, sockets) with a reason on every line.
//
// The table is compiled at build time (policy_gen, with libseccomp);
// sentry_filter.h installs the result.
#ifndef SEEDVISOR_SECCOMP_SENTRY_POLICY_H_
#define SEEDVISOR_SECCOMP_SENTRY_POLICY_H_

#include "seccomp/bpf.h"

namespace seedvisor::seccomp {

// `host_writes`: the sandbox has a writable bind mount (a volume the
// guest writes through to the host: sentry/fs/host/host_rw.h), which needs
// the host's calls that make, remove, rename and change files
// (mkdirat, unlinkat, renameat2, linkat, symlinkat, fchmod(at),
// fchown(at), utimensat, mknodat of a FIFO or socket, never of a device,
// and the path forms of the xattr calls, for /proc/self/fd/N). A sandbox
// without one never gets them.
Policy SentryPolicy(bool host_writes = false);

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_SENTRY_POLICY_H_
