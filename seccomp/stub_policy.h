// The systrap stub's filter (platform/systrap): every syscall the guest makes
// traps to the stub's SIGSYS handler; the stub's own code page may make only
// the few calls its handler needs, anonymous-memory calls it makes for the
// sentry (harmless to the host: the guest could make them itself through the
// sentry), and the calls the sentry injects over
// ptrace only while the sentry traces that very thread (SECCOMP_RET_TRACE:
// without a tracer the kernel fails them with ENOSYS).
//
// StubPolicy() is the table for calls made from the stub's text; it is
// compiled at build time (policy_gen), and StubProgram() (stub_program.h)
// puts the instruction-pointer test in front of it:
//
//   std::vector<sock_filter> prog = seccomp::StubProgram(text_begin, text_end);
#ifndef SEEDVISOR_SECCOMP_STUB_POLICY_H_
#define SEEDVISOR_SECCOMP_STUB_POLICY_H_

#include "seccomp/bpf.h"

namespace seedvisor::seccomp {

// The stub fds [kStubKeptFdBase, kStubKeptFdBase + kStubKeptFds) hold the
// world-readable host files (read-only) that the guest of this address
// space has mapped (platform/stub/stub_address_space.h), so that mapping
// one again (ld.so maps every library four or five times) is a memory call
// the stub makes itself, not a ptrace injection. The filter lets the stub's
// text mmap exactly these fds: a guest that jumps there can map only files
// it has mapped before and could read anyway. A power of two, and the base a
// multiple of it (one masked compare), below any RLIMIT_NOFILE in use.
inline constexpr int kStubKeptFdBase = 768;
inline constexpr int kStubKeptFds = 64;
static_assert((kStubKeptFds & (kStubKeptFds - 1)) == 0 && kStubKeptFdBase % kStubKeptFds == 0);

// What a call from the stub's text may do. Calls from anywhere else never
// reach these rules (StubProgram() traps them first).
Policy StubPolicy();

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_STUB_POLICY_H_
