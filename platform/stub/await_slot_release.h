// AwaitSlotRelease: a stub platform's context, when it ends, waits for its
// stub thread to promise never to touch its slot again (its state word
// becomes `gone`) before the slot may be reused. systrap and kvm share it.
#ifndef SEEDVISOR_PLATFORM_STUB_AWAIT_SLOT_RELEASE_H_
#define SEEDVISOR_PLATFORM_STUB_AWAIT_SLOT_RELEASE_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace seedvisor::platform::stub {

// Waits up to a second (in 10 ms futex waits on `state`) until *state is
// `gone` or `alive()` says the thread is no more. True if the slot is free
// to reuse; false if the thread is stuck (it still owns the slot).
template <typename Alive>
bool AwaitSlotRelease(std::atomic<uint32_t>* state, uint32_t gone, Alive alive) {
  for (int i = 0; i < 100; ++i) {
    const uint32_t s = state->load(std::memory_order_acquire);
    if (s == gone) return true;
    timespec ts{0, 10'000'000};
    syscall(SYS_futex, state, FUTEX_WAIT, s, &ts, nullptr, 0);
    if (!alive()) return true;
  }
  return false;
}

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_AWAIT_SLOT_RELEASE_H_
