#include "sentry/base/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

namespace seedvisor {
namespace {

std::atomic<bool> g_debug{false};
std::atomic<int> g_fd{2};
// Local time's offset from UTC, in seconds, as Init found it.
std::atomic<long> g_utc_offset{0};

// The civil date of a day count since 1970-01-01 (proleptic Gregorian;
// H. Hinnant's days_from_civil inverted).
void CivilFromDays(int64_t z, int* month, int* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
}

}  // namespace

void Log::Init(bool debug, const std::string& path, const std::string& command) {
  // Write() never calls localtime_r, which takes glibc's time zone lock: a
  // sandbox fork (a host fork of the sentry) while another thread logs
  // would leave that lock held forever in the forked sentry.
  time_t now = time(nullptr);
  tm local;
  if (localtime_r(&now, &local) != nullptr) g_utc_offset = local.tm_gmtoff;
  g_debug = debug || !path.empty();
  if (path.empty()) return;
  std::string p = path;
  if (p.back() == '/') p += "seedsc." + command + "." + std::to_string(getpid()) + ".log";
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) g_fd = fd;
}

bool Log::debug() { return g_debug.load(std::memory_order_relaxed); }

void Log::Write(const std::string& line) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  const int64_t local = static_cast<int64_t>(tv.tv_sec) + g_utc_offset.load();
  int64_t days = local / 86400, secs = local % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  int month, day;
  CivilFromDays(days, &month, &day);
  std::string out = absl::StrFormat("D%02d%02d %02d:%02d:%02d.%06d %7d] %s\n", month, day,
                                    secs / 3600, secs / 60 % 60, secs % 60, tv.tv_usec, getpid(),
                                    line);
  // One write per line, so concurrent threads do not interleave.
  ssize_t r = write(g_fd.load(), out.data(), out.size());
  (void)r;
}

}  // namespace seedvisor
