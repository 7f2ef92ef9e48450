// The ptrace platform: guest threads run on threads of stub processes traced
// with PTRACE_SYSEMU, one stub process per guest address space.
//
// Every stub descends from one "zygote" stub that seedsc starts (without ASLR,
// so all stubs share one layout) and that reaps them all; stubs are cloned
// with CLONE_PARENT so that the zygote is their parent. A new address space
// is a fork of the zygote; a guest fork() is a host fork of the stub
// (copy-on-write); a guest thread is a host thread of the stub. The sentry
// makes host syscalls in a stub (mmap, munmap, clone ...) by pointing a
// traced stub thread at a `syscall; int3` gadget.
#ifndef SEEDVISOR_PLATFORM_PTRACE_PTRACE_PLATFORM_H_
#define SEEDVISOR_PLATFORM_PTRACE_PTRACE_PLATFORM_H_

#include <memory>

#include "platform/platform.h"

namespace seedvisor::platform::ptrace {

// Starts the zygote stub; call on a thread that lives as long as the sandbox.
absl::StatusOr<std::unique_ptr<Platform>> NewPtracePlatform();

}  // namespace seedvisor::platform::ptrace

#endif  // SEEDVISOR_PLATFORM_PTRACE_PTRACE_PLATFORM_H_
