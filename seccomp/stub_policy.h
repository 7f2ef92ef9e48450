// The systrap stub's filter (platform/systrap): every syscall the guest makes
// traps to the stub's SIGSYS handler; the stub's own code page may make only
// the few calls its handler needs, anonymous-memory calls it makes for the
// sentry (harmless to the host: the guest could make them itself through the
// sentry), and the calls the sentry injects over
// ptrace only while the sentry traces that very thread (SECCOMP_RET_TRACE:
// without a tracer the kernel fails them with ENOSYS).
//
//   seccomp::Policy p = seccomp::StubPolicy(stub_text_begin, stub_text_end);
//   std::vector<sock_filter> prog = seccomp::Compile(p);
#ifndef SEEDVISOR_SECCOMP_STUB_POLICY_H_
#define SEEDVISOR_SECCOMP_STUB_POLICY_H_

#include <cstdint>

#include "seccomp/bpf.h"

namespace seedvisor::seccomp {

Policy StubPolicy(uint64_t stub_text_begin, uint64_t stub_text_end);

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_STUB_POLICY_H_
