// TimeNamespace: a time namespace (time_namespaces(7)): offsets that
// CLOCK_MONOTONIC (and its _RAW and _COARSE flavours) and CLOCK_BOOTTIME
// (and _ALARM) read in it, over the sandbox's clocks, which are the host's.
//
// The sandbox's initial namespace has no offsets and no object (a task's
// null). unshare(CLONE_NEWTIME) makes a new one, a copy of the caller's
// children's (clone_time_ns()), for the caller's next children; its offsets
// are written through /proc/PID/timens_offsets until a first task enters
// it (timens_on_fork(), setns(2)), fixed after. clone3(CLONE_NEWTIME) makes
// one and the child enters it at once. Each has its own nsfs inode number.
// Every guest-visible read of those clocks adds the offset (clock_gettime,
// sysinfo, /proc/uptime, the vDSO: sentry/loader/vdso_clock.h) and every
// absolute deadline on them subtracts it (clock_nanosleep, timerfd and
// POSIX timers: timens_ktime_to_host()). Thread-safe.
//
//   std::shared_ptr<TimeNamespace> ns = TimeNamespace::CopyOf(t.time_ns_for_children().get());
//   SV_TRY(ns->WriteOffsets("monotonic 10 0\n", now));  // before anyone enters
//   ns->Enter();
//   ts_ns += TimeNamespace::OffsetOf(t.time_ns().get(), CLOCK_MONOTONIC);
#ifndef SEEDVISOR_SENTRY_KERNEL_TIME_NAMESPACE_H_
#define SEEDVISOR_SENTRY_KERNEL_TIME_NAMESPACE_H_

#include <time.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class TimeNamespace {
 public:
  // The initial namespace's inode (PROC_TIME_INIT_INO).
  static constexpr uint64_t kInitIno = 0xEFFFFFFA;

  explicit TimeNamespace(uint64_t ino) : ino_(ino) {}
  TimeNamespace(const TimeNamespace&) = delete;
  TimeNamespace& operator=(const TimeNamespace&) = delete;

  // A new namespace, not yet entered, with `parent`'s offsets (null: the
  // initial namespace's, none) and an inode number of its own.
  static std::shared_ptr<TimeNamespace> CopyOf(const TimeNamespace* parent);

  // The inode number of `ns` (null: the initial namespace).
  static uint64_t InoOf(const TimeNamespace* ns) { return ns != nullptr ? ns->ino_ : kInitIno; }
  // What clock `c` reads in `ns` more than on the host, in nanoseconds
  // (timens_add_monotonic(), timens_add_boottime()); 0 for the initial
  // namespace and for the clocks no namespace moves (REALTIME, TAI, CPU).
  static int64_t OffsetOf(const TimeNamespace* ns, clockid_t c);
  // An absolute time `ns_time` (nanoseconds) of clock `c` in `ns` as the
  // host's clock reads it (do_timens_ktime_to_host()): the offset taken
  // away, 0 (passed already) below the offset, INT64_MAX at most.
  static int64_t ToHostNs(const TimeNamespace* ns, clockid_t c, int64_t ns_time);
  // `ts` in nanoseconds, INT64_MAX for one past what that holds
  // (timespec64_to_ktime()); `ts` must be normalized and not negative.
  static int64_t SaturatedNs(const timespec& ts);

  uint64_t ino() const { return ino_; }
  // /proc/PID/timens_offsets (proc_timens_show_offsets()):
  // "monotonic <sec> <nsec>\nboottime <sec> <nsec>\n".
  std::string OffsetsText() const;
  // A write to /proc/PID/timens_offsets (proc_timens_set_offset()): one
  // line per clock, "<clock> <sec> <nsec>", the clock by name (monotonic,
  // boottime) or number. EINVAL for a line that is not that, another
  // clock or nsec out of [0, 1e9); ERANGE for an offset that would make
  // the clock negative or too large (`now_mono_ns`, `now_boot_ns`: the
  // host's clocks now); EACCES once a task has entered the namespace.
  // Nothing changes unless every line is right.
  Status WriteOffsets(std::string_view text, int64_t now_mono_ns, int64_t now_boot_ns);
  // A task enters it: its offsets are fixed from now on.
  void Enter();

 private:
  const uint64_t ino_;
  mutable absl::Mutex mu_;
  int64_t monotonic_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t boottime_ns_ ABSL_GUARDED_BY(mu_) = 0;
  bool entered_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_TIME_NAMESPACE_H_
