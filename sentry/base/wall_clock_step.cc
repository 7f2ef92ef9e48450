#include "sentry/base/wall_clock_step.h"

#include <sys/syscall.h>
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

// Interposes libc's (the executable's definition wins over libc's for every
// caller in the process, abseil's libraries included).
extern "C" int clock_gettime(clockid_t clock, struct timespec* ts) {
  const int r = static_cast<int>(syscall(SYS_clock_gettime, clock, ts));
  const int64_t off = g_offset_ns.load(std::memory_order_relaxed);
  if (r == 0 && off != 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
    int64_t ns = int64_t{ts->tv_sec} * 1000000000 + ts->tv_nsec + off;
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    if (ts->tv_nsec < 0) {
      ts->tv_nsec += 1000000000;
      ts->tv_sec -= 1;
    }
  }
  return r;
}
