// What the systrap context's files share (systrap_context.cc: a stub
// thread's life and calls; systrap_run.cc: running the guest until the
// next event; systrap_fork.cc: new stub threads and processes). Private
// to platform/systrap.
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_CONTEXT_INTERNAL_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_CONTEXT_INTERNAL_H_

#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "platform/systrap/systrap_layout.h"

namespace seedvisor::platform::systrap {

// The kernel's struct ucontext on x86-64 (arch/x86/include/uapi/asm/ucontext.h):
// glibc's ucontext_t has the same head but a bigger sigset after it.
struct KernelUContext {
  uint64_t flags;
  uint64_t link;
  stack_t stack;
  mcontext_t mcontext;
  uint64_t sigmask;
};
static_assert(sizeof(KernelUContext) == 304);

constexpr size_t kFxsaveSize = 512;
constexpr uint32_t kFpXstateMagic1 = 0x46505853;  // FP_XSTATE_MAGIC1, sigcontext.h
constexpr int kInterruptSignal = SIGURG;

inline std::atomic<uint32_t>* StateWord(CommPage* c) {
  // SAFETY: the state word is 4-byte aligned at the start of a shared page;
  // both sides access it only atomically.
  return reinterpret_cast<std::atomic<uint32_t>*>(&c->state);
}

inline void FutexWake(std::atomic<uint32_t>* w) {
  syscall(SYS_futex, w, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

inline int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

inline bool IsFaultSignal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP;
}

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_CONTEXT_INTERNAL_H_
