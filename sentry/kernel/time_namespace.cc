// Time namespaces' offsets (kernel/time/namespace.c).
#include "sentry/kernel/time_namespace.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "sentry/kernel/ns_ino.h"

namespace seedvisor::sentry {
namespace {

constexpr int64_t kNsPerSec = 1000000000LL;
// KTIME_SEC_MAX: the seconds a ktime_t holds.
constexpr int64_t kKtimeSecMax = INT64_MAX / kNsPerSec;

struct Offset {
  clockid_t clock;
  int64_t sec;
  int64_t nsec;
};

// One line of a timens_offsets write: "<clock> <sec> <nsec>"
// (timens_offsets_write(): sscanf "%s %lld %lu").
Result<Offset> ParseLine(absl::string_view line) {
  std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (f.size() != 3) return Errno(EINVAL);
  Offset o;
  if (f[0] == "monotonic") {
    o.clock = CLOCK_MONOTONIC;
  } else if (f[0] == "boottime") {
    o.clock = CLOCK_BOOTTIME;
  } else if (int n; absl::SimpleAtoi(f[0], &n)) {
    o.clock = n;
  } else {
    return Errno(EINVAL);
  }
  uint64_t nsec;
  if (!absl::SimpleAtoi(f[1], &o.sec) || !absl::SimpleAtoi(f[2], &nsec)) return Errno(EINVAL);
  // proc_timens_set_offset(): only these two clocks, nsec a fraction.
  if (o.clock != CLOCK_MONOTONIC && o.clock != CLOCK_BOOTTIME) return Errno(EINVAL);
  if (nsec >= static_cast<uint64_t>(kNsPerSec)) return Errno(EINVAL);
  o.nsec = static_cast<int64_t>(nsec);
  return o;
}

}  // namespace

std::shared_ptr<TimeNamespace> TimeNamespace::CopyOf(const TimeNamespace* parent) {
  auto ns = std::make_shared<TimeNamespace>(NextNsIno());
  if (parent != nullptr) {
    absl::MutexLock l(&parent->mu_);
    absl::MutexLock m(&ns->mu_);
    ns->monotonic_ns_ = parent->monotonic_ns_;
    ns->boottime_ns_ = parent->boottime_ns_;
  }
  return ns;
}

int64_t TimeNamespace::OffsetOf(const TimeNamespace* ns, clockid_t c) {
  if (ns == nullptr) return 0;
  absl::MutexLock l(&ns->mu_);
  switch (c) {
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
      return ns->monotonic_ns_;
    case CLOCK_BOOTTIME:
    case CLOCK_BOOTTIME_ALARM:
      return ns->boottime_ns_;
    default:
      return 0;
  }
}

int64_t TimeNamespace::ToHostNs(const TimeNamespace* ns, clockid_t c, int64_t ns_time) {
  const int64_t off = OffsetOf(ns, c);
  if (ns_time < off) return 0;
  int64_t host;
  if (__builtin_sub_overflow(ns_time, off, &host)) return INT64_MAX;
  return host;
}

int64_t TimeNamespace::SaturatedNs(const timespec& ts) {
  if (ts.tv_sec >= kKtimeSecMax) return INT64_MAX;
  return ts.tv_sec * kNsPerSec + ts.tv_nsec;
}

std::string TimeNamespace::OffsetsText() const {
  absl::MutexLock l(&mu_);
  // A negative offset shows as seconds below zero and a positive fraction
  // (a timespec64, as set_normalized_timespec64() keeps it).
  auto line = [](const char* name, int64_t ns) {
    int64_t sec = ns / kNsPerSec, nsec = ns % kNsPerSec;
    if (nsec < 0) sec -= 1, nsec += kNsPerSec;
    return absl::StrFormat("%-10s %10d %9d\n", name, sec, nsec);
  };
  return line("monotonic", monotonic_ns_) + line("boottime", boottime_ns_);
}

Status TimeNamespace::WriteOffsets(std::string_view text, int64_t now_mono_ns,
                                   int64_t now_boot_ns) {
  std::vector<Offset> offsets;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n', absl::SkipEmpty())) {
    if (offsets.size() == 2) return Errno(EINVAL);  // at most one per clock
    SV_ASSIGN_OR_RETURN(Offset o, ParseLine(line));
    offsets.push_back(o);
  }
  if (offsets.empty()) return Errno(EINVAL);
  for (const Offset& o : offsets) {
    // "Don't allow offsets to go negative" nor past KTIME_SEC_MAX / 2.
    if (o.sec > kKtimeSecMax || o.sec < -kKtimeSecMax) return Errno(ERANGE);
    const int64_t now = o.clock == CLOCK_MONOTONIC ? now_mono_ns : now_boot_ns;
    const int64_t sec = now / kNsPerSec + o.sec + (now % kNsPerSec + o.nsec) / kNsPerSec;
    if (sec < 0 || sec > kKtimeSecMax / 2) return Errno(ERANGE);
  }
  absl::MutexLock l(&mu_);
  if (entered_) return Errno(EACCES);  // frozen_offsets, checked last
  for (const Offset& o : offsets) {
    (o.clock == CLOCK_MONOTONIC ? monotonic_ns_ : boottime_ns_) = o.sec * kNsPerSec + o.nsec;
  }
  return {};
}

void TimeNamespace::Enter() {
  absl::MutexLock l(&mu_);
  entered_ = true;
}

}  // namespace seedvisor::sentry
