// The systrap platform: guest threads run on threads of stub processes (one
// per guest address space, forked from a zygote as on ptrace) under a seccomp
// filter that traps every guest syscall with SECCOMP_RET_TRAP. The stub's
// SIGSYS handler (stub_amd64.S) hands the signal frame to the sentry through
// a shared-memory slot and a futex; the sentry edits the frame's registers in
// place and the handler resumes the guest with rt_sigreturn. Faults and the
// sentry's kick (SIGURG) travel the same way. No ptrace stop is on that path.
//
// Mapping calls, thread creation and fork are rarer; the sentry makes them by
// ptrace injection into the calling task's stub thread (which waits in its
// handler), as on ptrace. The stub filter lets those calls through only while
// the sentry traces that thread (SECCOMP_RET_TRACE), so a guest that jumps to
// the stub's syscall instructions gets nothing: futex on its own memory,
// rt_sigreturn and exit are all the stub's text may do on its own
// (seccomp/stub_policy.cc); anything else kills that stub.
//
//   auto p = systrap::NewSystrapPlatform();  // starts the zygote
//   auto as = (*p)->NewAddressSpace();
//   auto ctx = (*p)->Attach(*as, (*as)->initial_thread());
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_PLATFORM_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_PLATFORM_H_

#include <memory>

#include "platform/platform.h"

namespace seedvisor::platform::systrap {

// Starts the zygote stub; call on a thread that lives as long as the sandbox.
// With SEEDVISOR_SYSTRAP_PATCH=1 in the environment (seedsc
// --systrap-patch sets it), hot syscall sites are patched (PATCHING.md)
// where the CPU allows it (BMI2, FSGSBASE, XSAVE).
absl::StatusOr<std::unique_ptr<Platform>> NewSystrapPlatform();

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_PLATFORM_H_
