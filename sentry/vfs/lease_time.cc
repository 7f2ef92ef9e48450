#include "sentry/vfs/lease_time.h"

#include <atomic>
#include <charconv>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {

namespace {
std::atomic<int> g_seconds{45};
std::atomic<LeaseBreakOnOpen> g_break{nullptr};
}  // namespace

void SetLeaseBreakOnOpen(LeaseBreakOnOpen fn) { g_break.store(fn); }

Status BreakLeasesForOpen(Task& t, FileDescription& f, int flags, bool truncate) {
  LeaseBreakOnOpen fn = g_break.load();
  return fn ? fn(t, f, flags, truncate) : Status();
}

int LeaseBreakSeconds() { return g_seconds.load(); }

std::string LeaseBreakText() { return absl::StrCat(g_seconds.load(), "\n"); }

Status SetLeaseBreakSeconds(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return Errno(EINVAL);
  g_seconds.store(v);
  return {};
}

}  // namespace seedvisor::sentry
