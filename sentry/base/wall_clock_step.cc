#include "sentry/base/wall_clock_step.h"

#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace {
std::atomic<int64_t> g_offset_ns{0};
}  // namespace

namespace seedvisor::sentry {

void StepWallClock(absl::Duration by) { g_offset_ns.fetch_add(absl::ToInt64Nanoseconds(by)); }
void ResetWallClock() { g_offset_ns.store(0); }

}  // namespace seedvisor::sentry

namespace {

// `ns` nanoseconds since the epoch, with the offset added.
int64_t Stepped(int64_t ns) { return ns + g_offset_ns.load(std::memory_order_relaxed); }

// `v` units (`per_sec` to a second) as whole seconds and a rest in [0, per_sec).
template <typename Sec, typename Rest>
void Split(int64_t v, int64_t per_sec, Sec* sec, Rest* rest) {
  int64_t s = v / per_sec, r = v % per_sec;
  if (r < 0) {
    r += per_sec;
    s -= 1;
  }
  *sec = static_cast<Sec>(s);
  *rest = static_cast<Rest>(r);
}

}  // namespace

// Interpose libc's (the executable's definition wins over libc's for every
// caller in the process, abseil's libraries included).
extern "C" int clock_gettime(clockid_t clock, struct timespec* ts) {
  const int r = static_cast<int>(syscall(SYS_clock_gettime, clock, ts));
  if (r == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
    Split(Stepped(int64_t{ts->tv_sec} * 1000000000 + ts->tv_nsec), 1000000000, &ts->tv_sec, &ts->tv_nsec);
  }
  return r;
}

extern "C" int gettimeofday(struct timeval* __restrict tv, void* __restrict tz) noexcept {
  const int r = static_cast<int>(syscall(SYS_gettimeofday, tv, tz));
  if (r == 0) {  // tv is nonnull (sys/time.h)
    int64_t ns = 0;
    Split(Stepped((int64_t{tv->tv_sec} * 1000000 + tv->tv_usec) * 1000), 1000000000, &tv->tv_sec, &ns);
    tv->tv_usec = static_cast<suseconds_t>(ns / 1000);
  }
  return r;
}
